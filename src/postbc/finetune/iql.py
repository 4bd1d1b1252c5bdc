"""Implicit Q-learning critic (Kostrikov et al. 2022) for scoring action chunks offline.

V(s) regresses toward min_k Q_targ_k(s, a) with an expectile loss (tau > 0.5 leans toward the
best actions seen in the data); Q_k(s, a) regresses toward r + gamma (1 - done) V(s').
No actor is extracted: Best-of-N only needs argmax over sampled candidates of min_k Q_k.
Q and V see observations scaled by the pretrained policy's normalizer (to [-1, 1] on its demos;
buffers `obs_center`, `obs_scale`, saved with the critic); raw observations go in.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from postbc.finetune.networks import Critic, mlp
from postbc.finetune.sac import critic_loss, make_adam, polyak


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """E[|tau - 1(diff < 0)| diff^2] with diff = target - prediction."""
    weight = torch.where(diff > 0, tau, 1.0 - tau)
    return (weight * diff.pow(2)).mean()


class IQL(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, *, hidden: int, layers: int, num_critics: int, lr: float,
                 gamma: float, tau: float, expectile: float, obs_normalizer=None):
        super().__init__()
        center = obs_normalizer.center if obs_normalizer is not None else torch.zeros(obs_dim)
        scale = obs_normalizer.scale if obs_normalizer is not None else torch.ones(obs_dim)
        self.register_buffer("obs_center", torch.as_tensor(center, dtype=torch.float32).clone())
        self.register_buffer("obs_scale", torch.as_tensor(scale, dtype=torch.float32).clone())
        self.q = Critic(obs_dim, act_dim, hidden, layers, num_critics)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v = mlp(obs_dim, 1, hidden, layers)
        self.gamma, self.tau, self.expectile = gamma, tau, expectile
        self.optimizer = make_adam(self.parameters(), lr)

    @property
    def device(self) -> torch.device:
        return self.obs_center.device

    def scaled(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observations (any device) -> the scaled observations Q and V see, on the critic's device."""
        return (obs.to(self.device) - self.obs_center) / self.obs_scale

    def q_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min_k Q_k(s, a) on the critic's device, for raw obs and flat chunks on any device."""
        return self.q(self.scaled(obs), action.to(self.device)).min(0).values

    def update(self, obs, action, reward, next_obs, done) -> dict[str, torch.Tensor]:
        obs, next_obs = self.scaled(obs), self.scaled(next_obs)
        with torch.no_grad():
            q_data = self.q_target(obs, action).min(0).values
            target = reward + self.gamma * (1.0 - done) * self.v(next_obs).squeeze(-1)
        v = self.v(obs).squeeze(-1)
        loss_v = expectile_loss(q_data - v, self.expectile)
        q = self.q(obs, action)
        loss_q = critic_loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_v + loss_q).backward()
        self.optimizer.step()
        polyak(self.q_target, self.q, self.tau)
        return {"value_loss": loss_v.detach(), "critic_loss": loss_q.detach(), "q_mean": q.detach().mean(),
                "v_mean": v.detach().mean()}


def iql_from_config(cfg, obs_dim: int, act_dim: int, obs_normalizer=None) -> IQL:
    return IQL(obs_dim, act_dim, hidden=cfg.hidden, layers=cfg.layers, num_critics=cfg.num_critics, lr=cfg.lr,
               gamma=cfg.gamma, tau=cfg.tau, expectile=cfg.expectile, obs_normalizer=obs_normalizer)
