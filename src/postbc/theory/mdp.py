"""A finite-horizon tabular MDP and exact policy evaluation by backward induction."""

from __future__ import annotations

import dataclasses

import numpy as np

_TOL = 1e-8


def _check_distributions(name: str, value: np.ndarray) -> None:
    if not np.all(np.isfinite(value)) or np.any(value < 0):
        raise ValueError(f"{name} must hold finite non-negative probabilities")
    if not np.allclose(value.sum(axis=-1), 1.0, atol=_TOL):
        raise ValueError(f"{name} must sum to 1 over its last axis")


@dataclasses.dataclass(frozen=True)
class TabularMDP:
    """Initial distribution (S,), transitions (H, S, A, S) or time-homogeneous (S, A, S), rewards
    (H, S, A) or (S, A). `horizon` is needed only when neither array carries the H axis.

    After construction `transitions` and `rewards` always have the leading H axis.
    """

    initial: np.ndarray
    transitions: np.ndarray
    rewards: np.ndarray
    horizon: int | None = None

    def __post_init__(self) -> None:
        initial = np.asarray(self.initial, dtype=float)
        transitions = np.asarray(self.transitions, dtype=float)
        rewards = np.asarray(self.rewards, dtype=float)
        if initial.ndim != 1 or initial.size == 0:
            raise ValueError(f"initial must have shape (S,), got {initial.shape}")
        num_states = initial.size
        if transitions.ndim not in (3, 4) or transitions.shape[-3] != num_states or transitions.shape[-1] != num_states:
            raise ValueError(
                f"transitions must have shape (H, S, A, S) or (S, A, S) with S = {num_states}, "
                f"got {transitions.shape}"
            )
        num_actions = transitions.shape[-2]
        if rewards.ndim not in (2, 3) or rewards.shape[-2:] != (num_states, num_actions):
            raise ValueError(
                f"rewards must have shape (H, S, A) or (S, A) with (S, A) = {(num_states, num_actions)}, "
                f"got {rewards.shape}"
            )
        horizons = {int(h) for h in (self.horizon, *_leading_h(transitions, 4), *_leading_h(rewards, 3)) if h is not None}
        if len(horizons) != 1:
            raise ValueError(
                "horizon is ambiguous: give it explicitly or through a (H, ...) transitions/rewards "
                f"array, consistently (got {sorted(horizons) or 'none'})"
            )
        (horizon,) = horizons
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards must be finite")
        _check_distributions("initial", initial)
        _check_distributions("transitions", transitions)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "transitions", np.broadcast_to(transitions, (horizon, *transitions.shape[-3:])))
        object.__setattr__(self, "rewards", np.broadcast_to(rewards, (horizon, num_states, num_actions)))
        object.__setattr__(self, "horizon", horizon)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, S, A): the shape of a policy or of demonstration counts for this MDP."""
        return self.rewards.shape


def _leading_h(array: np.ndarray, full_ndim: int) -> tuple[int, ...]:
    return (array.shape[0],) if array.ndim == full_ndim else ()


def check_policy(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Return `pi` as floats after checking it is a (..., H, S, A) policy for `mdp`."""
    pi = np.asarray(pi, dtype=float)
    if pi.shape[-3:] != mdp.shape:
        raise ValueError(f"policy must have shape (..., H, S, A) = (..., {mdp.shape}), got {pi.shape}")
    _check_distributions("policy", pi)
    return pi


def q_values(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """Q^pi_h(s, a) for every step, by backward induction; batch axes of `pi` are kept."""
    pi = check_policy(mdp, pi)
    q = np.empty(pi.shape)
    value_next = np.zeros((*pi.shape[:-3], mdp.shape[1]))
    for h in reversed(range(mdp.horizon)):
        q[..., h, :, :] = mdp.rewards[h] + np.einsum("sat,...t->...sa", mdp.transitions[h], value_next)
        value_next = np.einsum("...sa,...sa->...s", pi[..., h, :, :], q[..., h, :, :])
    return q


def evaluate(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray | float:
    """J(pi): the expected sum of the H rewards from the initial distribution."""
    pi = check_policy(mdp, pi)
    q0 = q_values(mdp, pi)[..., 0, :, :]
    value = np.einsum("...sa,...sa,s->...", pi[..., 0, :, :], q0, mdp.initial)
    return float(value) if value.ndim == 0 else value
