"""Target-noise transforms: exact draws, and the Gaussian fact behind PostBC checked numerically."""

import numpy as np
import pytest
import torch

from postbc.pretrain.posterior import PosteriorEstimate
from postbc.pretrain.target_noise import IsotropicTargetNoise, NoTargetNoise, PosteriorTargetNoise


def planted_posterior(n: int, L: torch.Tensor) -> PosteriorEstimate:
    return PosteriorEstimate(mean=torch.zeros(n, L.shape[0]), factor=L.expand(n, *L.shape).clone(), kind="full")


def test_transforms_are_exact_given_the_generator():
    actions = torch.rand(6, 2, 3)
    idx = torch.arange(6)
    assert NoTargetNoise()(actions, idx) is actions
    eps = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(IsotropicTargetNoise(0.1)(actions, idx, torch.Generator().manual_seed(0)), actions + 0.1 * eps)
    L = torch.linalg.cholesky(torch.eye(6) + 0.5)
    post = planted_posterior(6, L)
    eps = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    noised = PosteriorTargetNoise(post, alpha=2.0)(actions, idx, torch.Generator().manual_seed(0))
    torch.testing.assert_close(noised, actions + 2.0 * (eps @ L.T).reshape(6, 2, 3))  # alpha scales the std


def test_noise_is_fresh_every_call_and_per_sample():
    L = torch.stack([torch.eye(2), torch.zeros(2, 2)])
    post = PosteriorEstimate(mean=torch.zeros(2, 2), factor=L, kind="full")
    noise = PosteriorTargetNoise(post, alpha=1.0)
    g = torch.Generator().manual_seed(0)
    a = torch.zeros(2, 1, 2)
    first, second = noise(a, torch.tensor([0, 1]), g), noise(a, torch.tensor([0, 1]), g)
    assert not torch.equal(first[0], second[0])
    assert (first[1] == 0).all()  # a sample with zero posterior covariance is left as it is


def test_chunk_size_mismatch_is_named():
    post = planted_posterior(3, torch.eye(4))
    with pytest.raises(ValueError, match="chunk"):
        PosteriorTargetNoise(post, 1.0)(torch.zeros(3, 3, 2), torch.arange(3))


def test_regression_on_noised_targets_samples_the_posterior():
    """PAPER_NOTES sec. 3: a_i ~ N(mu, Sigma), prior mu ~ N(0, L0). Least squares on a_i + w_i,
    w_i ~ N(0, Sigma) (our PostBC transform), plus a penalty toward a prior draw, is an exact
    posterior sample: over many draws its mean and covariance are the posterior's."""
    D, n, R = 2, 5, 20_000
    Sigma_L = torch.tensor([[0.5, 0.0], [0.3, 0.2]], dtype=torch.float64)
    Sigma = Sigma_L @ Sigma_L.T
    L0 = torch.tensor([[1.0, 0.2], [0.2, 0.5]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    demos = torch.tensor([0.3, -0.2], dtype=torch.float64) + torch.randn(n, D, generator=g, dtype=torch.float64) @ Sigma_L.T

    Si, L0i = torch.linalg.inv(Sigma), torch.linalg.inv(L0)
    post_cov = torch.linalg.inv(n * Si + L0i)
    post_mean = post_cov @ Si @ demos.sum(0)

    noise = PosteriorTargetNoise(
        PosteriorEstimate(torch.zeros(n, D, dtype=torch.float64), Sigma_L.expand(n, D, D).clone(), "full"), alpha=1.0
    )
    targets = noise(demos.repeat(R, 1).unsqueeze(1), torch.arange(n).repeat(R), g).reshape(R, n, D)
    prior_draws = torch.randn(R, D, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(L0).T
    # argmin_m sum_i |t_i - m|^2_{Sigma^-1} + |m - prior_draw|^2_{L0^-1}
    fits = (post_cov @ (Si @ targets.sum(1).T + L0i @ prior_draws.T)).T

    np.testing.assert_allclose(fits.mean(0).numpy(), post_mean.numpy(), atol=4 * post_cov.diag().max().sqrt().item() / R**0.5)
    np.testing.assert_allclose(np.cov(fits.numpy().T), post_cov.numpy(), rtol=0.05, atol=2e-4)
    # Without the target noise only the prior draw spreads the fits: far too narrow.
    clean = (post_cov @ (Si @ demos.sum(0)[:, None] + L0i @ prior_draws.T)).T
    assert np.trace(np.cov(clean.numpy().T)) < 0.5 * torch.trace(post_cov).item()
