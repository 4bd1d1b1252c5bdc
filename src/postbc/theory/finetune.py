"""Tabular Best-of-N finetuning that learns only from the pretrained policy's own rollouts.

The tabular counterpart of the paper's Best-of-N (PAPER_NOTES section 4): roll the pretrained
policy out M times, fit a Monte-Carlo critic Q_hat(h, s, a) = mean return-to-go after taking a in
s at step h, then act by drawing N actions from the pretrained policy and keeping the one with
the highest Q_hat. An action the pretrained policy never samples is neither evaluated nor
chosen, which is exactly the failure of BC the paper is about.
"""

from __future__ import annotations

import numpy as np

from postbc.theory.mdp import TabularMDP, evaluate, q_values
from postbc.theory.sampling import RolloutStats, sample_rollouts

_ROLLOUTS_PER_CHUNK = 2**20  # bounds memory: a chunk holds ~A floats per (dataset, rollout, step)


def best_of_n(pi: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """Exact distribution of the kept action when n actions are drawn from `pi` and the one with
    the highest `q` is kept (ties: the first drawn, so tied actions keep pi's proportions).

    Sort actions by q. The kept action lies in the tie group of a iff all n draws have q <= q(a)
    and not all have q < q(a): probability F_le^n - F_lt^n, shared within the group in
    proportion to pi.
    """
    if n < 1:
        raise ValueError(f"n (actions drawn per decision) must be >= 1, got {n!r}")
    pi, q = np.broadcast_arrays(np.asarray(pi, dtype=float), np.asarray(q, dtype=float))
    not_above = q[..., None, :] <= q[..., :, None]  # [..., a, b]: q(b) <= q(a)
    below = q[..., None, :] < q[..., :, None]
    mass_le = (not_above * pi[..., None, :]).sum(axis=-1)
    mass_lt = (below * pi[..., None, :]).sum(axis=-1)
    group = mass_le - mass_lt
    with np.errstate(invalid="ignore", divide="ignore"):
        kept = pi * (mass_le**n - mass_lt**n) / group
    return np.where(pi > 0, kept, 0.0)


def monte_carlo_critic(rollouts: RolloutStats) -> np.ndarray:
    """Q_hat = mean return-to-go per (h, s, a); -inf where the rollouts never took a in s at h,
    so an untried action is never preferred over one with evidence."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rollouts.visits > 0, rollouts.return_to_go / rollouts.visits, -np.inf)


def finetune_curve(
    mdp: TabularMDP, pretrained: np.ndarray, rollout_budgets: list[int], n: int, rng: np.random.Generator
) -> np.ndarray:
    """J of the Best-of-N policy after each budget of rollouts, shape (len(budgets), K), for a
    batch of K pretrained policies. Budgets are nested: budget M reuses the first M rollouts."""
    if any(b < 0 for b in rollout_budgets) or list(rollout_budgets) != sorted(rollout_budgets):
        raise ValueError(f"rollout_budgets must be non-decreasing and >= 0, got {rollout_budgets!r}")
    stats = RolloutStats(np.zeros(pretrained.shape), np.zeros(pretrained.shape))
    chunk = max(1, _ROLLOUTS_PER_CHUNK // len(pretrained))
    done, returns = 0, []
    for budget in rollout_budgets:
        while done < budget:
            step = min(chunk, budget - done)
            stats = stats + sample_rollouts(mdp, pretrained, step, rng)
            done += step
        returns.append(evaluate(mdp, best_of_n(pretrained, monte_carlo_critic(stats), n)))
    return np.array(returns)


def best_of_n_limit(mdp: TabularMDP, pretrained: np.ndarray, n: int) -> np.ndarray:
    """J of Best-of-N with the exact critic Q^pretrained: the curve's limit as rollouts -> infinity."""
    return evaluate(mdp, best_of_n(pretrained, q_values(mdp, pretrained), n))
