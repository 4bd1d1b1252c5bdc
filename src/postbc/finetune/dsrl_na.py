"""DSRL-NA (noise aliasing): critics over executed action chunks, an actor over diffusion noise.

Many noises map to the same chunk, so learning Q over chunks shares information between them:
- replay stores (s, a, r, s', done) with a the executed chunk (flattened);
- action critic:  Q_A(s, a) <- r + gamma (1 - done) (min_k Q_A_targ(s', pi_dp(s', w')) - alpha log pi(w'|s')),
  the entropy term only with `backup_entropy`,
  w' ~ actor(s'), pi_dp the frozen diffusion policy's deterministic DDIM map w -> chunk;
- noise critic:   Q_W(s, w) <- Q_A(s, pi_dp(s, w)) per ensemble member, w ~ N(0, I) clipped to [-m, m]
  (the same range the actor's w = m tanh(u) covers); `noise_critic_steps` distillation steps after
  each update's `utd` critic and actor steps, as the reference (its `train()`) schedules them;
- actor / temperature: SAC losses on min_k Q_W(s, w), w ~ actor(s).
Episodes, rewards and observation scaling are DSRL-SAC's (`postbc.finetune.dsrl`,
`postbc.finetune.obs_scaling`): training episodes run to the horizon (or end at success, without
the entropy backup), and the networks see scaled observations while the frozen policy gets raw ones.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from postbc.finetune.base import SteeredPolicy, base_actions
from postbc.finetune.config import SACConfig
from postbc.finetune.dsrl import (choose_noise, eval_policies, noise_actor, ready_to_learn, scaler_state,
                                  steered_policy, store_transitions, td_batch, transition_fields, warmup_noise)
from postbc.finetune.networks import Critic, bf16_autocast
from postbc.finetune.obs_scaling import initial_scaler, legacy_scaler
from postbc.finetune.replay import ReplayBuffer
from postbc.finetune.chunk_env import ChunkStep
from postbc.finetune.sac import actor_loss, critic_loss, make_adam, polyak, soft_td_target, temperature_loss
from postbc.io.state import load_module_state, module_state
from postbc.utils import seed_everything


class DSRLNA(nn.Module):
    reward_kind = "minus_one"
    learns_while_envs_step = True
    metric_names = ("critic_loss", "noise_critic_loss", "actor_loss", "alpha", "entropy", "q_mean")

    def __init__(self, cfg: SACConfig, base, obs_dim: int, seed: int, device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg, self.base, self.device = cfg, base, torch.device(device)
        self.episode_end = cfg.episode_end
        self.np_rng = seed_everything(seed)
        dim = base.chunk * base.act_dim  # noise and chunk have the same size
        self.noise_dim = dim
        width = dict(hidden=cfg.hidden, layers=cfg.layers, activation=cfg.activation, layer_norm=cfg.layer_norm)
        self.actor = noise_actor(cfg, obs_dim, dim)
        self.scale_obs = initial_scaler(base, cfg, obs_dim)
        self.q_a = Critic(obs_dim, dim, members=cfg.num_critics, **width)
        self.q_a_target = copy.deepcopy(self.q_a).requires_grad_(False)
        self.q_w = Critic(obs_dim, dim, members=cfg.num_critics, **width)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_alpha)))
        self.to(self.device)
        self.optimizer = make_adam([*self.actor.parameters(), *self.q_a.parameters(), self.log_alpha], cfg.lr)
        self.noise_optimizer = make_adam(self.q_w.parameters(), cfg.lr)
        self.replay = ReplayBuffer(cfg.replay_size, transition_fields(obs_dim, (dim,)))
        self._last = None

    def chunk_of(self, obs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The frozen policy's chunk for raw `obs` and noise `w`, flattened, on the networks' device."""
        with torch.autocast(self.device.type, enabled=False):  # the frozen policy always samples in fp32
            return base_actions(self.base, obs, w.float()).reshape(len(obs), -1).to(self.device)

    def act(self, obs: np.ndarray, env_steps: int) -> np.ndarray:
        w = choose_noise(self.actor, self.scale_obs(torch.as_tensor(obs)), env_steps, self.cfg, self.np_rng)
        chunks = base_actions(self.base, obs, w).cpu()
        self._last = (obs.copy(), chunks.reshape(len(obs), -1))
        return chunks.numpy()

    def observe(self, step: ChunkStep) -> None:
        obs, chunk = self._last
        store_transitions(self.replay, obs, chunk, step)

    def update(self, env_steps: int) -> dict[str, torch.Tensor]:
        if not ready_to_learn(self.replay, self.scale_obs, self.cfg, env_steps):
            return {}
        for _ in range(self.cfg.utd):
            metrics = self.gradient_step(**td_batch(self.replay.sample(self.cfg.batch_size, device=self.device), self.cfg))
        for _ in range(self.cfg.noise_critic_steps):
            metrics["noise_critic_loss"] = self.distill_step(self.replay.sample(self.cfg.batch_size)["obs"].to(self.device))
        return metrics

    def gradient_step(self, obs, action, reward, next_obs, done) -> dict[str, torch.Tensor]:
        """One critic, actor and temperature step on raw observations `obs`, `next_obs` (the frozen policy needs them raw)."""
        alpha = self.log_alpha.exp().detach()
        s, s_next = self.scale_obs(obs), self.scale_obs(next_obs)
        with bf16_autocast(self.cfg.precision, self.device):
            with torch.no_grad():
                w_next, logp_next = self.actor(s_next)
                target = soft_td_target(reward, done, self.q_a_target(s_next, self.chunk_of(next_obs, w_next)),
                                        logp_next, alpha, self.cfg.gamma, self.cfg.backup_entropy)
            q = self.q_a(s, action)
            w, logp = self.actor(s)
            q_w = self.q_w(s, w, detach=True)
        loss_q = critic_loss(q, target)
        loss_pi = actor_loss(q_w, logp, alpha)
        loss_alpha = temperature_loss(self.log_alpha, logp, self.cfg.target_entropy)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_q + loss_pi + loss_alpha).backward()
        self.optimizer.step()
        polyak(self.q_a_target, self.q_a, self.cfg.tau)
        return {"critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(),
                "alpha": alpha, "entropy": -logp.detach().mean(), "q_mean": q.detach().mean()}

    def distill_step(self, obs: torch.Tensor) -> torch.Tensor:
        """Q_W(s, w) toward Q_A(s, pi_dp(s, w)) for warm-up noise w, member by member (`obs` raw)."""
        w = warmup_noise(len(obs), self.noise_dim, self.cfg, self.np_rng).to(self.device)
        s = self.scale_obs(obs)
        with bf16_autocast(self.cfg.precision, self.device):
            with torch.no_grad():
                target = self.q_a(s, self.chunk_of(obs, w))
            q_w = self.q_w(s, w)
        loss = critic_loss(q_w, target)
        self.noise_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.noise_optimizer.step()
        return loss.detach()

    def eval_policies(self) -> dict[str, object]:
        return eval_policies(self.base, self.actor, self.scale_obs)

    def eval_policy(self) -> SteeredPolicy:
        return steered_policy(self.base, self.actor, self.scale_obs)

    def state(self):
        tensors, meta = module_state({"na": self}, {"opt": self.optimizer, "noise_opt": self.noise_optimizer})
        rt, rmeta = self.replay.state()
        return {**tensors, **rt}, {"optim": meta, "replay": rmeta}

    def load_state(self, tensors, meta) -> None:
        if "na.scale_obs.center" not in tensors:  # written before the scaler was saved: the demos' normalizer
            legacy = legacy_scaler(self.base, self.cfg, self.scale_obs.center.numel())
            tensors = {**tensors, **{f"na.scale_obs.{k}": v for k, v in legacy.state_dict().items()}}
        load_module_state({"na": self}, {"opt": self.optimizer, "noise_opt": self.noise_optimizer}, tensors, meta["optim"])
        self.replay.load_state(tensors, meta["replay"])

    def export(self) -> dict[str, torch.Tensor]:
        return {**{f"actor.{k}": v for k, v in self.actor.state_dict().items()}, **scaler_state(self.scale_obs)}
