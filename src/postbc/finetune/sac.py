"""Soft actor-critic, written as small loss functions plus one fused update.

The update does one backward pass for critic, actor and temperature: the actor's Q is read
through the critic with detached weights, so each loss only moves its own parameters. Unlike
Stable-Baselines3 the actor therefore sees the critic from before this step's critic update
(as in most JAX implementations); one optimizer covers all three parameter groups.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from postbc.finetune.networks import Critic, TanhGaussianActor, bf16_autocast


def soft_td_target(reward, done, next_q, next_logp, alpha, gamma: float, backup_entropy: bool = True) -> torch.Tensor:
    """r + gamma (1 - done) (min_k Q_targ_k(s', a') - alpha log pi(a'|s')), a' ~ pi(s'); without the entropy
    term when not `backup_entropy` (then Q is the plain return of the soft policy)."""
    next_v = next_q.min(0).values - alpha * next_logp if backup_entropy else next_q.min(0).values
    return reward + gamma * (1.0 - done) * next_v


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Half the squared TD error, averaged over the batch and summed over the K critics (q: (K, B))."""
    return 0.5 * (q - target).pow(2).mean(1).sum()


def actor_loss(q_pi: torch.Tensor, logp: torch.Tensor, alpha) -> torch.Tensor:
    """E[alpha log pi(a|s) - min_k Q_k(s, a)], a ~ pi(s) reparameterized."""
    return (alpha * logp - q_pi.min(0).values).mean()


def temperature_loss(log_alpha: torch.Tensor, logp: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Raises alpha when the policy's entropy -E[log pi] falls below the target, lowers it above."""
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


@torch.no_grad()
def polyak(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, for all parameters in one fused call."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


class SAC(nn.Module):
    """Actor, K critics with targets, and a learned temperature, over (obs, action) vectors."""

    def __init__(self, obs_dim: int, act_dim: int, *, hidden: int, layers: int, activation: str, num_critics: int,
                 action_scale: float, lr: float, gamma: float, tau: float, target_entropy: float, init_alpha: float,
                 precision: str = "fp32", layer_norm: bool = False, backup_entropy: bool = True):
        super().__init__()
        self.actor = TanhGaussianActor(obs_dim, act_dim, hidden, layers, action_scale, activation, layer_norm)
        self.critic = Critic(obs_dim, act_dim, hidden, layers, num_critics, activation, layer_norm)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(init_alpha)))
        self.gamma, self.tau, self.target_entropy = gamma, tau, target_entropy
        self.precision, self.backup_entropy = precision, backup_entropy
        self.optimizer = make_adam(self.parameters(), lr)

    def update(self, obs, action, reward, next_obs, done) -> dict[str, torch.Tensor]:
        alpha = self.log_alpha.exp().detach()
        with bf16_autocast(self.precision, obs.device):
            with torch.no_grad():
                pi_next, logp_next = self.actor(next_obs)
                target = soft_td_target(reward, done, self.critic_target(next_obs, pi_next), logp_next, alpha, self.gamma,
                                        self.backup_entropy)
            pi, logp = self.actor(obs)
            q = self.critic(obs, action)
            q_pi = self.critic(obs, pi, detach=True)
        loss_q = critic_loss(q, target)
        loss_pi = actor_loss(q_pi, logp, alpha)
        loss_alpha = temperature_loss(self.log_alpha, logp, self.target_entropy)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_q + loss_pi + loss_alpha).backward()
        self.optimizer.step()
        polyak(self.critic_target, self.critic, self.tau)
        return {"critic_loss": loss_q.detach(), "actor_loss": loss_pi.detach(), "alpha": alpha,
                "entropy": -logp.detach().mean(), "q_mean": q.detach().mean()}


def make_adam(params, lr: float) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)
