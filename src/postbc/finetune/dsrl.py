"""DSRL-SAC: soft actor-critic over the frozen diffusion policy's initial noise.

The agent's action is w in [-m, m]^(chunk*act_dim); the frozen policy turns it into an action
chunk by deterministic DDIM, and the chunk runs in the env. By default, as in the reference
(ajwagen/dsrl), training episodes run to the horizon and success does not end them
(`postbc.envs.episodes`: with an entropy bonus, ending at success would teach SAC to avoid
success); `--sac.episode-end success --sac.no-backup-entropy` ends them at success instead, with a
TD target that carries no entropy bonus (`SACConfig.episode_end` says when that matters). Replay
stores (s, w, r, s', done) with r = sum over the chunk of (-1 per unsolved step, 0 per solved step)
and done at the episode's end; during warm-up w ~ N(0, I) (clipped to [-m, m], the actor's range), which is the
base policy itself. Actor and critics see observations scaled to about [-1, 1]
(`postbc.finetune.obs_scaling`: by default the warm-up rollouts' range, fitted when learning
starts), as the reference's networks do; replay keeps them unscaled, on the CPU, and each sampled
batch moves to the networks' device in one transfer. For an image policy, "observation" means the
frozen pretrained encoder's features of it (`postbc.finetune.features`): replay holds those, not pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from postbc.finetune.base import SampledSteeredPolicy, SteeredPolicy, base_actions
from postbc.finetune.config import SACConfig
from postbc.finetune.features import PolicyFeatures
from postbc.finetune.networks import TanhGaussianActor
from postbc.finetune.obs_scaling import ObsScaler, fit_from_replay, initial_scaler, legacy_scaler
from postbc.finetune.replay import ReplayBuffer
from postbc.finetune.chunk_env import ChunkStep
from postbc.finetune.sac import SAC
from postbc.io.checkpoint import check_shapes
from postbc.io.state import load_module_state, module_state
from postbc.utils import seed_everything


def sac_from_config(cfg: SACConfig, obs_dim: int, act_dim: int) -> SAC:
    return SAC(obs_dim, act_dim, hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation,
               num_critics=cfg.num_critics, action_scale=cfg.action_magnitude, lr=cfg.lr, gamma=cfg.gamma,
               tau=cfg.tau, target_entropy=cfg.target_entropy, init_alpha=cfg.init_alpha,
               precision=cfg.precision, layer_norm=cfg.layer_norm, backup_entropy=cfg.backup_entropy)


def noise_actor(cfg: SACConfig, obs_dim: int, noise_dim: int) -> TanhGaussianActor:
    return TanhGaussianActor(obs_dim, noise_dim, cfg.hidden, cfg.layers, cfg.action_magnitude, cfg.activation,
                             cfg.layer_norm)


SCALER_PREFIX = "obs_scaler."


def scaler_state(scaler: ObsScaler) -> dict[str, torch.Tensor]:
    return {SCALER_PREFIX + k: v for k, v in scaler.state_dict().items()}


def load_scaler(tensors: dict[str, torch.Tensor], base, cfg: SACConfig, dim: int) -> ObsScaler:
    """The `obs_scaler.*` a run saved; a run from before they existed scaled by the demos' normalizer
    (runs on image policies always saved theirs)."""
    saved = {k[len(SCALER_PREFIX):]: v for k, v in tensors.items() if k.startswith(SCALER_PREFIX)}
    if not saved:
        return legacy_scaler(base, cfg, dim)
    scaler = ObsScaler(dim)
    scaler.load_state_dict(saved)
    return scaler


def transition_fields(obs_dim: int, act_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {"obs": (obs_dim,), "action": act_shape, "reward": (), "next_obs": (obs_dim,), "done": ()}


def store_transitions(replay: ReplayBuffer, obs, action: torch.Tensor, step: ChunkStep, next_obs=None) -> None:
    """Chunk transitions that did not crash; `done` is termination (the episode's terminal step), not truncation.
    `next_obs`: what to store for the step's next observations (their features), default the raw ones."""
    keep = torch.as_tensor(step.valid)
    next_obs = step.next_obs if next_obs is None else next_obs
    replay.add(obs=torch.as_tensor(obs)[keep], action=action[keep], reward=torch.as_tensor(step.reward)[keep],
               next_obs=torch.as_tensor(next_obs)[keep], done=torch.as_tensor(step.terminated, dtype=torch.float32)[keep])


def standard_noise(n: int, dim: int, magnitude: float, rng: np.random.Generator) -> torch.Tensor:
    """w ~ N(0, I) clipped to the actor's range [-m, m]: the base policy's own sampling distribution."""
    return torch.as_tensor(rng.standard_normal((n, dim)), dtype=torch.float32).clamp(-magnitude, magnitude)


def td_batch(batch: dict[str, torch.Tensor], cfg: SACConfig) -> dict[str, torch.Tensor]:
    """A sampled batch as the TD target reads it. Replay's `done` marks where an episode ended (under episode_end
    horizon: only at the horizon); with `cfg.horizon_bootstrap` that end is a time limit and the target bootstraps."""
    if cfg.horizon_bootstrap:
        batch["done"] = torch.zeros_like(batch["done"])
    return batch


def ready_to_learn(replay: ReplayBuffer, scaler: ObsScaler, cfg: SACConfig, env_steps: int) -> bool:
    """Whether the warm-up is over and a batch is stored; the first time it is, the observation scaler is fitted
    (to the warm-up rollouts under obs_range warmup)."""
    if env_steps < cfg.warmup_steps or len(replay) < cfg.batch_size:
        return False
    if not scaler.is_fitted:
        fit_from_replay(scaler, replay)
    return True


def warmup_noise(n: int, dim: int, cfg: SACConfig, rng: np.random.Generator) -> torch.Tensor:
    """`cfg.warmup_noise`'s draw: standard noise, or (radial) standard noise shrunk by u ~ U(0, 1) per row."""
    w = standard_noise(n, dim, cfg.action_magnitude, rng)
    if cfg.warmup_noise == "radial":
        w = w * torch.as_tensor(rng.uniform(0.0, 1.0, (n, 1)), dtype=torch.float32)
    return w


def choose_noise(actor, scaled_obs: torch.Tensor, env_steps: int, cfg: SACConfig,
                 rng: np.random.Generator) -> torch.Tensor:
    """Warm-up: the base policy driven by warm-up noise; afterwards: a sample of the noise actor. On the CPU."""
    if env_steps < cfg.warmup_steps:
        return warmup_noise(len(scaled_obs), actor.net[-1].out_features // 2, cfg, rng)
    return actor.act(scaled_obs).cpu()


def network_input(features: PolicyFeatures, scaler: ObsScaler):
    """Raw flat observations -> what the actor sees: the scaled observation, or the scaled features of an image policy."""
    if not features.encodes:
        return scaler
    return lambda obs: scaler(features(obs))


def steered_policy(base, actor: TanhGaussianActor, scale_obs) -> SteeredPolicy:
    """The served policy: the base driven by the actor's deterministic noise w = m tanh(mu(s))."""
    return SteeredPolicy(base, lambda obs: actor.act(scale_obs(obs), deterministic=True))


def sampled_steered_policy(base, actor: TanhGaussianActor, scale_obs) -> SampledSteeredPolicy:
    """The stochastic actor (what the reference evaluates): w = m tanh(mu(s) + sigma(s) eps), eps given by evaluation."""
    return SampledSteeredPolicy(base, lambda obs, eps: actor.act(scale_obs(obs), eps=eps))


def eval_policies(base, actor: TanhGaussianActor, scale_obs) -> dict[str, object]:
    """metrics.csv prefix -> policy: `eval_` the deterministic actor (served), `eval_stochastic_` the sampled one."""
    return {"eval": steered_policy(base, actor, scale_obs), "eval_stochastic": sampled_steered_policy(base, actor, scale_obs)}


def load_steered_policy(tensors: dict[str, torch.Tensor], cfg: SACConfig, base, source: str, *,
                        stochastic: bool = False) -> SteeredPolicy:
    """Serve the `actor.*` (and `obs_scaler.*`) tensors that DSRL and DSRL-NA export on `base`, on its device:
    steered by the deterministic actor (served), or by the sampled one (`stochastic`; what the reference evaluates)."""
    device = getattr(base, "device", "cpu")
    features = PolicyFeatures(base, base.obs_dim)
    scaler = load_scaler(tensors, base, cfg, features.dim).to(device)
    actor = noise_actor(cfg, features.dim, base.chunk * base.act_dim)
    state = {k[len("actor."):]: v for k, v in tensors.items() if k.startswith("actor.")}
    check_shapes(state, {k: v.shape for k, v in actor.state_dict().items()}, source)
    actor.load_state_dict(state)
    steer = sampled_steered_policy if stochastic else steered_policy
    return steer(base, actor.to(device).eval().requires_grad_(False), network_input(features, scaler))


class DSRL:
    reward_kind = "minus_one"
    learns_while_envs_step = True
    metric_names = ("critic_loss", "actor_loss", "alpha", "entropy", "q_mean")

    def __init__(self, cfg: SACConfig, base, obs_dim: int, seed: int, device: torch.device | str = "cpu"):
        self.cfg, self.base, self.device = cfg, base, torch.device(device)
        self.episode_end = cfg.episode_end
        self.noise_dim = base.chunk * base.act_dim
        self.np_rng = seed_everything(seed)
        self.features = PolicyFeatures(base, obs_dim)
        dim = self.features.dim
        self.sac = sac_from_config(cfg, dim, self.noise_dim).to(self.device)
        self.scale_obs = initial_scaler(base, cfg, dim, self.features.encodes).to(self.device)
        self.replay = ReplayBuffer(cfg.replay_size, transition_fields(dim, (self.noise_dim,)))
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def act(self, obs: np.ndarray, env_steps: int) -> np.ndarray:
        seen = self.features(obs)
        w = choose_noise(self.sac.actor, self.scale_obs(seen), env_steps, self.cfg, self.np_rng)
        self._last = (seen.clone(), w)
        return base_actions(self.base, obs, w).cpu().numpy()

    def observe(self, step: ChunkStep) -> None:
        seen, w = self._last
        store_transitions(self.replay, seen, w, step, next_obs=self.features(step.next_obs))

    def update(self, env_steps: int) -> dict[str, torch.Tensor]:
        if not ready_to_learn(self.replay, self.scale_obs, self.cfg, env_steps):
            return {}
        for _ in range(self.cfg.utd):
            batch = td_batch(self.replay.sample(self.cfg.batch_size, device=self.device), self.cfg)
            batch["obs"], batch["next_obs"] = self.scale_obs(batch["obs"]), self.scale_obs(batch["next_obs"])
            metrics = self.sac.update(**batch)
        return metrics

    def eval_policies(self) -> dict[str, object]:
        return eval_policies(self.base, self.sac.actor, network_input(self.features, self.scale_obs))

    def eval_policy(self) -> SteeredPolicy:
        return steered_policy(self.base, self.sac.actor, network_input(self.features, self.scale_obs))

    def state(self):
        tensors, meta = module_state({"sac": self.sac}, {"sac": self.sac.optimizer})
        rt, rmeta = self.replay.state()
        return {**tensors, **rt, **scaler_state(self.scale_obs)}, {"optim": meta, "replay": rmeta}

    def load_state(self, tensors, meta) -> None:
        load_module_state({"sac": self.sac}, {"sac": self.sac.optimizer}, tensors, meta["optim"])
        self.replay.load_state(tensors, meta["replay"])
        self.scale_obs.load_state_dict(load_scaler(tensors, self.base, self.cfg, self.scale_obs.center.numel()).state_dict())

    def export(self) -> dict[str, torch.Tensor]:
        return {**{f"actor.{k}": v for k, v in self.sac.actor.state_dict().items()}, **scaler_state(self.scale_obs)}
