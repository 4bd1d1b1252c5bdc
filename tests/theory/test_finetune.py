import itertools

import numpy as np
import pytest

from postbc.theory.constructions import three_armed_bandit
from postbc.theory.finetune import best_of_n, best_of_n_limit, finetune_curve, monte_carlo_critic
from postbc.theory.sampling import RolloutStats


def brute_force_best_of_n(pi, q, n):
    """Enumerate all n-tuples of draws; keep the first draw with the highest q."""
    kept = np.zeros(len(pi))
    for draws in itertools.product(range(len(pi)), repeat=n):
        best = max(draws, key=lambda a: q[a])  # max returns the first maximal element
        kept[best] += np.prod(pi[list(draws)])
    return kept


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize(
    "pi, q",
    [
        ([0.5, 0.3, 0.2], [0.0, 1.0, 2.0]),
        ([0.5, 0.3, 0.2], [1.0, 1.0, 0.0]),  # a tie
        ([0.6, 0.0, 0.4], [0.0, 9.0, -np.inf]),  # the best action is never drawn
        ([0.25, 0.25, 0.5], [-np.inf, -np.inf, -np.inf]),
    ],
)
def test_best_of_n_matches_enumeration(pi, q, n):
    pi, q = np.array(pi), np.array(q)
    np.testing.assert_allclose(best_of_n(pi, q, n), brute_force_best_of_n(pi, q, n), atol=1e-12)


def test_best_of_one_is_the_policy_and_rejects_bad_n():
    pi = np.array([[0.2, 0.8]])
    np.testing.assert_allclose(best_of_n(pi, np.array([[5.0, 1.0]]), 1), pi)
    with pytest.raises(ValueError, match="n "):
        best_of_n(pi, pi, 0)


def test_monte_carlo_critic_marks_untried_actions():
    stats = RolloutStats(visits=np.array([2, 0, 4]), return_to_go=np.array([3.0, 0.0, 2.0]))
    np.testing.assert_allclose(monte_carlo_critic(stats), [1.5, -np.inf, 0.5])


def test_bc_that_never_saw_the_rewarding_arm_cannot_find_it():
    mdp, _ = three_armed_bandit(0.01, rewarded_arm=1)
    blind = np.array([1.0, 0.0, 0.0])[None, None, None].repeat(4, axis=0)  # 4 copies of "arm 0 only"
    curve = finetune_curve(mdp, blind, [0, 10, 100], n=8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(curve, 0.0)
    covering = np.array([0.8, 0.1, 0.1])[None, None, None].repeat(4, axis=0)
    curve = finetune_curve(mdp, covering, [0, 100], n=8, rng=np.random.default_rng(0))
    limit = best_of_n_limit(mdp, covering, n=8)
    np.testing.assert_allclose(limit, 1 - 0.9**8)  # arm 1 is drawn at least once among 8
    np.testing.assert_allclose(curve[0], 0.1)
    np.testing.assert_allclose(curve[1], limit)  # 100 rollouts surely try arm 1 (and all pay exactly)
