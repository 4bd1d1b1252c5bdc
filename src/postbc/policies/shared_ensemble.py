"""K regression heads on one shared trunk: the paper's ensemble for Libero (5 heads on a shared encoder).

Beside `EnsembleMLP` (K independent members), this kind shares everything up to the last hidden
layer: the observation encoder (a conv net per image, `ObsEncoder`) and `layers - 1` hidden
layers; each head is one hidden layer and an output layer of its own, evaluated for all K heads in
one batched matmul. Where the input is an image, K independent conv nets would cost K times the
compute and memory; a shared trunk costs one.

Head k learns from its own bootstrap resample through per-sample weights: a minibatch is drawn
uniformly, and head k weights sample i by its multiplicity counts[k, i] (0 = left out), as in
bootstrapped DQN's masks; in expectation that is head k training on its resample. The posterior
uses the heads' means, exactly as for independent members (`estimate_posterior`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from postbc.policies.ensemble import HEADS, EnsembleOutput, elementwise_loss, head_output
from postbc.policies.obs_encoder import ObsEncoder


class SharedTrunkEnsemble(nn.Module):
    """`num_members` heads (hidden -> hidden -> out_dim each) on one trunk (encoder, `layers - 1` hidden layers)."""

    def __init__(self, num_members: int, in_dim: int, out_dim: int, hidden: int = 512, layers: int = 3,
                 head: str = "deterministic", images: Sequence[Sequence[int]] = (), image_features: int = 64):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"ensemble head={head!r}; choose one of {HEADS}")
        if min(num_members, in_dim, out_dim, hidden, layers) < 1:
            raise ValueError("SharedTrunkEnsemble needs num_members, in_dim, out_dim, hidden, layers >= 1")
        self.num_members, self.in_dim, self.out_dim, self.head = num_members, in_dim, out_dim, head
        self.encoder = ObsEncoder(in_dim, images, image_features)
        widths = [self.encoder.out_dim] + [hidden] * (layers - 1)
        trunk: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            trunk += [nn.Linear(w_in, w_out), nn.ReLU()]
        self.trunk = nn.Sequential(*trunk)
        self.head_weights = nn.ParameterList()
        self.head_biases = nn.ParameterList()
        for w_in, w_out in ((widths[-1], hidden), (hidden, out_dim * (2 if head == "gaussian" else 1))):
            bound = 1.0 / math.sqrt(w_in)  # nn.Linear's default init, drawn per head
            self.head_weights.append(nn.Parameter(torch.empty(num_members, w_in, w_out).uniform_(-bound, bound)))
            self.head_biases.append(nn.Parameter(torch.empty(num_members, 1, w_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> EnsembleOutput:
        """x: (B, in_dim), shared by all heads -> means (K, B, out_dim)."""
        if x.ndim != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"shared-trunk ensemble input must be (B, {self.in_dim}); got {tuple(x.shape)}")
        h = self.trunk(self.encoder(x))
        K = self.num_members
        w, b = self.head_weights[0], self.head_biases[0]
        h = F.relu((h @ w.transpose(0, 1).reshape(w.shape[1], -1)).view(-1, K, w.shape[2]).transpose(0, 1) + b)
        return head_output(torch.baddbmm(self.head_biases[1], h, self.head_weights[1]), self.head)

    def sample_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K, B) loss of every head on every sample (mean over dims): MSE or Gaussian NLL."""
        return elementwise_loss(self(x), y).mean(-1)

    def weighted_loss(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(K,) per-head losses, head k's samples weighted by its bootstrap multiplicities `weights[k]` (K, B)."""
        return (self.sample_losses(x, y) * weights).sum(1) / weights.sum(1).clamp(min=1.0)
