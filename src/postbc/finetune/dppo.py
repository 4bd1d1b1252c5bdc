"""DPPO (Ren et al. 2024): PPO through the last k denoising steps of DDPM sampling.

Two MDPs, one inside the other. The env MDP steps once per action chunk (the shared loop's chunk
transitions). As in the reference, training episodes do not end at success: they run to the task's
horizon (`postbc.envs.episodes.RunToHorizon`) and every solved step earns 1, so a chunk's reward
counts its solved steps. Inside each env step, the S-step DDPM chain is
a second MDP: step i draws x_{i+1} ~ N(mean(s, x_i, i), std_i^2 I) with std_i floored at `min_std`.
The first S - k steps use the frozen pretrained denoiser, the last k a trainable copy; only those
k steps are policy-gradient actions. Each gets its own PPO ratio and the env step's GAE advantage,
discounted by denoising_gamma^(k-1-j) for the j-th finetuned step (the final step gets the full
advantage, as in DPPO). As in the reference (irom-princeton/dppo, PPODiffusion.loss), a step's
log-prob is the mean over the chunk's dimensions of the per-dimension Gaussian log-densities, each
clamped to [-5, 2] (`dppo_log_prob`), so the ratio is a per-dimension (geometric-mean) ratio; and
the clip grows from `clip_ratio_base` at the first finetuned step to `clip_ratio` at the last
(`clip_schedule`, the reference's exponential ramp with rate 3).

A rollout is `rollout_steps` vector steps, stored in a fixed-size `ReplayBuffer`. Then the value
net V(s) (on normalized obs) gives GAE: the horizon is terminal (no bootstrap), an env's own earlier
time limit truncates (bootstrap from V of the final obs); a trace is also cut, with a bootstrap, at the rollout's end,
before a crashed transition and where a resumed run lost its envs. Then `epochs` passes over
shuffled minibatches of denoising-step samples update actor and value net.

The executed action is the chain's last element clipped to [-1, 1] (normalized space), while its
log-prob is that of the unclipped element, as in DPPO.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from postbc.errors import PostBCError
from postbc.finetune.config import DPPOConfig
from postbc.finetune.networks import mlp
from postbc.finetune.replay import ReplayBuffer
from postbc.finetune.chunk_env import ChunkStep
from postbc.io.checkpoint import check_shapes
from postbc.io.state import load_module_state, module_state
from postbc.policies.diffusion import DiffusionPolicy
from postbc.utils import seed_everything

VALUE_LAYERS = 3
EVAL_NOISE_SEED = 12345


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor,
        cut: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Advantages (T, N) by generalized advantage estimation over time-major (T, N) tensors.

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t),  A_t = delta_t + gamma lam (1 - cut_t) A_{t+1}.
    `next_values` is V of the obs after step t (the final obs when the episode ended there), so a
    truncated step bootstraps and a terminated one does not; `cut` marks where the trace stops
    (terminated, truncated, the last stored step, ...).
    """
    not_term, keep = 1.0 - terminated.float(), 1.0 - cut.float()
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * not_term[t] * next_values[t] - values[t]
        running = delta + gamma * lam * keep[t] * running
        adv[t] = running
    return adv


LOG_PROB_CLAMP = (-5.0, 2.0)


def dppo_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(B,) mean over the last axis of log N(x_d; mean_d, std^2), each clamped to [-5, 2] (DPPO's log-prob)."""
    per_dim = -0.5 * ((x - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
    return per_dim.clamp(*LOG_PROB_CLAMP).mean(-1)


def clip_schedule(k: int, clip: float, base: float, rate: float) -> torch.Tensor:
    """(k,) PPO clip per finetuned denoising step: `base` at the first, `clip` at the last, exponential in between."""
    if k == 1:
        return torch.tensor([clip])
    t = torch.arange(k, dtype=torch.float32) / (k - 1)
    return base + (clip - base) * (torch.exp(rate * t) - 1) / (math.exp(rate) - 1)


def clipped_surrogate(log_ratio: torch.Tensor, adv: torch.Tensor, clip):
    """PPO's clipped objective as a loss, with the clip fraction and approximate KL (k3 estimator).

    loss = -mean(min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A)), ratio = exp(log_ratio);
    `clip` is a number or one per sample.
    """
    ratio = log_ratio.exp()
    clip = torch.as_tensor(clip, dtype=ratio.dtype, device=ratio.device)
    loss = -torch.min(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv).mean()
    with torch.no_grad():
        clip_fraction = ((ratio - 1).abs() > clip).float().mean()
        approx_kl = ((ratio - 1) - log_ratio).mean()
    return loss, clip_fraction, approx_kl


def value_loss(v: torch.Tensor, v_old: torch.Tensor, returns: torch.Tensor, clip: float) -> torch.Tensor:
    """0.5 MSE to the returns; with clip > 0 the pessimistic max with the update clipped around `v_old`."""
    loss = (v - returns) ** 2
    if clip > 0:
        loss = torch.max(loss, (v_old + (v - v_old).clamp(-clip, clip) - returns) ** 2)
    return 0.5 * loss.mean()


def explained_variance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Var(target - pred) / Var(target); 0 when the targets are constant (undefined, and a NaN would stop the run)."""
    var = target.var(unbiased=False)
    return 1 - (target - pred).var(unbiased=False) / var if var > 0 else torch.zeros((), device=target.device)


class SplitDenoiser(nn.Module):
    """The frozen pretrained denoiser for timesteps t > t_split, a trainable copy for the last steps (t <= t_split)."""

    def __init__(self, frozen: nn.Module, t_split: int):
        super().__init__()
        self.frozen = frozen.requires_grad_(False)
        self.trainable = copy.deepcopy(frozen).requires_grad_(True)
        self.t_split = int(t_split)

    def forward(self, obs: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        late = t <= self.t_split
        if bool(late.all()):
            return self.trainable(obs, t, x)
        with torch.no_grad():
            early = self.frozen(obs, t, x)
        if not bool(late.any()):
            return early
        return torch.where(late.unsqueeze(-1), self.trainable(obs, t, x), early)


class DDPMChunkPolicy:
    """Raw flat obs -> raw action chunks by the (split) model's DDPM sampling: what `evaluate` runs."""

    takes_noise = False  # DDPM noise from its own seeded generator

    def __init__(self, base, model: DiffusionPolicy, steps: int, min_std: float, seed: int = EVAL_NOISE_SEED):
        self.base, self.model, self.steps, self.min_std = base, model, steps, min_std
        self.chunk, self.act_dim = base.chunk, base.act_dim
        self.obs_keys = getattr(base, "obs_keys", None)
        self.generator = torch.Generator().manual_seed(seed)

    def act(self, obs_flat: np.ndarray) -> np.ndarray:
        device = next(self.model.parameters()).device
        obs = torch.as_tensor(self.base.obs_normalizer.normalize(np.asarray(obs_flat, np.float32))).to(device)
        with torch.inference_mode():  # the generator is on the CPU: the same samples on every device
            actions = self.model.sample_ddpm(obs, generator=self.generator, steps=self.steps, min_std=self.min_std).actions
        return self.base.action_normalizer.unnormalize(actions.cpu().numpy())


def split_policy(model: DiffusionPolicy, cfg: DPPOConfig) -> DiffusionPolicy:
    """A copy of `model` whose denoiser is a `SplitDenoiser`: frozen for the first S - k DDPM steps, trainable for the last k."""
    policy = copy.deepcopy(model).eval().requires_grad_(False)
    t_split = int(policy.step_timesteps(cfg.ddpm_steps)[0][cfg.ddpm_steps - cfg.finetune_steps])
    policy.denoiser = SplitDenoiser(policy.denoiser, t_split)
    return policy


def load_dppo_policy(tensors: dict[str, torch.Tensor], cfg: DPPOConfig, base, source: str,
                     seed: int = EVAL_NOISE_SEED) -> DDPMChunkPolicy:
    """Serve `DPPO.export()` tensors: the split model rebuilt on `base`, sampling as DPPO's evaluation does."""
    if not isinstance(getattr(base, "model", None), DiffusionPolicy):
        raise PostBCError(f"{source} holds a DPPO-finetuned denoiser; its base must be a diffusion policy "
                          "(a `postbc pretrain` run directory)")
    policy = split_policy(base.model, cfg)
    state = {k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")}
    check_shapes(state, {k: v.shape for k, v in policy.state_dict().items()}, source)
    policy.load_state_dict(state)
    policy.to(getattr(base, "device", "cpu"))
    return DDPMChunkPolicy(base, policy.requires_grad_(False), cfg.ddpm_steps, cfg.min_std, seed)


class DPPO:
    reward_kind = "zero_one"
    episode_end = "horizon"  # the reference's episodes: reward 1 on every solved step, success does not end them

    def __init__(self, cfg: DPPOConfig, base, obs_dim: int, seed: int, num_envs: int, device: torch.device | str = "cpu"):
        if not isinstance(getattr(base, "model", None), DiffusionPolicy):
            raise PostBCError("--algo dppo finetunes the denoiser of a diffusion policy; the base policy has none "
                              "(use a `postbc pretrain` run directory)")
        self.cfg, self.base, self.num_envs, self.device = cfg, base, num_envs, torch.device(device)
        self.metric_names = ("policy_loss", "value_loss", "approx_kl", "clip_fraction", "explained_variance",
                             "denoising_std") + (("bc_loss",) if cfg.bc_coef > 0 else ())
        self.np_rng = seed_everything(seed)
        S, k = cfg.ddpm_steps, cfg.finetune_steps
        self.first_ft = S - k  # index of the first finetuned denoising step
        self.policy = split_policy(base.model, cfg).to(self.device)
        self.actor = self.policy.denoiser.trainable
        self.value = mlp(obs_dim, 1, cfg.hidden, VALUE_LAYERS, "silu").to(self.device)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.critic_lr)
        chain_shape = (k + 1, base.chunk, base.act_dim)
        self.rollout = ReplayBuffer(cfg.rollout_steps * num_envs, {
            "obs": (obs_dim,), "next_obs": (obs_dim,), "chain": chain_shape, "log_prob": (k,), "reward": (),
            "terminated": (), "truncated": (), "valid": ()})
        self.rollouts_done = 0
        self.denoising_std = self._finetuned_std()
        self._pending = None

    @torch.no_grad()
    def _finetuned_std(self) -> float:
        """Mean std of the k finetuned steps (the schedule's, floored at min_std; it does not depend on the inputs)."""
        obs = torch.zeros(1, self.policy.cfg.obs_dim, device=self.device)
        x = torch.zeros(1, self.policy.cfg.flat_dim, device=self.device)
        stds = [self.policy.reverse_gaussian(obs, x, i, self.cfg.ddpm_steps, self.cfg.min_std)[1]
                for i in range(self.first_ft, self.cfg.ddpm_steps)]
        return float(torch.cat(stds).mean())

    def _normalize(self, obs: np.ndarray) -> torch.Tensor:
        """Normalized observations on the networks' device."""
        return torch.as_tensor(self.base.obs_normalizer.normalize(np.asarray(obs, np.float32))).to(self.device)

    # -- acting ------------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, env_steps: int) -> np.ndarray:
        obs_n = self._normalize(obs)
        sample = self.policy.sample_ddpm(obs_n, steps=self.cfg.ddpm_steps, min_std=self.cfg.min_std,
                                         log_prob=dppo_log_prob)
        self._pending = (obs_n.cpu(), sample.chain[:, self.first_ft:].cpu(), sample.log_probs[:, self.first_ft:].cpu())
        return self.base.action_normalizer.unnormalize(sample.actions.cpu().numpy())

    def observe(self, step: ChunkStep) -> None:
        """Store the chunk's transition in the rollout buffer (CPU; moved to the device once per update)."""
        obs_n, chain, log_prob = self._pending
        self.rollout.add(obs=obs_n, next_obs=self._normalize(step.next_obs).cpu(), chain=chain, log_prob=log_prob,
                         reward=torch.as_tensor(step.reward), terminated=torch.as_tensor(step.terminated),
                         truncated=torch.as_tensor(step.truncated), valid=torch.as_tensor(step.valid))

    # -- learning ----------------------------------------------------------------------------------
    def update(self, env_steps: int) -> dict[str, torch.Tensor]:
        if len(self.rollout) < self.rollout.capacity:
            return {}
        batch, ev = self._advantages()
        metrics = self._ppo(batch)
        self.rollout.size = self.rollout.ptr = 0
        self.rollouts_done += 1
        return {**metrics, "explained_variance": ev, "denoising_std": torch.tensor(self.denoising_std)}

    @torch.no_grad()
    def _advantages(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """GAE over the stored rollout -> flat tensors of the valid env steps, and the value net's explained variance."""
        T, N = self.cfg.rollout_steps, self.num_envs
        d = {name: v.to(self.device).reshape(T, N, *v.shape[1:]) for name, v in self.rollout.all().items()}
        values = self.value(d["obs"]).squeeze(-1)
        next_values = self.value(d["next_obs"]).squeeze(-1)
        valid = d["valid"].bool()
        cut = d["terminated"].bool() | d["truncated"].bool()
        cut[-1] = True
        cut[:-1] |= ~valid[1:]  # the env crashed next: its transition is dropped, so this trace ends here
        adv = gae(d["reward"], values, next_values, d["terminated"], cut, self.cfg.gamma, self.cfg.gae_lambda)
        keep = valid.reshape(-1)
        flat = {name: v.reshape(T * N, *v.shape[2:])[keep] for name, v in d.items()}
        adv, values = adv.reshape(-1)[keep], values.reshape(-1)[keep]
        returns = adv + values
        batch = {"obs": flat["obs"], "chain": flat["chain"], "log_prob": flat["log_prob"], "values": values,
                 "returns": returns, "adv": (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)}
        return batch, explained_variance(values, returns)

    def _ppo(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, k = self.cfg, self.cfg.finetune_steps
        discount = cfg.denoising_gamma ** torch.arange(k - 1, -1, -1, dtype=torch.float32, device=self.device)
        clips = clip_schedule(k, cfg.clip_ratio, cfg.clip_ratio_base, cfg.clip_ratio_rate)
        train_actor = self.rollouts_done >= cfg.critic_warmup
        sums: dict[str, torch.Tensor] = {}
        n = 0
        for _ in range(cfg.epochs):
            # One sample per (env step b, finetuned denoising step j).
            for idx in torch.randperm(len(batch["obs"]) * k).to(self.device).split(cfg.minibatch):
                b, j = idx // k, idx % k
                obs, chain = batch["obs"][b], batch["chain"][b]
                rows = torch.arange(len(b), device=self.device)
                new_logp = self.policy.step_log_prob(obs, chain[rows, j], chain[rows, j + 1], self.first_ft + j,
                                                     cfg.min_std, cfg.ddpm_steps, log_prob=dppo_log_prob)
                pg, clip_fraction, approx_kl = clipped_surrogate(new_logp - batch["log_prob"][b, j],
                                                                 batch["adv"][b] * discount[j], clips[j])
                vl = value_loss(self.value(obs).squeeze(-1), batch["values"][b], batch["returns"][b], cfg.value_clip)
                step = {"policy_loss": pg.detach(), "value_loss": vl.detach(), "approx_kl": approx_kl,
                        "clip_fraction": clip_fraction}
                loss = vl
                if train_actor:
                    loss = loss + pg
                    if cfg.bc_coef > 0:
                        bc = self._bc_loss(obs)
                        loss = loss + cfg.bc_coef * bc
                        step["bc_loss"] = bc.detach()
                self.actor_opt.zero_grad(set_to_none=True)
                self.value_opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
                self.value_opt.step()
                if train_actor:
                    nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
                    self.actor_opt.step()
                for name, v in step.items():
                    sums[name] = sums.get(name, 0.0) + v
                n += 1
        return {name: v / n for name, v in sums.items()}

    def _bc_loss(self, obs: torch.Tensor) -> torch.Tensor:
        """-log-prob, under the finetuned steps, of the frozen base policy's own denoising steps from the same obs (DPPO's BC term)."""
        S, k = self.cfg.ddpm_steps, self.cfg.finetune_steps
        chain = self.base.model.sample_ddpm(obs, steps=S, min_std=self.cfg.min_std).chain[:, self.first_ft:]
        j = torch.arange(k, device=obs.device).repeat_interleave(len(obs))
        x = chain.transpose(0, 1)  # (k + 1, B, chunk, act_dim)
        logp = self.policy.step_log_prob(obs.repeat(k, 1), x[:-1].flatten(0, 1), x[1:].flatten(0, 1),
                                         self.first_ft + j, self.cfg.min_std, S, log_prob=dppo_log_prob)
        return -logp.mean()

    # -- evaluation, checkpoints -------------------------------------------------------------------
    def eval_policy(self) -> DDPMChunkPolicy:
        return DDPMChunkPolicy(self.base, self.policy, self.cfg.ddpm_steps, self.cfg.min_std)

    def state(self):
        tensors, meta = module_state({"actor": self.actor, "value": self.value},
                                     {"actor": self.actor_opt, "value": self.value_opt})
        rt, rmeta = self.rollout.state(prefix="rollout.")
        return {**tensors, **rt}, {"optim": meta, "rollout": rmeta, "rollouts_done": self.rollouts_done}

    def load_state(self, tensors, meta) -> None:
        load_module_state({"actor": self.actor, "value": self.value},
                          {"actor": self.actor_opt, "value": self.value_opt}, tensors, meta["optim"])
        self.rollout.load_state(tensors, meta["rollout"], prefix="rollout.")
        self.rollouts_done = int(meta["rollouts_done"])
        if len(self.rollout):
            # The envs restart with fresh episodes: the stored trajectories end at the last stored step, bootstrapped.
            self.rollout.data["truncated"][len(self.rollout) - self.num_envs: len(self.rollout)] = 1.0

    def export(self) -> dict[str, torch.Tensor]:
        """The finetuned diffusion policy: `denoiser.frozen.*` (first S - k steps) and `denoiser.trainable.*` (last k)."""
        return {f"policy.{k}": v for k, v in self.policy.state_dict().items()}
