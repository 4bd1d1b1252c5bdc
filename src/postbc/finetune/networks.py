"""Networks for finetuning: a plain MLP, a critic ensemble as one batched network, a tanh-Gaussian actor.

Every hidden layer is Linear -> (LayerNorm) -> activation, the order of the DSRL reference
(Stable-Baselines3's `post_linear_modules=[LayerNorm]`); LayerNorm keeps critics trained at a
high update-to-data ratio from blowing up their values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class Activation(nn.Module):
    """The nonlinearity, always computed in fp32: CPU bfloat16 tanh is about 3x slower than fp32."""

    def __init__(self, name: str):
        super().__init__()
        self.fn = ACTIVATIONS[name]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x.float())


def bf16_autocast(precision: str, device: torch.device | str = "cpu"):
    """Context for forward passes on `device`: "bf16" runs matmuls in bfloat16 (weights, grads and optimizer stay fp32)."""
    from postbc.device import autocast

    return autocast(device, precision)


def in_fp32(fn, x: torch.Tensor, *args):
    """`fn(x, *args)` on fp32 input with autocast off: how every output layer computes."""
    with torch.autocast(x.device.type, enabled=False):
        return fn(x.float(), *args)


class OutputLinear(nn.Linear):
    """A linear output layer that always computes in fp32, also under bf16 autocast.

    bfloat16 keeps 8 bits of mantissa: a Q value near -100 would be rounded to a multiple of 0.5,
    coarser than one step's reward. Output layers are tiny, so full precision costs nothing.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_fp32(super().forward, x)


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, activation: str = "relu",
        layer_norm: bool = False) -> nn.Sequential:
    """`layers` hidden layers of width `hidden` (LayerNorm before each activation if asked), then a linear output (always fp32)."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), *([nn.LayerNorm(hidden)] if layer_norm else []), Activation(activation)]
        d = hidden
    mods.append(OutputLinear(d, out_dim))
    return nn.Sequential(*mods)


class EnsembleLinear(nn.Module):
    """K independent linear layers applied as one batched matmul: x (K, B, in) -> (K, B, out)."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # same init as nn.Linear, per member
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        w, b = (self.weight.detach(), self.bias.detach()) if detach else (self.weight, self.bias)
        return torch.baddbmm(b, x, w)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the features of (K, B, D) with a separate affine map per member (as K nn.LayerNorm)."""

    def __init__(self, members: int, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, dim))
        self.bias = nn.Parameter(torch.zeros(members, 1, dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        w, b = (self.weight.detach(), self.bias.detach()) if detach else (self.weight, self.bias)
        return torch.addcmul(b, F.layer_norm(x.float(), x.shape[-1:], eps=self.eps), w)


class CriticMLPs(nn.Module):
    """K MLPs with identical shapes evaluated in one pass (a critic ensemble); output (K, B, out_dim).

    Not the PostBC posterior ensemble (`postbc.policies.ensemble.EnsembleMLP`): that one trains through a
    hand-written backward with ReLU and Gaussian heads, while critics need autograd through the action,
    LayerNorm, any activation, and fp32 outputs under bf16. Their state_dict keys differ, so merging the
    two would break saved critics and resume checkpoints.

    `detach=True` evaluates with the weights cut from the graph: the actor's loss can then flow
    through the critic into the action without leaving gradients on the critic.
    """

    def __init__(self, members: int, in_dim: int, out_dim: int, hidden: int, layers: int, activation: str = "relu",
                 layer_norm: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden] * layers + [out_dim]
        self.members = members
        self.layers = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNorm(members, hidden) for _ in range(layers)) if layer_norm else None
        self.act = Activation(activation)

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x, detach)
            if self.norms is not None:
                x = self.norms[i](x, detach)
            x = self.act(x)
        return in_fp32(self.layers[-1], x, detach)


class Critic(nn.Module):
    """Q(s, a) for K ensemble members: returns (K, B)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int, members: int = 2, activation: str = "relu",
                 layer_norm: bool = False):
        super().__init__()
        self.net = CriticMLPs(members, obs_dim + act_dim, 1, hidden, layers, activation, layer_norm)

    def forward(self, obs: torch.Tensor, act: torch.Tensor, detach: bool = False) -> torch.Tensor:
        return self.net(torch.cat([obs, act], -1), detach).squeeze(-1)


LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def tanh_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log density of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over the last axis.

    Uses log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite when |u| is large.
    """
    gauss = -0.5 * (((u - mean) / log_std.exp()) ** 2) - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gauss - log_det).sum(-1)


class TanhGaussianActor(nn.Module):
    """pi(a|s): a = scale * tanh(u), u ~ N(mu(s), sigma(s)).

    Log-probs are those of the squashed action in [-1, 1]^d, before `scale` (as Stable-Baselines3
    does), so a target entropy of 0 means the same for every action magnitude.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, layers: int, scale: float = 1.0, activation: str = "relu",
                 layer_norm: bool = False):
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, hidden, layers, activation, layer_norm)
        self.scale = scale

    def dist_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(obs).chunk(2, -1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized sample and its log-prob: (B, act_dim), (B,)."""
        mean, log_std = self.dist_params(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return self.scale * torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False, eps: torch.Tensor | None = None) -> torch.Tensor:
        """scale * tanh(mu(s)) when deterministic, else a sample; `eps` (B, act_dim) fixes its N(0, I) draw."""
        mean, log_std = self.dist_params(obs)
        if deterministic:
            return self.scale * torch.tanh(mean)
        eps = torch.randn_like(mean) if eps is None else eps.reshape(mean.shape).to(mean.device, mean.dtype)
        return self.scale * torch.tanh(mean + log_std.exp() * eps)
