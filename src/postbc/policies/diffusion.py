"""Diffusion policy over action chunks: cosine schedule, MLP denoiser, DDIM and DDPM sampling.

Everything works in normalized space: observations and action chunks mapped to [-1, 1] by the
dataset's normalizers (`PretrainedPolicy` does the mapping for raw env data).

- Training: epsilon prediction, `x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`, MSE on eps.
- Sampling runs on a descending subsequence of the training timesteps (`sampling_timesteps`).
  Each step first estimates x0 from the predicted eps, clips it to [-1, 1], and recomputes the eps
  that is consistent with the clipped x0 (as DPPO does), so both samplers stay inside the data box.
- `sample_ddim` (eta = 0) is a deterministic function of the initial noise: DSRL steers the policy
  by choosing that noise.
- `sample_ddpm` is ancestral sampling with the DDPM posterior q(x_prev | x_t, x0) of the (possibly
  respaced) schedule and returns every step's Gaussian log-probability: DPPO treats each denoising
  step as an MDP step and recomputes those log-probs under new weights with `step_log_prob`.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from postbc.device import randint_on, randn_like_on

X0_CLIP = 1.0  # x0 estimates are clipped to [-X0_CLIP, X0_CLIP] (the normalized action box)


@dataclasses.dataclass
class DiffusionConfig:
    """Shape and schedule of a diffusion policy."""

    obs_dim: int
    """Flat observation size."""
    act_dim: int
    """Action size of one env step."""
    chunk: int
    """Actions per chunk (the paper uses 4 for DSRL / DPPO, 1 for Best-of-N)."""
    hidden: int = 512
    """Denoiser MLP width (paper: 512 Lift, 1024 Can / Square)."""
    layers: int = 3
    """Hidden layers of the denoiser MLP (paper: 3)."""
    time_embed_dim: int = 32
    """Size of the sinusoidal diffusion-time embedding (even)."""
    train_steps: int = 100
    """Diffusion steps T of the training schedule (paper: 100)."""
    inference_steps: int = 8
    """Default number of sampling steps (paper: 8 DDIM steps)."""
    images: tuple[tuple[int, int], ...] = ()
    """(offset, side) of each image within the flat observation (`obs_encoder.image_layout`); () for low-dim only."""
    image_features: int = 64
    """Features each image's conv encoder hands the denoiser (used only with `images`)."""

    def __post_init__(self) -> None:
        self.images = tuple((int(offset), int(side)) for offset, side in self.images)
        for name in ("obs_dim", "act_dim", "chunk", "hidden", "layers", "time_embed_dim", "train_steps", "inference_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DiffusionConfig.{name}={getattr(self, name)!r} must be >= 1")
        if self.time_embed_dim % 2:
            raise ValueError(f"DiffusionConfig.time_embed_dim={self.time_embed_dim} must be even (sin and cos halves)")
        if self.inference_steps > self.train_steps:
            raise ValueError(
                f"DiffusionConfig.inference_steps={self.inference_steps} must be <= train_steps={self.train_steps}"
            )

    @property
    def flat_dim(self) -> int:
        """Size of a flattened action chunk (chunk * act_dim)."""
        return self.chunk * self.act_dim


def cosine_schedule(train_steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Betas (T,) of the cosine schedule (Nichol & Dhariwal 2021), float64.

    abar(u) = cos^2((u + s) / (1 + s) * pi / 2) / cos^2(s / (1 + s) * pi / 2) for u = t / T, and
    beta_t = 1 - abar((t+1)/T) / abar(t/T), capped at `max_beta` (only the last step hits the cap),
    so index t of `cumprod(1 - betas)` is abar((t+1)/T).
    """
    u = torch.arange(train_steps + 1, dtype=torch.float64) / train_steps
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def sampling_timesteps(train_steps: int, steps: int) -> torch.Tensor:
    """`steps` distinct training timesteps, evenly spaced, from T-1 down to 0 (LongTensor)."""
    if not 1 <= steps <= train_steps:
        raise ValueError(f"sampling steps={steps} must lie in [1, train_steps={train_steps}]")
    return torch.linspace(train_steps - 1, 0, steps, dtype=torch.float64).round().long()


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t.to(self.freqs.dtype).unsqueeze(-1) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class MLPDenoiser(nn.Module):
    """eps = net([encode(obs), time_embedding(t), x_t flattened]); `encode` is the identity for low-dim
    observations and an `ObsEncoder` (conv net per image) when the config lists images."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        d = cfg.time_embed_dim
        self.time_embed = nn.Sequential(SinusoidalEmbedding(d), nn.Linear(d, 2 * d), nn.Mish(), nn.Linear(2 * d, d))
        cond_dim = cfg.obs_dim
        if cfg.images:  # only then: low-dim checkpoints keep their parameter names
            from postbc.policies.obs_encoder import ObsEncoder

            self.encoder = ObsEncoder(cfg.obs_dim, cfg.images, cfg.image_features)
            cond_dim = self.encoder.out_dim
        widths = [cond_dim + d + cfg.flat_dim] + [cfg.hidden] * cfg.layers
        blocks: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            blocks += [nn.Linear(w_in, w_out), nn.Mish()]
        self.net = nn.Sequential(*blocks, nn.Linear(widths[-1], cfg.flat_dim))

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        encoder = getattr(self, "encoder", None)
        return obs if encoder is None else encoder(obs)

    def forward(self, obs: torch.Tensor, t: torch.Tensor, x_flat: torch.Tensor, encoded: bool = False) -> torch.Tensor:
        """`encoded`: `obs` is already `encode(obs)` (samplers encode once per chain, not once per step)."""
        cond = obs if encoded else self.encode(obs)
        return self.net(torch.cat([cond, self.time_embed(t), x_flat], dim=-1))


@dataclasses.dataclass
class DDPMSample:
    """Result of `DiffusionPolicy.sample_ddpm`."""

    actions: torch.Tensor
    """(B, chunk, act_dim): the last chain element clipped to [-1, 1]."""
    chain: torch.Tensor
    """(B, steps + 1, chunk, act_dim): chain[:, 0] is the initial noise, chain[:, i + 1] the output of step i."""
    log_probs: torch.Tensor
    """(B, steps): log N(chain[:, i + 1]; mean_i, std_i^2 I), summed over the chunk; 0 where std_i = 0."""
    timesteps: torch.Tensor
    """(steps,): the training timestep each step denoises from."""


class DiffusionPolicy(nn.Module):
    """Epsilon-prediction diffusion policy over flattened action chunks (normalized space)."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        self.denoiser = MLPDenoiser(cfg)
        alphas_cumprod = torch.cumprod(1 - cosine_schedule(cfg.train_steps), dim=0)
        # Derived from the config, so not saved in checkpoints.
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)

    # -- schedule helpers --------------------------------------------------------------------------
    def _abar(self, t: torch.Tensor) -> torch.Tensor:
        """abar_t as a (B, 1) column; t = -1 means "clean data" (abar = 1)."""
        abar = self.alphas_cumprod[t.clamp(min=0)]
        return torch.where(t >= 0, abar, torch.ones_like(abar)).unsqueeze(-1)

    def step_timesteps(self, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, t_prev) pairs of a sampler with `steps` steps; t_prev = -1 after the last step."""
        t = sampling_timesteps(self.cfg.train_steps, steps or self.cfg.inference_steps).to(self.alphas_cumprod.device)
        return t, torch.cat([t[1:], t.new_full((1,), -1)])

    def _check(self, obs: torch.Tensor, x: torch.Tensor | None = None) -> None:
        cfg = self.cfg
        if obs.ndim != 2 or obs.shape[1] != cfg.obs_dim:
            raise ValueError(f"obs must have shape (B, {cfg.obs_dim}), got {tuple(obs.shape)}")
        if x is not None and tuple(x.shape) != (obs.shape[0], cfg.chunk, cfg.act_dim):
            raise ValueError(f"noise / actions must have shape ({obs.shape[0]}, {cfg.chunk}, {cfg.act_dim}), got {tuple(x.shape)}")

    def _randn(self, shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return randn_like_on(shape, like, generator)

    # -- training ----------------------------------------------------------------------------------
    def loss(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean squared error of the predicted eps; `actions` (B, chunk, act_dim) are the (noised) targets."""
        self._check(obs, actions)
        x0 = actions.reshape(actions.shape[0], -1)
        noise = self._randn(x0.shape, x0, generator) if noise is None else noise.reshape(x0.shape)
        if t is None:
            t = randint_on(self.cfg.train_steps, (x0.shape[0],), x0.device, generator)
        abar = self._abar(t)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        return F.mse_loss(self.denoiser(obs, t, x_t), noise)

    # -- sampling ----------------------------------------------------------------------------------
    def denoise(
        self, obs: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, abar: torch.Tensor | float | None = None,
        encoded: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0 estimate clipped to [-1, 1], the eps consistent with it) for flat x_t (B, D), t (B,).

        `abar` (abar_t as a (B, 1) tensor or one float) may be passed to skip the schedule lookup;
        `encoded`: `obs` is `denoiser.encode(obs)` already.
        """
        abar = self._abar(t) if abar is None else abar
        eps = self.denoiser(obs, t, x_t, encoded=True) if encoded else self.denoiser(obs, t, x_t)
        x0 = ((x_t - (1 - abar) ** 0.5 * eps) / abar**0.5).clamp(-X0_CLIP, X0_CLIP)
        return x0, (x_t - abar**0.5 * x0) / (1 - abar) ** 0.5

    @torch.no_grad()
    def sample_ddim(self, obs: torch.Tensor, noise: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from the initial `noise` (B, chunk, act_dim) -> actions in [-1, 1]."""
        self._check(obs, noise)
        ts, ts_prev = self.step_timesteps(steps)
        abar = self.alphas_cumprod.tolist() + [1.0]  # index -1 (clean data) reads the appended 1.0
        x = noise.reshape(noise.shape[0], -1)
        encode = getattr(self.denoiser, "encode", None)  # once per chain (test oracles have none)
        cond = obs if encode is None else encode(obs)
        for t, t_prev in zip(ts, ts_prev.tolist()):  # per-step scalars as Python floats: fewer tiny tensor ops
            x0, eps = self.denoise(cond, x, t.expand(x.shape[0]), abar[int(t)], encoded=encode is not None)
            x = abar[t_prev] ** 0.5 * x0 + (1 - abar[t_prev]) ** 0.5 * eps  # the last step (abar_prev = 1) returns x0
        return x.reshape(noise.shape)

    def reverse_gaussian(
        self, obs: torch.Tensor, x_t: torch.Tensor, step_index: int | torch.Tensor, steps: int | None = None, min_std: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (B, D) and std (B, 1) of DDPM step `step_index`: q(x_prev | x_t, x0_hat), std floored at `min_std`.

        On a respaced schedule the step t -> t_prev uses alpha = abar_t / abar_prev, beta = 1 - alpha:
        mean = (sqrt(abar_prev) beta x0 + sqrt(alpha) (1 - abar_prev) x_t) / (1 - abar_t),
        var = beta (1 - abar_prev) / (1 - abar_t).
        """
        ts, ts_prev = self.step_timesteps(steps or self.cfg.train_steps)
        index = torch.as_tensor(step_index, device=ts.device).expand(x_t.shape[0])
        t, t_prev = ts[index], ts_prev[index]
        abar_t, abar_prev = self._abar(t), self._abar(t_prev)
        x0, _ = self.denoise(obs, x_t, t)
        alpha = abar_t / abar_prev
        mean = (abar_prev.sqrt() * (1 - alpha) * x0 + alpha.sqrt() * (1 - abar_prev) * x_t) / (1 - abar_t)
        std = ((1 - alpha) * (1 - abar_prev) / (1 - abar_t)).sqrt().clamp(min=min_std)
        return mean, std

    def step_log_prob(
        self,
        obs: torch.Tensor,
        x_t: torch.Tensor,
        x_prev: torch.Tensor,
        step_index: int | torch.Tensor,
        min_std: float = 0.0,
        steps: int | None = None,
        log_prob=None,
    ) -> torch.Tensor:
        """log p(x_prev | x_t) (B,) of DDPM step `step_index` under the current weights (differentiable).

        `x_t`, `x_prev` are chain elements (B, chunk, act_dim) (`chain[:, i]`, `chain[:, i + 1]`);
        `step_index` is an int or a (B,) LongTensor; `steps` and `min_std` must match the sampling call.
        `log_prob(x, mean, std)` replaces the summed Gaussian log-density (DPPO's clamped per-dimension mean).
        """
        B = x_t.shape[0]
        mean, std = self.reverse_gaussian(obs, x_t.reshape(B, -1), step_index, steps, min_std)
        return (log_prob or gaussian_log_prob)(x_prev.reshape(B, -1), mean, std)

    @torch.no_grad()
    def sample_ddpm(
        self,
        obs: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        min_std: float = 0.0,
        log_prob=None,
    ) -> DDPMSample:
        """Ancestral DDPM sampling over `steps` (default: all `train_steps`) with per-step log-probs.

        `noise` is the initial x_T (B, chunk, act_dim) (drawn from `generator` if None); the
        per-step noise comes from `generator`. DPPO uses `min_std` > 0 (0.1 in the paper) so every
        step has a proper density; with `min_std = 0` the last step is deterministic (log-prob 0).
        """
        B, cfg = obs.shape[0], self.cfg
        steps = steps or cfg.train_steps
        noise = self._randn((B, cfg.chunk, cfg.act_dim), obs, generator) if noise is None else noise
        self._check(obs, noise)
        x = noise.reshape(B, -1)
        chain, log_probs = [x], []
        for i in range(steps):
            mean, std = self.reverse_gaussian(obs, x, i, steps, min_std)
            x = mean + std * self._randn(x.shape, x, generator)
            chain.append(x)
            log_probs.append((log_prob or gaussian_log_prob)(x, mean, std))
        shape = (B, steps + 1, cfg.chunk, cfg.act_dim)
        return DDPMSample(
            actions=x.clamp(-X0_CLIP, X0_CLIP).reshape(B, cfg.chunk, cfg.act_dim),
            chain=torch.stack(chain, dim=1).reshape(shape),
            log_probs=torch.stack(log_probs, dim=1),
            timesteps=self.step_timesteps(steps)[0],
        )


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Sum over the last axis of log N(x; mean, std^2) with a per-row std (B, 1); rows with std = 0 give 0."""
    d = x.shape[-1]
    safe = torch.where(std > 0, std, torch.ones_like(std))
    logp = -0.5 * (((x - mean) / safe) ** 2).sum(-1) - d * (safe.squeeze(-1).log() + 0.5 * math.log(2 * math.pi))
    return torch.where(std.squeeze(-1) > 0, logp, torch.zeros_like(logp))


class EMA:
    """Exponential moving average of a model's weights, used for evaluation and the saved policy.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates (as in diffusers' EMAModel),
    so short CPU runs are not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.995):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay={decay} must lie in [0, 1)")
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - decay)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
