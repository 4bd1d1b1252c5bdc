"""K independent MLP regressors as one network with batched weights.

Layer l holds `weight` (K, in, out) and `bias` (K, 1, out); a forward pass is one batched matmul
per layer over a (K, B, d) activation, so training K members costs one optimizer step over a few
large tensors instead of a Python loop over K modules (the rlpd ensemble idea, in PyTorch).
Members differ by their random initialization and by the data each one is fed (bootstrap).

Heads: "deterministic" predicts y; "gaussian" predicts a mean and a log-std trained by Gaussian
negative log-likelihood. The posterior estimate uses only the means.

Training: `loss(x, y).backward()` works (autograd), but `compute_grads(x, y)` is the fast path used
by `fit_ensemble`: a hand-written forward and backward of the same loss that writes every
activation, gradient and parameter `.grad` into buffers allocated once (no per-step allocation,
ReLU and its backward in place, no autograd graph). On a 2-core CPU that is 1.3-1.5x faster than
autograd (K = 100, 3x512), mostly from not writing ~0.5 GB of fresh tensors per step (tested equal to autograd).
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


def head_output(out: torch.Tensor, head: str) -> EnsembleOutput:
    """The last layer's output as the head's prediction: the mean, or (mean, clamped log-std) halves."""
    if head == "deterministic":
        return EnsembleOutput(out, None)
    mean, log_std = out.chunk(2, dim=-1)
    return EnsembleOutput(mean, log_std.clamp(*LOG_STD_RANGE))


def elementwise_loss(pred: EnsembleOutput, y: torch.Tensor) -> torch.Tensor:
    """Squared error, or the Gaussian negative log-likelihood for a Gaussian head, per element."""
    mean, log_std = pred
    if log_std is None:
        return (mean - y) ** 2
    return 0.5 * ((y - mean) * torch.exp(-log_std)) ** 2 + log_std + 0.5 * math.log(2 * math.pi)


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
        return head_output(h, self.head)

    def member_losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K,) per-member loss on (K, B, in) / (K, B, out) batches: MSE or Gaussian NLL (mean over B and dims)."""
        return elementwise_loss(self(x), y).mean(dim=(1, 2))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Sum of member losses: each member's gradient equals that of training it alone."""
        return self.member_losses(x, y).sum()

    def _workspace(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer activation and gradient buffers for (K, B, in) batches, allocated once per (B, dtype)."""
        K, B = x.shape[0], x.shape[1]
        key = (B, x.dtype, x.device)
        ws = getattr(self, "_ws", None)
        if ws is None or ws[0] != key:
            outs = [w.shape[2] for w in self.weights]
            acts = [torch.empty(K, B, o, dtype=x.dtype, device=x.device) for o in outs]
            grads = [torch.empty(K, B, o, dtype=x.dtype, device=x.device) for o in outs[:-1]]
            ones = torch.ones(K, 1, B, dtype=x.dtype, device=x.device)  # bias grads as (K, 1, B) @ (K, B, out)
            ws = self._ws = (key, acts, grads, ones)
        for p in self.parameters():
            if p.grad is None or p.grad.shape != p.shape or not p.grad.is_contiguous():
                p.grad = torch.zeros_like(p, memory_format=torch.contiguous_format)
        return ws[1:]

    def free_workspace(self) -> None:
        """Drop the training buffers of `compute_grads` (they are rebuilt on the next call)."""
        self._ws = None

    @torch.no_grad()
    def compute_grads(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Set every parameter's `.grad` to the gradient of `loss(x, y)` and return `member_losses(x, y)` (K,).

        Same numbers as autograd (tested), but a hand-written backward into preallocated buffers:
        the `.grad` tensors are overwritten (no `zero_grad` needed) and reused across steps.
        x: (K, B, in), y: (K, B, out_dim).
        """
        if x.ndim != 3 or x.shape[0] != self.num_members or x.shape[2] != self.in_dim:
            raise ValueError(f"compute_grads needs x of shape ({self.num_members}, B, {self.in_dim}); got {tuple(x.shape)}")
        if y.shape != (*x.shape[:2], self.out_dim):
            raise ValueError(f"compute_grads needs y of shape {(*x.shape[:2], self.out_dim)}; got {tuple(y.shape)}")
        acts, grads, ones = self._workspace(x)
        last = len(self.weights) - 1
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            torch.baddbmm(b, h, w, out=acts[i])
            if i < last:
                acts[i].clamp_(min=0)  # ReLU in place; its backward only needs the output
            h = acts[i]
        B, D = x.shape[1], self.out_dim
        scale = 1.0 / (B * D)
        g = acts[last]  # becomes dLoss/dOutput in place (the output itself is not needed by the backward)
        if self.head == "deterministic":
            g.sub_(y)
            losses = g.square().mean(dim=(1, 2))
            g.mul_(2.0 * scale)
        else:
            mean, raw = g[..., :D], g[..., D:]
            log_std = raw.clamp(*LOG_STD_RANGE)
            inv_var = torch.exp(-2.0 * log_std)
            diff = mean - y
            z2 = diff.square().mul_(inv_var)
            losses = (0.5 * z2 + log_std).mean(dim=(1, 2)) + 0.5 * math.log(2 * math.pi)
            inside = (raw >= LOG_STD_RANGE[0]) & (raw <= LOG_STD_RANGE[1])  # clamp's gradient mask, as in autograd
            raw.copy_(torch.where(inside, 1.0 - z2, 0.0).mul_(scale))
            mean.copy_(diff.mul_(inv_var).mul_(scale))
        for i in range(last, -1, -1):
            w, b = self.weights[i], self.biases[i]
            h_in = x if i == 0 else acts[i - 1]
            torch.bmm(h_in.transpose(1, 2), g, out=w.grad)
            torch.bmm(ones, g, out=b.grad)  # sum over the batch; faster than a strided sum(dim=1)
            if i > 0:
                g_in = grads[i - 1]
                torch.bmm(g, w.transpose(1, 2), out=g_in)
                torch.ops.aten.threshold_backward.grad_input(g_in, h_in, 0.0, grad_input=g_in)  # ReLU backward, in place
                g = g_in
        return losses
