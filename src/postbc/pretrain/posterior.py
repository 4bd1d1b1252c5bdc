"""Posterior over the demonstrator's action chunk, estimated with a bootstrap ensemble (paper sec. 3).

1. `fit_ensemble`: K regressors (one `EnsembleMLP`) map a normalized observation to the normalized,
   flattened action chunk (D = chunk * act_dim). Member k trains on its own bootstrap resample,
   given as row k of a (K, N) count matrix; each step draws (K, B) dataset indices with
   `torch.multinomial` over those rows, so one epoch is N draws per member.
2. `estimate_posterior`: for every dataset sample, the mean and the sample covariance (1 / (K - 1))
   over members of their predicted chunk (only the means, for a Gaussian head), stored with a
   square-root factor L (Sigma = L L^T) so that noise with covariance Sigma is `L @ eps`.
   "full": L = V diag(sqrt(max(lambda, 0))) from the eigendecomposition Sigma = V diag(lambda) V^T
   (exact for the PSD Sigma, no jitter needed when members agree); "diagonal": the std vector.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from postbc.device import randn_like_on
from postbc.policies.ensemble import EnsembleMLP
from postbc.policies.shared_ensemble import SharedTrunkEnsemble
from postbc.pretrain.loop import ResumableState, run_epochs

COVARIANCE_KINDS = ("full", "diagonal")


@dataclasses.dataclass
class PosteriorEstimate:
    """Per-sample posterior mean (N, D) and covariance factor: (N, D, D) for "full", (N, D) std for "diagonal"."""

    mean: torch.Tensor
    factor: torch.Tensor
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in COVARIANCE_KINDS:
            raise ValueError(f"posterior kind={self.kind!r}; choose one of {COVARIANCE_KINDS}")
        n, d = self.mean.shape
        expected = (n, d, d) if self.kind == "full" else (n, d)
        if tuple(self.factor.shape) != expected:
            raise ValueError(f"{self.kind} posterior factor must have shape {expected}, got {tuple(self.factor.shape)}")

    @property
    def num_samples(self) -> int:
        return self.mean.shape[0]

    @property
    def dim(self) -> int:
        return self.mean.shape[1]

    def sample_noise(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, D) draws of N(0, Sigma(s_i)) for dataset samples `idx` (B,): L_i @ eps_i, fresh eps."""
        eps = randn_like_on((idx.shape[0], self.dim), self.factor, generator)
        idx = idx.to(self.factor.device)
        if self.kind == "diagonal":
            return self.factor[idx] * eps
        return torch.bmm(self.factor[idx], eps.unsqueeze(-1)).squeeze(-1)

    def covariance(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Sigma (n, D, D) for samples `idx` (all when None), rebuilt from the factor."""
        f = self.factor if idx is None else self.factor[idx]
        if self.kind == "diagonal":
            return torch.diag_embed(f**2)
        return f @ f.transpose(-1, -2)

    def std(self) -> torch.Tensor:
        """(N, D) marginal posterior std of each chunk coordinate (for plots of where the data is scarce)."""
        if self.kind == "diagonal":
            return self.factor
        return (self.factor**2).sum(-1).sqrt()

    def std_per_sample(self) -> torch.Tensor:
        """(N,) one number per sample: the root of the mean marginal variance over the chunk's coordinates."""
        return self.std().pow(2).mean(1).sqrt()

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "factor": self.factor}

    def to(self, device: torch.device | str) -> "PosteriorEstimate":
        return PosteriorEstimate(self.mean.to(device), self.factor.to(device), self.kind)

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], kind: str) -> "PosteriorEstimate":
        return cls(tensors["mean"], tensors["factor"], kind)


@torch.no_grad()
def estimate_posterior(ensemble: EnsembleMLP | SharedTrunkEnsemble, obs: torch.Tensor, kind: str = "full", batch_size: int = 1024) -> PosteriorEstimate:
    """Mean and covariance over members of the ensemble's predicted means at every row of `obs` (N, in)."""
    if kind not in COVARIANCE_KINDS:
        raise ValueError(f"covariance kind={kind!r}; choose one of {COVARIANCE_KINDS}")
    K = ensemble.num_members
    if K < 2:
        raise ValueError("a posterior covariance needs an ensemble of at least 2 members")
    means, factors = [], []
    ensemble.eval()  # an image encoder augments only while training
    for batch in obs.split(batch_size):
        preds = ensemble(batch).mean.double()  # (K, b, D)
        mean = preds.mean(0)
        centered = preds - mean
        if kind == "diagonal":
            factor = ((centered**2).sum(0) / (K - 1)).sqrt()
        else:
            cov = torch.einsum("kbd,kbe->bde", centered, centered) / (K - 1)
            evals, evecs = torch.linalg.eigh(cov)
            factor = evecs * evals.clamp(min=0).sqrt().unsqueeze(-2)
        means.append(mean.float())
        factors.append(factor.float())
    return PosteriorEstimate(torch.cat(means), torch.cat(factors), kind)


def fit_ensemble(
    ensemble: EnsembleMLP | SharedTrunkEnsemble,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    counts: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    generator: torch.Generator,
    checkpoint: Path,
    checkpoint_every: int = 25,
    log_dir: Path | None = None,
    identity: Mapping[str, Any] | None = None,
    quiet: bool = False,
) -> None:
    """Train member k on bootstrap counts[k] (K, N) for `epochs` epochs; resumes from `checkpoint`.

    `inputs` (N, in) and `targets` (N, D) are the normalized observations and flattened chunks.
    Every optimizer step is one batched forward/backward over all members (`EnsembleMLP.compute_grads`,
    no loop over members, no per-step allocation) and one fused Adam step. A `SharedTrunkEnsemble`
    trains by autograd on uniform minibatches weighted per head by the counts (its module docstring).
    """
    if counts.shape != (ensemble.num_members, inputs.shape[0]):
        raise ValueError(f"bootstrap counts must have shape ({ensemble.num_members}, {inputs.shape[0]}), got {tuple(counts.shape)}")
    weights = counts.to(torch.float32)
    steps = math.ceil(inputs.shape[0] / batch_size)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=lr, fused=True)
    state = ResumableState(checkpoint, {"ensemble": ensemble}, optimizer, generator, identity or {})
    if isinstance(ensemble, SharedTrunkEnsemble):
        train_epoch = _shared_trunk_epoch(ensemble, inputs, targets, weights, steps, batch_size, optimizer, generator)
        run_epochs(state, epochs, train_epoch, log_dir=log_dir, checkpoint_every=checkpoint_every, desc="ensemble", quiet=quiet)
        return
    # Buffers reused by every step: (K, B) indices, the gathered (K, B, in) / (K, B, D) batch; the
    # forward/backward writes into the ensemble's own preallocated workspace (`compute_grads`).
    # Indices are drawn on the generator's device (the CPU) and moved to the data's in one transfer.
    K = ensemble.num_members
    device = inputs.device
    idx = torch.empty(K, batch_size, dtype=torch.long)
    inputs, targets = inputs.contiguous(), targets.contiguous()
    x = torch.empty(K, batch_size, inputs.shape[1], dtype=inputs.dtype, device=device)
    y = torch.empty(K, batch_size, targets.shape[1], dtype=targets.dtype, device=device)

    def train_epoch(epoch: int) -> dict[str, float]:
        total = torch.zeros((), dtype=torch.float64, device=device)
        for _ in range(steps):
            torch.multinomial(weights, batch_size, replacement=True, generator=generator, out=idx)
            flat = idx.view(-1).to(device)
            torch.index_select(inputs, 0, flat, out=x.view(-1, inputs.shape[1]))
            torch.index_select(targets, 0, flat, out=y.view(-1, targets.shape[1]))
            total += ensemble.compute_grads(x, y).sum()  # sets every .grad (overwritten: no zero_grad)
            optimizer.step()
        return {"loss": total.item() / (steps * K)}

    try:
        run_epochs(state, epochs, train_epoch, log_dir=log_dir, checkpoint_every=checkpoint_every, desc="ensemble", quiet=quiet)
    finally:
        ensemble.free_workspace()
        for p in ensemble.parameters():
            p.grad = None


def _shared_trunk_epoch(ensemble: SharedTrunkEnsemble, inputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                        steps: int, batch_size: int, optimizer: torch.optim.Optimizer, generator: torch.Generator):
    """One epoch of a shared-trunk ensemble: `steps` uniform minibatches, head k weighting sample i by counts[k, i]."""
    device = inputs.device

    def train_epoch(epoch: int) -> dict[str, float]:
        ensemble.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for _ in range(steps):
            idx = torch.randint(0, inputs.shape[0], (batch_size,), generator=generator)
            on_device = idx.to(device)
            losses = ensemble.weighted_loss(inputs[on_device], targets[on_device], weights[:, idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()  # head k's gradient is that of training it alone; the trunk gets all K
            optimizer.step()
            total += losses.detach().sum()
        return {"loss": total.item() / (steps * ensemble.num_members)}

    return train_epoch
