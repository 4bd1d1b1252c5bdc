import numpy as np
import pytest

from postbc.theory.mdp import TabularMDP, evaluate, q_values


def two_state_mdp() -> TabularMDP:
    """s0: a0 pays 1 and stays, a1 pays 0 and moves to s1; s1 pays 2 for anything and stays."""
    transitions = np.zeros((2, 2, 2))
    transitions[0, 0, 0] = transitions[0, 1, 1] = transitions[1, :, 1] = 1.0
    rewards = np.array([[1.0, 0.0], [2.0, 2.0]])
    return TabularMDP(initial=np.array([1.0, 0.0]), transitions=transitions, rewards=rewards, horizon=2)


def policy(p: float) -> np.ndarray:
    """a0 w.p. p in s0, uniform in s1, at both steps."""
    return np.array([[[p, 1 - p], [0.5, 0.5]]] * 2)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
def test_evaluate_matches_hand_solution(p):
    # Last step: V_1(s0) = p (a1 pays nothing and the episode ends), V_1(s1) = 2.
    # Q_0(s0, a0) = 1 + p, Q_0(s0, a1) = 0 + 2, so J = p (1 + p) + 2 (1 - p) = 2 - p + p^2.
    assert evaluate(two_state_mdp(), policy(p)) == pytest.approx(2 - p + p * p)


def test_q_values_by_hand():
    q = q_values(two_state_mdp(), policy(0.5))
    np.testing.assert_allclose(q[1], [[1, 0], [2, 2]])
    np.testing.assert_allclose(q[0], [[1.5, 2], [4, 4]])


def test_batched_policies_and_step_dependent_rewards():
    mdp = two_state_mdp()
    batch = np.stack([policy(p) for p in (0.0, 0.3, 1.0)])
    np.testing.assert_allclose(evaluate(mdp, batch), [2 - p + p * p for p in (0.0, 0.3, 1.0)])
    # Reward only at the last step, through an (H, S, A) array: in s0 w.p. p, then a0 pays 1 w.p. p;
    # in s1 w.p. 1 - p, which pays 2. J = p^2 + 2 (1 - p).
    late = TabularMDP(mdp.initial, mdp.transitions[0], np.stack([np.zeros((2, 2)), mdp.rewards[1]]))
    assert late.horizon == 2
    assert evaluate(late, policy(0.3)) == pytest.approx(0.09 + 1.4)


def test_homogeneous_arrays_are_broadcast_over_h():
    mdp = two_state_mdp()
    assert mdp.transitions.shape == (2, 2, 2, 2) and mdp.rewards.shape == (2, 2, 2)
    assert mdp.shape == (2, 2, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial": np.array([0.5, 0.4])}, "initial must sum to 1"),
        ({"initial": np.ones((1, 2)) / 2}, "initial must have shape"),
        ({"transitions": np.ones((2, 2, 2))}, "transitions must sum to 1"),
        ({"transitions": np.ones((2, 2, 3)) / 3}, "transitions must have shape"),
        ({"rewards": np.ones((3, 2))}, "rewards must have shape"),
        ({"rewards": np.full((2, 2), np.nan)}, "rewards must be finite"),
        ({"horizon": None}, "horizon is ambiguous"),
        ({"horizon": 0}, "horizon must be >= 1"),
        ({"rewards": np.ones((3, 2, 2))}, "horizon is ambiguous"),  # H=3 from rewards, 2 given
    ],
)
def test_bad_mdp_is_named(kwargs, message):
    mdp = two_state_mdp()
    fields = {"initial": mdp.initial, "transitions": mdp.transitions[0], "rewards": mdp.rewards[0], "horizon": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        TabularMDP(**fields)


def test_bad_policy_is_named():
    with pytest.raises(ValueError, match="policy must have shape"):
        evaluate(two_state_mdp(), np.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match="policy must sum to 1"):
        evaluate(two_state_mdp(), np.ones((2, 2, 2)))
