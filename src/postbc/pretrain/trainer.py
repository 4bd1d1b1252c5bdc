"""The one pretraining trainer: a diffusion policy fitted to (possibly noised) action-chunk targets.

bc, sigma_bc and postbc all run `train_policy`; they differ only in the `TargetNoise` passed in,
which is applied to every batch with fresh noise. Each epoch is one pass over a fresh random
permutation of the dataset; AdamW with a cosine learning-rate decay (a closed form of the step,
so a resumed run continues on the same curve); an EMA of the weights is what gets saved.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from postbc.policies.diffusion import EMA, DiffusionPolicy
from postbc.pretrain.loop import ResumableState, run_epochs
from postbc.pretrain.target_noise import TargetNoise


@dataclasses.dataclass
class PolicyTraining:
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    ema_decay: float = 0.995
    checkpoint_every: int = 25


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def train_policy(
    policy: DiffusionPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    target_noise: TargetNoise,
    settings: PolicyTraining,
    *,
    generator: torch.Generator,
    checkpoint: Path,
    log_dir: Path | None = None,
    identity: Mapping[str, Any] | None = None,
    quiet: bool = False,
    tensorboard: bool = True,
) -> EMA:
    """Train `policy` on normalized `obs` (N, obs_dim) and chunks `actions` (N, chunk, act_dim), all on one device.

    Resumes from `checkpoint` (model, EMA, optimizer, RNG, epoch) when it exists; returns the EMA.
    """
    n = obs.shape[0]
    steps = math.ceil(n / settings.batch_size)
    total_steps = steps * settings.epochs
    optimizer = torch.optim.AdamW(policy.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    ema = EMA(policy, settings.ema_decay)
    state = ResumableState(checkpoint, {"model": policy, "ema": ema.model}, optimizer, generator, identity or {})

    def train_epoch(epoch: int) -> dict[str, float]:
        ema.updates = epoch * steps  # one EMA update per optimizer step, so the count follows the epoch
        perm = torch.randperm(n, generator=generator).to(obs.device)  # drawn on the generator's CPU
        total = 0.0
        for j, idx in enumerate(perm.split(settings.batch_size)):
            lr = cosine_lr(settings.lr, epoch * steps + j, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            targets = target_noise(actions[idx], idx, generator)
            loss = policy.loss(obs[idx], targets, generator=generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ema.update(policy)
            total += loss.item()
        return {"loss": total / steps, "lr": lr}

    run_epochs(
        state, settings.epochs, train_epoch, log_dir=log_dir, checkpoint_every=settings.checkpoint_every,
        desc="policy", quiet=quiet, tensorboard=tensorboard,
    )
    return ema
