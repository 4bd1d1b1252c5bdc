"""What the networks of DSRL / DSRL-NA see: observations scaled to about [-1, 1] (`--sac.obs-range`).

- `demos`: the pretrained policy's own normalizer (min-max of its demos). With few demos that range
  is narrow and the rollouts leave it far behind: with 5 lift demos, 7 of the 19 scaled dimensions
  have 95th percentiles of |x| between 28 and 71 on DSRL-NA's replay (the demos end at success and
  hold the gripper's orientation nearly fixed), so those few dimensions dominate every first-layer
  feature of actor and critics.
- `warmup` (default): min-max over the observations of the warm-up rollouts (the base policy's
  own noise, before any learning), fitted once when learning starts and fixed from then on; saved
  with the networks (`obs_scaler.*`) so a resumed or served run scales as it trained. The reference
  scales by the min-max of its 200-demo datasets, which cover the rollouts as the warm-up does.
The frozen diffusion policy always gets raw observations (it has its own normalizer).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from postbc.data.normalizer import MinMaxNormalizer

class ObsScaler(nn.Module):
    """x -> (x - center) / scale on the networks' device; `fitted` says whether `fit` has set it."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("center", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("fitted", torch.zeros(()))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def set(self, center, scale) -> "ObsScaler":
        self.center.copy_(torch.as_tensor(center, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.fitted.fill_(1.0)
        return self

    @torch.no_grad()
    def fit(self, obs: torch.Tensor) -> "ObsScaler":
        """Min-max of `obs` (N, dim) onto [-1, 1] (`MinMaxNormalizer`: a constant dimension is shifted, not scaled)."""
        normalizer = MinMaxNormalizer.fit(obs.detach().cpu().numpy())
        return self.set(normalizer.center, normalizer.scale)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.to(self.center.device) - self.center) / self.scale


def initial_scaler(base, cfg, dim: int, encoded: bool = False) -> ObsScaler:
    """The scaler before learning: identity (`normalize_obs` off), the demos' normalizer (`demos`, and `warmup`
    until it is fitted). `encoded`: the networks see an image policy's encoder features
    (`postbc.finetune.features`), computed from demo-normalized observations already: `demos` leaves
    them as they are, `warmup` fits their range like any observation's."""
    scaler = ObsScaler(dim)
    if encoded:
        scaler.fitted.fill_(float(cfg.obs_range == "demos" or not cfg.normalize_obs))
        return scaler
    normalizer = getattr(base, "obs_normalizer", None) if cfg.normalize_obs else None
    if normalizer is not None:
        scaler.set(normalizer.center, normalizer.scale)
        scaler.fitted.fill_(float(cfg.obs_range == "demos"))
    else:
        scaler.fitted.fill_(1.0)  # nothing to fit: the networks see raw observations
    return scaler


def fit_from_replay(scaler: ObsScaler, replay) -> None:
    """Fit `scaler` once on every observation stored so far (the warm-up rollouts)."""
    data = replay.all()
    scaler.fit(torch.cat([data["obs"], data["next_obs"]]))


def legacy_scaler(base, cfg, dim: int) -> ObsScaler:
    """The scaler that a checkpoint written before scalers were saved implies: the demos' normalizer."""
    return initial_scaler(base, dataclasses.replace(cfg, obs_range="demos"), dim)
