"""Sampling from a tabular MDP: demonstration counts and policy rollouts, many datasets at once."""

from __future__ import annotations

import dataclasses

import numpy as np

from postbc.theory.mdp import TabularMDP, check_policy


def sample_counts(
    mdp: TabularMDP, pi_beta: np.ndarray, num_demos: int, rng: np.random.Generator, trials: int | None = None
) -> np.ndarray:
    """Counts T_h(s, a) of `num_demos` demonstrations of `pi_beta`: shape (H, S, A), or
    (trials, H, S, A) for `trials` independent datasets.

    Demonstrations are i.i.d. and Markov, so given how many are in each state at step h, their
    actions split multinomially, and given the (s, a) counts their next states split
    multinomially too. Drawing those splits is exact and costs O(H S A S) per dataset instead of
    O(H T) per dataset for trajectory-by-trajectory sampling.
    """
    pi_beta = check_policy(mdp, pi_beta)
    if pi_beta.ndim != 3:
        raise ValueError(f"pi_beta must have shape (H, S, A) = {mdp.shape}, got {pi_beta.shape}")
    if not isinstance(num_demos, (int, np.integer)) or num_demos < 0:
        raise ValueError(f"num_demos must be an integer >= 0, got {num_demos!r}")
    if trials is not None and (not isinstance(trials, (int, np.integer)) or trials < 1):
        raise ValueError(f"trials must be None or an integer >= 1, got {trials!r}")
    batch = 1 if trials is None else trials
    # Renormalize: numpy's multinomial rejects rows whose float sum exceeds 1 by ~1e-12.
    pi_beta = pi_beta / pi_beta.sum(axis=-1, keepdims=True)
    transitions = mdp.transitions / mdp.transitions.sum(axis=-1, keepdims=True)
    counts = np.empty((batch, *mdp.shape), dtype=np.int64)
    in_state = rng.multinomial(num_demos, mdp.initial / mdp.initial.sum(), size=batch)
    for h in range(mdp.horizon):
        counts[:, h] = rng.multinomial(in_state, pi_beta[h])
        in_state = rng.multinomial(counts[:, h], transitions[h]).sum(axis=(1, 2))
    return counts[0] if trials is None else counts


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of `probs` (..., n), by inverting the cumulative distribution."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(axis=-1), probs.shape[-1] - 1)


@dataclasses.dataclass
class RolloutStats:
    """What a Monte-Carlo critic needs from rollouts, per dataset: visits[k, h, s, a] and the
    summed return-to-go from those visits."""

    visits: np.ndarray
    return_to_go: np.ndarray

    def __add__(self, other: "RolloutStats") -> "RolloutStats":
        return RolloutStats(self.visits + other.visits, self.return_to_go + other.return_to_go)


def sample_rollouts(
    mdp: TabularMDP, pi: np.ndarray, num_rollouts: int, rng: np.random.Generator
) -> RolloutStats:
    """Roll out each policy of the batch `pi` (K, H, S, A) `num_rollouts` times."""
    pi = check_policy(mdp, pi)
    if pi.ndim != 4:
        raise ValueError(f"pi must be a batch of policies (K, H, S, A), got shape {pi.shape}")
    batch = pi.shape[0]
    horizon, num_states, num_actions = mdp.shape
    rows = np.arange(batch)[:, None]
    state = sample_categorical(np.broadcast_to(mdp.initial, (batch, num_rollouts, num_states)), rng)
    states = np.empty((horizon, batch, num_rollouts), dtype=np.int64)
    actions = np.empty_like(states)
    rewards = np.empty(states.shape)
    for h in range(horizon):
        action = sample_categorical(pi[rows, h, state], rng)
        states[h], actions[h] = state, action
        rewards[h] = mdp.rewards[h, state, action]
        state = sample_categorical(mdp.transitions[h, state, action], rng)
    return_to_go = np.cumsum(rewards[::-1], axis=0)[::-1]
    flat = ((rows[None] * horizon + np.arange(horizon)[:, None, None]) * num_states + states) * num_actions + actions
    size = batch * horizon * num_states * num_actions
    shape = (batch, horizon, num_states, num_actions)
    return RolloutStats(
        visits=np.bincount(flat.ravel(), minlength=size).reshape(shape),
        return_to_go=np.bincount(flat.ravel(), weights=return_to_go.ravel(), minlength=size).reshape(shape),
    )
