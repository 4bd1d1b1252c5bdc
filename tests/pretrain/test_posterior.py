"""Posterior mean / covariance from an ensemble, against numpy on planted members; bootstrap sampling."""

import numpy as np
import pytest
import torch

from postbc.data import bootstrap_counts
from postbc.policies.ensemble import EnsembleMLP
from postbc.pretrain.posterior import PosteriorEstimate, estimate_posterior, fit_ensemble


def planted_ensemble(K=7, in_dim=3, D=4, seed=0) -> EnsembleMLP:
    """Linear members (layers=0) with planted random weights: member k predicts x W_k + b_k."""
    torch.manual_seed(seed)
    ens = EnsembleMLP(K, in_dim, D, hidden=1, layers=0)
    with torch.no_grad():
        ens.weights[0].normal_()
        ens.biases[0].normal_()
    return ens


def numpy_predictions(ens: EnsembleMLP, obs: torch.Tensor) -> np.ndarray:
    w, b = ens.weights[0].detach().double().numpy(), ens.biases[0].detach().double().numpy()
    return np.einsum("ni,kid->knd", obs.double().numpy(), w) + b  # (K, N, D)


def test_full_covariance_matches_numpy_cov():
    ens = planted_ensemble()
    obs = torch.randn(11, 3)
    post = estimate_posterior(ens, obs, "full", batch_size=4)  # batches must not change anything
    preds = numpy_predictions(ens, obs)
    np.testing.assert_allclose(post.mean.numpy(), preds.mean(0), rtol=1e-5, atol=1e-5)
    for i in range(11):
        np.testing.assert_allclose(post.covariance(torch.tensor([i]))[0].numpy(), np.cov(preds[:, i, :].T), rtol=1e-4, atol=1e-5)
    assert post.factor.shape == (11, 4, 4)
    np.testing.assert_allclose(post.std().numpy(), preds.std(0, ddof=1), rtol=1e-4)


def test_diagonal_covariance_is_the_member_std():
    ens = planted_ensemble()
    obs = torch.randn(5, 3)
    post = estimate_posterior(ens, obs, "diagonal")
    preds = numpy_predictions(ens, obs)
    np.testing.assert_allclose(post.factor.numpy(), preds.std(0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(post.covariance().numpy(), np.stack([np.diag(v) for v in preds.var(0, ddof=1)]), rtol=1e-4, atol=1e-6)


def test_identical_members_give_a_zero_factor_not_nan():
    ens = planted_ensemble(K=3)
    with torch.no_grad():
        ens.weights[0].copy_(ens.weights[0][:1].expand_as(ens.weights[0]))
        ens.biases[0].copy_(ens.biases[0][:1].expand_as(ens.biases[0]))
    post = estimate_posterior(ens, torch.randn(4, 3), "full")
    assert torch.isfinite(post.factor).all() and post.factor.abs().max() < 1e-5


def test_sample_noise_is_factor_times_fresh_gaussian_with_the_planted_covariance():
    L = torch.tensor([[[1.0, 0.0], [0.5, 2.0]], [[0.1, 0.0], [0.0, 0.1]]])
    post = PosteriorEstimate(mean=torch.zeros(2, 2), factor=L, kind="full")
    idx = torch.zeros(20000, dtype=torch.long)
    draws = post.sample_noise(idx, torch.Generator().manual_seed(0))
    eps = torch.randn(20000, 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws, eps @ L[0].T)
    np.testing.assert_allclose(np.cov(draws.numpy().T), (L[0] @ L[0].T).numpy(), rtol=0.05, atol=0.02)
    diag = PosteriorEstimate(mean=torch.zeros(2, 2), factor=torch.tensor([[1.0, 3.0], [0.0, 0.0]]), kind="diagonal")
    torch.testing.assert_close(diag.sample_noise(torch.tensor([0, 1]), torch.Generator().manual_seed(1)),
                               torch.randn(2, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([[1.0, 3.0], [0.0, 0.0]]))


def test_bad_factor_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(3, 2, 2\)"):
        PosteriorEstimate(mean=torch.zeros(3, 2), factor=torch.zeros(3, 2), kind="full")


def test_fit_ensemble_weights_each_sample_by_its_bootstrap_multiplicity(tmp_path):
    """One input, labels +1 (drawn 3 times) and -1 (once): the squared loss is minimised at (3 - 1) / 4 = 0.5."""
    torch.manual_seed(0)
    obs = torch.zeros(2, 1)
    targets = torch.tensor([[1.0], [-1.0]])
    counts = torch.tensor([[3, 1], [1, 3]])
    ens = EnsembleMLP(2, 1, 1, hidden=8, layers=1)
    fit_ensemble(ens, obs, targets, counts, epochs=400, batch_size=64, lr=1e-2,
                 generator=torch.Generator().manual_seed(0), checkpoint=tmp_path / "ens", checkpoint_every=1000, quiet=True)
    pred = ens(obs[:1]).mean.detach().reshape(2)
    torch.testing.assert_close(pred, torch.tensor([0.5, -0.5]), atol=0.06, rtol=0)


def test_trajectory_bootstrap_keeps_episodes_whole():
    episode_of = np.repeat(np.arange(5), [3, 1, 4, 2, 5])
    counts = bootstrap_counts("trajectory", episode_of, 50, np.random.default_rng(0))
    for e in range(5):
        member_counts = counts[:, episode_of == e]
        assert (member_counts == member_counts[:, :1]).all()  # all steps of an episode share its multiplicity
    assert (counts[:, np.r_[0, 3, 4, 8, 10]].sum(1) == 5).all()  # 5 episodes drawn per member


def test_each_member_fits_its_own_bootstrap_sample(tmp_path):
    """Same inputs, two labels: a member that only ever sees label +1 predicts +1, and vice versa."""
    torch.manual_seed(0)
    obs = torch.randn(8, 2).repeat(2, 1)
    targets = torch.cat([torch.ones(8, 1), -torch.ones(8, 1)])
    counts = torch.cat([torch.ones(1, 8), torch.zeros(1, 8)], 1).long()
    counts = torch.cat([counts, counts.flip(1)])  # member 0: first half (+1); member 1: second half (-1)
    ens = EnsembleMLP(2, 2, 1, hidden=16, layers=1)
    fit_ensemble(ens, obs, targets, counts, epochs=200, batch_size=16, lr=1e-2,
                 generator=torch.Generator().manual_seed(0), checkpoint=tmp_path / "ens", checkpoint_every=1000, quiet=True)
    pred = ens(obs[:8]).mean.detach()
    assert (pred[0] > 0.9).all() and (pred[1] < -0.9).all()
