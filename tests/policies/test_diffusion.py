"""Diffusion schedule and samplers against closed forms (exact oracle denoisers, float64)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from postbc.policies.diffusion import (
    EMA,
    DiffusionConfig,
    DiffusionPolicy,
    cosine_schedule,
    gaussian_log_prob,
    sampling_timesteps,
)

CFG = DiffusionConfig(obs_dim=3, act_dim=2, chunk=4, hidden=32, layers=2, train_steps=100, inference_steps=8)


class GaussianOracle(nn.Module):
    """The exact eps predictor E[eps | x_t] for data x0 ~ N(mean, std^2 I) (std = 0: a point mass)."""

    def __init__(self, alphas_cumprod: torch.Tensor, mean: torch.Tensor, std: float):
        super().__init__()
        self.abar, self.mean, self.var = alphas_cumprod, mean, std**2

    def forward(self, obs, t, x):
        a = self.abar[t].unsqueeze(-1)
        return (1 - a).sqrt() * (x - a.sqrt() * self.mean) / (a * self.var + 1 - a)


def oracle_policy(mean: torch.Tensor, std: float = 0.0) -> DiffusionPolicy:
    policy = DiffusionPolicy(CFG).double()
    policy.denoiser = GaussianOracle(policy.alphas_cumprod, mean, std)
    return policy


def test_cosine_schedule_matches_closed_form():
    T, s = 100, 0.008
    betas = cosine_schedule(T)
    abar = torch.cumprod(1 - betas, 0).numpy()
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    expected = np.array([f((t + 1) / T) / f(0) for t in range(T)])
    np.testing.assert_allclose(abar[:-1], expected[:-1], rtol=1e-10)
    assert betas[-1] == 0.999 and (betas[:-1] < 0.999).all()  # only the last step is capped
    assert (np.diff(abar) < 0).all() and abar[0] > 0.999


def test_sampling_timesteps_are_distinct_and_span_the_schedule():
    assert sampling_timesteps(100, 8).tolist() == [99, 85, 71, 57, 42, 28, 14, 0]
    assert sampling_timesteps(100, 100).tolist() == list(range(99, -1, -1))
    assert sampling_timesteps(100, 1).tolist() == [99]
    with pytest.raises(ValueError, match="sampling steps"):
        sampling_timesteps(10, 11)


def test_loss_is_eps_mse_at_given_noise_and_time():
    torch.manual_seed(0)
    policy = DiffusionPolicy(CFG)
    obs, x0, eps = torch.randn(5, 3), torch.rand(5, 4, 2) * 2 - 1, torch.randn(5, 4, 2)
    t = torch.tensor([0, 10, 50, 98, 99])
    a = policy.alphas_cumprod[t].unsqueeze(-1)
    x_t = a.sqrt() * x0.reshape(5, -1) + (1 - a).sqrt() * eps.reshape(5, -1)
    expected = ((policy.denoiser(obs, t, x_t) - eps.reshape(5, -1)) ** 2).mean()
    torch.testing.assert_close(policy.loss(obs, x0, noise=eps, t=t), expected)


@pytest.mark.parametrize("steps", [1, 8, 100])
def test_ddim_maps_any_noise_to_a_point_mass(steps):
    target = torch.linspace(-0.9, 0.9, 8, dtype=torch.float64)
    policy = oracle_policy(target)
    noise = torch.randn(16, 4, 2, dtype=torch.float64)
    out = policy.sample_ddim(torch.zeros(16, 3, dtype=torch.float64), noise, steps=steps)
    torch.testing.assert_close(out, target.reshape(1, 4, 2).expand(16, 4, 2), atol=1e-9, rtol=0)


def test_ddim_steps_follow_the_eta0_update_and_clip_x0():
    torch.manual_seed(1)
    policy = DiffusionPolicy(CFG).double()
    obs, noise = torch.randn(6, 3, dtype=torch.float64), 3 * torch.randn(6, 4, 2, dtype=torch.float64)
    abar = policy.alphas_cumprod
    x = noise.reshape(6, -1)
    with torch.no_grad():
        for t, t_prev in [(99, 0), (0, None)]:
            a = abar[t]
            eps = policy.denoiser(obs, torch.full((6,), t), x)
            x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
            a_prev = abar[t_prev] if t_prev is not None else torch.tensor(1.0, dtype=torch.float64)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    out = policy.sample_ddim(obs, noise, steps=2)
    torch.testing.assert_close(out.reshape(6, -1), x)
    assert out.abs().max() <= 1.0


def test_ddim_is_deterministic_given_noise():
    policy = DiffusionPolicy(CFG)
    obs, noise = torch.randn(4, 3), torch.randn(4, 4, 2)
    first = policy.sample_ddim(obs, noise)
    torch.manual_seed(123)
    torch.testing.assert_close(policy.sample_ddim(obs, noise), first, rtol=0, atol=0)
    # Rows are independent: one row alone gives the same action as in the batch.
    torch.testing.assert_close(policy.sample_ddim(obs[2:3], noise[2:3]), first[2:3])


def test_ddpm_full_schedule_uses_the_ddpm_posterior():
    target = torch.linspace(-0.5, 0.5, 8, dtype=torch.float64)
    policy = oracle_policy(target)
    abar = policy.alphas_cumprod  # the schedule itself is checked above; here the posterior given it
    betas = torch.cat([1 - abar[:1], 1 - abar[1:] / abar[:-1]])
    x_t = torch.randn(3, 8, dtype=torch.float64)
    obs = torch.zeros(3, 3, dtype=torch.float64)
    for i in (0, 50, 98):  # step i denoises from t = 99 - i to t - 1
        t = 99 - i
        mean, std = policy.reverse_gaussian(obs, x_t, i, steps=100)
        c0 = abar[t - 1].sqrt() * betas[t] / (1 - abar[t])
        ct = (1 - betas[t]).sqrt() * (1 - abar[t - 1]) / (1 - abar[t])
        torch.testing.assert_close(mean, c0 * target + ct * x_t)
        torch.testing.assert_close(std, (betas[t] * (1 - abar[t - 1]) / (1 - abar[t])).sqrt().expand(3, 1))
    mean, std = policy.reverse_gaussian(obs, x_t, 99, steps=100)  # t = 0 -> clean data: exact x0, no noise
    torch.testing.assert_close(mean, target.expand(3, 8))
    assert (std == 0).all()


def test_ddpm_log_probs_are_the_chain_gaussian_densities():
    torch.manual_seed(2)
    policy = DiffusionPolicy(CFG).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    out = policy.sample_ddpm(obs, generator=torch.Generator().manual_seed(0), steps=8, min_std=0.1)
    assert out.chain.shape == (5, 9, 4, 2) and out.log_probs.shape == (5, 8) and out.actions.shape == (5, 4, 2)
    torch.testing.assert_close(out.actions, out.chain[:, -1].clamp(-1, 1))
    for i in range(8):
        x_t, x_prev = out.chain[:, i].reshape(5, -1), out.chain[:, i + 1].reshape(5, -1)
        with torch.no_grad():
            mean, std = policy.reverse_gaussian(obs, x_t, i, steps=8, min_std=0.1)
        assert (std >= 0.1).all()
        s = std.numpy()
        expected = (-0.5 * ((x_prev.numpy() - mean.numpy()) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)).sum(-1)
        np.testing.assert_allclose(out.log_probs[:, i].numpy(), expected, rtol=1e-10)
        recomputed = policy.step_log_prob(obs, out.chain[:, i], out.chain[:, i + 1], i, min_std=0.1, steps=8)
        torch.testing.assert_close(recomputed, out.log_probs[:, i])
    # DPPO batches (state, step) pairs: a per-row step index gives the same numbers.
    rows = torch.arange(5)
    steps = torch.tensor([0, 3, 7, 1, 5])
    batched = policy.step_log_prob(obs, out.chain[rows, steps], out.chain[rows, steps + 1], steps, min_std=0.1, steps=8)
    torch.testing.assert_close(batched, out.log_probs[rows, steps])


def test_step_log_prob_is_differentiable():
    policy = DiffusionPolicy(CFG)
    obs = torch.randn(3, 3)
    out = policy.sample_ddpm(obs, steps=4, min_std=0.1)
    policy.step_log_prob(obs, out.chain[:, 1], out.chain[:, 2], 1, min_std=0.1, steps=4).sum().backward()
    assert all(p.grad is not None for p in policy.parameters())


def test_ddim_on_gaussian_data_is_the_closed_form_linear_map():
    """For N(m, s^2) data each DDIM step is affine in x_t: x' - sqrt(a') m = k (x - sqrt(a) m) with
    k = (sqrt(a a') s^2 + sqrt((1 - a)(1 - a'))) / (a s^2 + 1 - a)."""
    m, s = torch.linspace(-0.3, 0.3, 8, dtype=torch.float64), 0.1
    policy = oracle_policy(m, s)
    noise = torch.randn(50, 4, 2, dtype=torch.float64)
    abar = policy.alphas_cumprod
    ts, _ = policy.step_timesteps(8)
    a_list = [abar[t] for t in ts] + [torch.tensor(1.0, dtype=torch.float64)]
    gain = 1.0
    for a, a_prev in zip(a_list[:-1], a_list[1:]):
        gain = gain * ((a * a_prev).sqrt() * s**2 + ((1 - a) * (1 - a_prev)).sqrt()) / (a * s**2 + 1 - a)
    expected = m + gain * (noise.reshape(50, -1) - a_list[0].sqrt() * m)
    torch.testing.assert_close(policy.sample_ddim(torch.zeros(50, 3, dtype=torch.float64), noise).reshape(50, -1), expected)


def test_ddpm_on_gaussian_data_matches_the_linear_gaussian_recursion():
    """For N(m, s^2) data each DDPM step is x' - sqrt(a') m = k (x - sqrt(a) m) + std z, so the output
    variance follows v' = k^2 v + std^2 from v = 1 (Monte Carlo check of the whole chain)."""
    m, s = torch.linspace(-0.3, 0.3, 8, dtype=torch.float64), 0.1
    policy = oracle_policy(m, s)
    n, steps = 4000, 8
    out = policy.sample_ddpm(torch.zeros(n, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(0), steps=steps)
    abar = policy.alphas_cumprod
    ts, ts_prev = policy.step_timesteps(steps)
    var = torch.tensor(1.0, dtype=torch.float64)
    for t, t_prev in zip(ts, ts_prev):
        a = abar[t]
        a_prev = abar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
        alpha = a / a_prev
        c0 = a_prev.sqrt() * (1 - alpha) / (1 - a)
        ct = alpha.sqrt() * (1 - a_prev) / (1 - a)
        k = c0 * a.sqrt() * s**2 / (a * s**2 + 1 - a) + ct
        var = k**2 * var + (1 - alpha) * (1 - a_prev) / (1 - a)
    x = out.actions.reshape(n, -1)
    torch.testing.assert_close(x.mean(0), m, atol=4 * var.sqrt().item() / math.sqrt(n), rtol=0)
    torch.testing.assert_close(x.var(0), var.expand(8), rtol=0.1, atol=0)  # sd of the estimate ~ 2.2%


def test_ddpm_point_mass_is_exact_without_min_std():
    target = torch.linspace(-1, 1, 8, dtype=torch.float64)
    policy = oracle_policy(target)
    out = policy.sample_ddpm(torch.zeros(2, 3, dtype=torch.float64), steps=8)
    torch.testing.assert_close(out.actions.reshape(2, -1), target.expand(2, 8))
    assert (out.log_probs[:, -1] == 0).all()  # the last step is deterministic (std 0)


def test_gaussian_log_prob_closed_form():
    x, mean, std = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0]])
    expected = -0.5 * (0.25 + 1.0) - 2 * math.log(2.0) - math.log(2 * math.pi)
    assert gaussian_log_prob(x, mean, std).item() == pytest.approx(expected)


def test_ema_follows_the_warmup_decay():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.995)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d = 2 / 11  # min(0.995, (1 + 1) / (10 + 1))
    torch.testing.assert_close(ema.model.weight, d * start + (1 - d) * model.weight)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="inference_steps"):
        DiffusionConfig(obs_dim=1, act_dim=1, chunk=1, train_steps=4, inference_steps=8)
    with pytest.raises(ValueError, match="time_embed_dim"):
        DiffusionConfig(obs_dim=1, act_dim=1, chunk=1, time_embed_dim=7)
