import numpy as np
import pytest

from postbc.theory.estimators import (
    analysis_alpha_lam,
    bc_policy,
    coverage,
    posterior_policy,
    postbc_policy,
    uniform_noise_policy,
)

# H=1, S=2, A=3; state 1 was never visited.
COUNTS = np.array([[[2, 1, 0], [0, 0, 0]]])
THIRD = np.full(3, 1 / 3)


def test_bc_is_empirical_and_uniform_where_unvisited():
    np.testing.assert_allclose(bc_policy(COUNTS)[0], [[2 / 3, 1 / 3, 0], THIRD])


def test_posterior_adds_lam_over_a_to_each_count():
    # (T(s,a) + 3/3) / (3 + 3) and (0 + 1) / (0 + 3).
    np.testing.assert_allclose(posterior_policy(COUNTS, lam=3.0)[0], [[3 / 6, 2 / 6, 1 / 6], THIRD])


def test_postbc_mixes_bc_and_posterior():
    # 0.5 * (2/3, 1/3, 0) + 0.5 * (1/2, 1/3, 1/6)
    np.testing.assert_allclose(postbc_policy(COUNTS, alpha=0.5, lam=3.0)[0], [[7 / 12, 1 / 3, 1 / 12], THIRD])


def test_uniform_noise_mixes_bc_and_uniform():
    np.testing.assert_allclose(uniform_noise_policy(COUNTS, alpha=0.3)[0], [[0.7 * 2 / 3 + 0.1, 0.7 / 3 + 0.1, 0.1], THIRD])


def test_limits_of_alpha():
    np.testing.assert_allclose(postbc_policy(COUNTS, 0.0, 5.0), bc_policy(COUNTS))
    np.testing.assert_allclose(postbc_policy(COUNTS, 1.0, 5.0), posterior_policy(COUNTS, 5.0))
    np.testing.assert_allclose(uniform_noise_policy(COUNTS, 1.0), np.full(COUNTS.shape, 1 / 3))


@pytest.mark.parametrize(
    "estimator",
    [bc_policy, lambda c: posterior_policy(c, 2.5), lambda c: postbc_policy(c, 0.2, 7.0), lambda c: uniform_noise_policy(c, 0.1)],
)
def test_batched_random_counts_give_distributions(estimator):
    counts = np.random.default_rng(0).poisson(0.7, size=(5, 4, 6, 3))  # many unvisited states
    pi = estimator(counts)
    assert pi.shape == counts.shape
    assert np.all(pi >= 0)
    np.testing.assert_allclose(pi.sum(axis=-1), 1.0)
    np.testing.assert_allclose(pi[1], estimator(counts[1]))  # batch axes change nothing


def test_postbc_covers_every_action_where_bc_does_not():
    pi = postbc_policy(COUNTS, alpha=0.1, lam=3.0)
    assert pi[0, 0, 2] == pytest.approx(0.1 * 1 / 6)
    assert bc_policy(COUNTS)[0, 0, 2] == 0


def test_analysis_alpha_lam():
    alpha, lam = analysis_alpha_lam(horizon=10, num_actions=3, num_demos=1000)
    assert alpha == pytest.approx(1 / 10)  # H dominates log(HT) = 9.2
    assert lam == pytest.approx(4 * np.log(10_000))
    assert analysis_alpha_lam(1, 3, 2) == pytest.approx((1 / 3, 3.0))  # A dominates 4 log 2
    assert analysis_alpha_lam(1, 3, 100) == pytest.approx((1 / np.log(100), 4 * np.log(100)))


def test_coverage_known_cases():
    pi_beta = np.array([0.5, 0.5, 0.0])
    assert coverage(np.array([0.25, 0.5, 0.25]), pi_beta) == pytest.approx(0.5)
    assert coverage(pi_beta, pi_beta) == pytest.approx(1.0)
    assert coverage(np.array([1.0, 0.0, 0.0]), pi_beta) == 0.0  # a demonstrator action lost
    assert coverage(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])) == 1.0  # zeros off support ignored
    batch = np.array([[0.25, 0.5, 0.25], [0.5, 0.4, 0.1]])
    np.testing.assert_allclose(coverage(batch, pi_beta), [0.5, 0.8])


def test_coverage_over_steps_and_states():
    pi_beta = bc_policy(np.array([[[1, 1], [0, 4]], [[3, 1], [1, 0]]]))  # (2, 2, 2)
    pi_hat = np.full((2, 2, 2), 0.5)
    # Smallest ratio: 0.5 / 1 where the demonstrator is deterministic.
    assert coverage(pi_hat, pi_beta) == pytest.approx(0.5)


BAD_COUNTS = {
    "negative": np.array([[[1, -1]]]),
    "non-integer": np.array([[[1.5, 0.0]]]),
    "nan": np.array([[[np.nan, 1.0]]]),
    "2-D": np.array([[1, 2]]),
    "empty": np.zeros((1, 0, 2)),
    "strings": np.array([[["a", "b"]]]),
}


@pytest.mark.parametrize("case", sorted(BAD_COUNTS))
@pytest.mark.parametrize(
    "estimator",
    [bc_policy, lambda c: posterior_policy(c, 1.0), lambda c: postbc_policy(c, 0.5, 1.0), lambda c: uniform_noise_policy(c, 0.5)],
)
def test_bad_counts_are_named(case, estimator):
    with pytest.raises(ValueError, match="counts"):
        estimator(BAD_COUNTS[case])


def test_float_counts_with_whole_values_are_accepted():
    np.testing.assert_allclose(bc_policy(COUNTS.astype(float)), bc_policy(COUNTS))


@pytest.mark.parametrize("alpha", [-0.1, 1.1, float("nan"), "0.5", None])
def test_bad_alpha_is_named(alpha):
    with pytest.raises(ValueError, match="alpha"):
        postbc_policy(COUNTS, alpha, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        uniform_noise_policy(COUNTS, alpha)


@pytest.mark.parametrize("lam", [0.0, -1.0, float("inf"), float("nan"), None])
def test_bad_lam_is_named(lam):
    with pytest.raises(ValueError, match="lam"):
        posterior_policy(COUNTS, lam)
    with pytest.raises(ValueError, match="lam"):
        postbc_policy(COUNTS, 0.5, lam)


def test_bad_coverage_inputs_are_named():
    with pytest.raises(ValueError, match="pi_hat's trailing axes"):
        coverage(np.ones((2, 3)) / 3, np.ones(2) / 2)
    with pytest.raises(ValueError, match="pi_beta must be positive"):
        coverage(np.ones(2) / 2, np.zeros(2))
    with pytest.raises(ValueError, match="pi_hat"):
        coverage(np.array([-0.5, 1.5]), np.ones(2) / 2)
