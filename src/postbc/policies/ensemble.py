"""K independent MLP regressors as one network with batched weights.

Layer l holds `weight` (K, in, out) and `bias` (K, 1, out); a forward pass is one batched matmul
per layer over a (K, B, d) activation, so training K members costs one optimizer step over a few
large tensors instead of a Python loop over K modules (the rlpd ensemble idea, in PyTorch).
Members differ by their random initialization and by the data each one is fed (bootstrap).

Heads: "deterministic" predicts y; "gaussian" predicts a mean and a log-std trained by Gaussian
negative log-likelihood. The posterior estimate uses only the means.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

HEADS = ("deterministic", "gaussian")
LOG_STD_RANGE = (-5.0, 2.0)


class EnsembleOutput(NamedTuple):
    mean: torch.Tensor
    """(K, B, out_dim)"""
    log_std: torch.Tensor | None
    """(K, B, out_dim) for the Gaussian head, else None"""


class EnsembleMLP(nn.Module):
    """`num_members` MLPs (in_dim -> hidden x layers -> out_dim, ReLU) evaluated in one batched pass."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int, hidden: int = 512, layers: int = 3, head: str = "deterministic"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"ensemble head={head!r}; choose one of {HEADS}")
        if min(num_members, in_dim, out_dim, hidden) < 1 or layers < 0:
            raise ValueError("EnsembleMLP needs num_members, in_dim, out_dim, hidden >= 1 and layers >= 0")
        self.num_members, self.in_dim, self.out_dim, self.head = num_members, in_dim, out_dim, head
        widths = [in_dim] + [hidden] * layers + [out_dim * (2 if head == "gaussian" else 1)]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            bound = 1.0 / math.sqrt(w_in)  # nn.Linear's default init, drawn per member
            self.weights.append(nn.Parameter(torch.empty(num_members, w_in, w_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num_members, 1, w_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> EnsembleOutput:
        """x: (K, B, in_dim), one batch per member, or (B, in_dim) shared by all members."""
        if x.shape[-1] != self.in_dim or x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[0] != self.num_members):
            raise ValueError(f"ensemble input must be (B, {self.in_dim}) or ({self.num_members}, B, {self.in_dim}); got {tuple(x.shape)}")
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if h.ndim == 2:  # shared input: one (B, in) x (in, K*out) matmul, then split by member
                K, w_in, w_out = w.shape
                h = (h @ w.transpose(0, 1).reshape(w_in, K * w_out)).reshape(-1, K, w_out).transpose(0, 1) + b
            else:
                h = torch.baddbmm(b, h, w)
            if i < last:
                h = F.relu(h)
        if self.head == "deterministic":
            return EnsembleOutput(h, None)
        mean, log_std = h.chunk(2, dim=-1)
        return EnsembleOutput(mean, log_std.clamp(*LOG_STD_RANGE))

    def member_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K,) per-member loss on (K, B, in) / (K, B, out) batches: MSE or Gaussian NLL (mean over B and dims)."""
        mean, log_std = self(x)
        if log_std is None:
            return ((mean - y) ** 2).mean(dim=(1, 2))
        nll = 0.5 * ((y - mean) * torch.exp(-log_std)) ** 2 + log_std + 0.5 * math.log(2 * math.pi)
        return nll.mean(dim=(1, 2))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum of member losses: each member's gradient equals that of training it alone."""
        return self.member_losses(x, y).sum()
