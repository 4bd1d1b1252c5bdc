"""Target-noise transforms: the only difference between bc, sigma_bc and postbc.

A transform takes a batch of (normalized) target action chunks and the dataset indices they came
from, and returns the targets the generative policy is trained on, with fresh noise every call:

    bc        a
    sigma_bc  a + sigma * eps,          eps ~ N(0, I)          (state independent)
    postbc    a + alpha * L(s) @ eps,   eps ~ N(0, I), Sigma(s) = L(s) L(s)^T

so alpha scales the posterior *std* (the noise covariance is alpha^2 Sigma(s)), the same way sigma
scales the std of sigma-BC. Noised targets are not clipped to [-1, 1]: clipping would pile the
noise mass onto the box faces and shrink the posterior spread exactly for actions near the limits;
the diffusion policy clips its x0 estimate when sampling, so executed actions stay in range.

Usable in any PyTorch loop whose batches carry their dataset indices:

    noise = PosteriorTargetNoise(posterior, alpha=1.0)
    for idx in loader:                      # idx: (B,) LongTensor into the dataset
        loss = model.loss(obs[idx], noise(actions[idx], idx))
"""

from __future__ import annotations

from typing import Protocol

import torch

from postbc.device import randn_like_on
from postbc.pretrain.posterior import PosteriorEstimate


class TargetNoise(Protocol):
    def __call__(self, actions: torch.Tensor, sample_idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """actions (B, chunk, act_dim) of dataset samples `sample_idx` (B,) -> noised actions, same shape."""
        ...


class NoTargetNoise:
    """BC: targets unchanged."""

    def __call__(self, actions: torch.Tensor, sample_idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return actions


class IsotropicTargetNoise:
    """sigma-BC: a + sigma * N(0, I), independent of the state."""

    def __init__(self, sigma: float):
        if sigma < 0:
            raise ValueError(f"sigma={sigma} must be >= 0")
        self.sigma = sigma

    def __call__(self, actions: torch.Tensor, sample_idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        eps = randn_like_on(actions.shape, actions, generator)
        return actions + self.sigma * eps


class PosteriorTargetNoise:
    """PostBC: a + alpha * L(s) eps with Sigma(s) = L L^T the ensemble's posterior covariance at sample s."""

    def __init__(self, posterior: PosteriorEstimate, alpha: float):
        if alpha < 0:
            raise ValueError(f"alpha={alpha} must be >= 0")
        self.posterior, self.alpha = posterior, alpha

    def __call__(self, actions: torch.Tensor, sample_idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        B = actions.shape[0]
        if actions[0].numel() != self.posterior.dim:
            raise ValueError(
                f"actions have {actions[0].numel()} values per sample, the posterior was estimated for {self.posterior.dim} "
                "(chunk * act_dim); use the same chunk size as the ensemble"
            )
        noise = self.posterior.sample_noise(sample_idx, generator).to(actions.dtype)
        return actions + self.alpha * noise.reshape(B, *actions.shape[1:])
