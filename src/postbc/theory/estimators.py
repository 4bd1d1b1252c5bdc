"""Exact tabular estimators of the demonstrator's policy from action counts (PAPER_NOTES section 2).

`counts[..., h, s, a]` is T_h(s, a): how often action a was taken in state s at step h. Leading
axes are a batch (one dataset per index), so a Monte-Carlo experiment estimates thousands of
policies in one call. Every estimator returns probabilities of the same shape, uniform over the
actions in a state that was never visited.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def check_counts(counts: np.ndarray) -> np.ndarray:
    """Return `counts` as a float array after checking it is a (..., H, S, A) array of counts."""
    counts = np.asarray(counts)
    if counts.ndim < 3 or 0 in counts.shape:
        raise ValueError(
            f"counts must be a non-empty array of shape (H, S, A) (or (..., H, S, A) for a batch), "
            f"got shape {counts.shape}"
        )
    if not (np.issubdtype(counts.dtype, np.integer) or np.issubdtype(counts.dtype, np.floating)):
        raise ValueError(f"counts must hold numbers, got dtype {counts.dtype}")
    counts = counts.astype(float)
    if not np.all(np.isfinite(counts)):
        raise ValueError("counts must be finite")
    if np.any(counts < 0):
        raise ValueError(f"counts must be non-negative, found {counts.min():g}")
    if np.any(counts != np.round(counts)):
        raise ValueError("counts must be whole numbers (times an action was taken)")
    return counts


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, numbers.Real) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def check_lam(lam: float) -> float:
    if not (isinstance(lam, numbers.Real) and math.isfinite(lam) and lam > 0):
        raise ValueError(f"lam (the prior's total mass) must be a finite number > 0, got {lam!r}")
    return float(lam)


def _uniform(counts: np.ndarray) -> np.ndarray:
    return np.full(counts.shape, 1.0 / counts.shape[-1])


def bc_policy(counts: np.ndarray) -> np.ndarray:
    """Behavioral cloning: pi_bc(a|s) = T_h(s,a) / T_h(s), uniform where T_h(s) = 0."""
    counts = check_counts(counts)
    visits = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        empirical = counts / visits
    return np.where(visits > 0, empirical, _uniform(counts))


def posterior_policy(counts: np.ndarray, lam: float) -> np.ndarray:
    """Posterior mean of the demonstrator under a uniform Dirichlet prior of total mass `lam`:
    (T_h(s,a) + lam/A) / (T_h(s) + lam). Unvisited states come out uniform on their own."""
    counts = check_counts(counts)
    lam = check_lam(lam)
    num_actions = counts.shape[-1]
    return (counts + lam / num_actions) / (counts.sum(axis=-1, keepdims=True) + lam)


def postbc_policy(counts: np.ndarray, alpha: float, lam: float) -> np.ndarray:
    """PostBC: (1 - alpha) * pi_bc + alpha * pi_post where the state was visited, uniform elsewhere.

    Both parts are uniform in an unvisited state, so the mixture needs no special case there.
    """
    alpha = check_alpha(alpha)
    return (1.0 - alpha) * bc_policy(counts) + alpha * posterior_policy(counts, lam)


def uniform_noise_policy(counts: np.ndarray, alpha: float) -> np.ndarray:
    """The sigma-BC baseline in tabular form: (1 - alpha) * pi_bc + alpha * uniform."""
    alpha = check_alpha(alpha)
    counts = check_counts(counts)
    return (1.0 - alpha) * bc_policy(counts) + alpha * _uniform(counts)


def analysis_alpha_lam(horizon: int, num_actions: int, num_demos: int) -> tuple[float, float]:
    """The paper's analysis choice: alpha = 1/max{A, H, log(HT)}, lam = max{A, 4 log(HT)}."""
    log_ht = math.log(max(horizon * num_demos, 2))
    return 1.0 / max(num_actions, horizon, log_ht), float(max(num_actions, 4.0 * log_ht))


def coverage(pi_hat: np.ndarray, pi_beta: np.ndarray) -> np.ndarray | float:
    """The largest gamma with pi_hat >= gamma * pi_beta wherever pi_beta > 0.

    `pi_beta` has shape (H, S, A) (any shape, really); `pi_hat` has that shape with optional
    leading batch axes, and the result has the batch shape (a float when there is none).
    """
    pi_hat = np.asarray(pi_hat, dtype=float)
    pi_beta = np.asarray(pi_beta, dtype=float)
    if pi_beta.ndim == 0 or pi_hat.shape[pi_hat.ndim - pi_beta.ndim :] != pi_beta.shape:
        raise ValueError(
            f"pi_hat's trailing axes must equal pi_beta's shape {pi_beta.shape}, got {pi_hat.shape}"
        )
    for name, value in (("pi_hat", pi_hat), ("pi_beta", pi_beta)):
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ValueError(f"{name} must hold finite non-negative probabilities")
    support = pi_beta > 0
    if not support.any():
        raise ValueError("pi_beta must be positive somewhere")
    ratios = np.where(support, pi_hat / np.where(support, pi_beta, 1.0), np.inf)
    gamma = ratios.reshape(*pi_hat.shape[: pi_hat.ndim - pi_beta.ndim], -1).min(axis=-1)
    return float(gamma) if gamma.ndim == 0 else gamma
