import numpy as np
import pytest

from postbc.theory.constructions import chain_mdp, random_mdp
from postbc.theory.mdp import evaluate
from postbc.theory.sampling import sample_counts, sample_categorical, sample_rollouts

from .test_mdp import policy, two_state_mdp


def occupancy(mdp, pi):
    """d_h(s) by a forward pass, to predict E[T_h(s, a)] = T d_h(s) pi_h(a|s)."""
    d = [mdp.initial]
    for h in range(mdp.horizon - 1):
        d.append(np.einsum("s,sa,sat->t", d[-1], pi[h], mdp.transitions[h]))
    return np.array(d)


def test_counts_have_the_expected_mean():
    mdp, pi_beta = random_mdp(3, 2, 3, np.random.default_rng(1))
    counts = sample_counts(mdp, pi_beta, 50, np.random.default_rng(0), trials=4000)
    assert counts.shape == (4000, 3, 3, 2)
    np.testing.assert_array_equal(counts.sum(axis=(2, 3)), 50)  # every demo is somewhere at every step
    expected = 50 * occupancy(mdp, pi_beta)[..., None] * pi_beta
    standard_error = counts.std(axis=0) / np.sqrt(4000) + 1e-12
    assert np.max(np.abs(counts.mean(axis=0) - expected) / standard_error) < 4.5


def test_counts_are_seeded_and_unbatched_without_trials():
    mdp, pi_beta = chain_mdp(4, 3, 0.1)
    a = sample_counts(mdp, pi_beta, 20, np.random.default_rng(7))
    b = sample_counts(mdp, pi_beta, 20, np.random.default_rng(7))
    assert a.shape == (4, 3, 3)
    np.testing.assert_array_equal(a, b)
    assert np.all(a[:, 0, 1:] == 0)  # the chain demonstrator never leaves action 0


def test_bad_sampling_arguments_are_named():
    mdp, pi_beta = chain_mdp(4, 3, 0.1)
    with pytest.raises(ValueError, match="num_demos"):
        sample_counts(mdp, pi_beta, -1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="trials"):
        sample_counts(mdp, pi_beta, 5, np.random.default_rng(0), trials=0)
    with pytest.raises(ValueError, match="pi_beta must have shape"):
        sample_counts(mdp, pi_beta[None], 5, np.random.default_rng(0))


def test_categorical_never_draws_zero_probability():
    probs = np.array([[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0]])
    draws = sample_categorical(np.repeat(probs[None], 5000, axis=0), np.random.default_rng(0))
    assert set(np.unique(draws[:, 0])) == {1, 3}
    assert np.all(draws[:, 1] == 3)


def test_rollout_returns_estimate_j():
    mdp = two_state_mdp()
    pis = np.stack([policy(0.3), policy(0.9)])
    stats = sample_rollouts(mdp, pis, 20000, np.random.default_rng(0))
    assert stats.visits[:, 0].sum() == 2 * 20000
    # The return-to-go summed over the first step's visits is the total return of all rollouts.
    for k, p in enumerate((0.3, 0.9)):
        j = stats.return_to_go[k, 0].sum() / 20000
        assert j == pytest.approx(evaluate(mdp, pis[k]), abs=0.02)
