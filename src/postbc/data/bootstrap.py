"""Bootstrap resamples of a dataset for the PostBC ensemble, as per-sample multiplicities.

Member k trains on sample i in proportion to `counts[k, i]` (0 = left out). Two kinds
(paper section 3): "trajectory" resamples E whole episodes with replacement out of E (what worked
best on Robomimic); "state_action" resamples N (state, action) pairs with replacement out of N.
"""

from __future__ import annotations

import numpy as np

from postbc.io.config import require_choice, require_positive

BOOTSTRAP_KINDS = ("trajectory", "state_action")


def bootstrap_counts(kind: str, episode_of: np.ndarray, num_members: int, rng: np.random.Generator) -> np.ndarray:
    """(num_members, N) int64 multiplicities; every row sums to N for "state_action" and to the
    total length of the drawn episodes for "trajectory"."""
    require_choice("bootstrap kind", kind, BOOTSTRAP_KINDS)
    require_positive("num_members", num_members)
    episode_of = np.asarray(episode_of, dtype=np.int64)
    n = episode_of.shape[0]
    if n == 0:
        raise ValueError("cannot bootstrap an empty dataset")
    if kind == "state_action":
        draws = rng.integers(0, n, size=(num_members, n))
        return _row_bincount(draws, n)
    _, episode_index = np.unique(episode_of, return_inverse=True)  # episodes numbered 0..E-1
    num_episodes = int(episode_index.max()) + 1
    draws = rng.integers(0, num_episodes, size=(num_members, num_episodes))
    return _row_bincount(draws, num_episodes)[:, episode_index]


def _row_bincount(draws: np.ndarray, size: int) -> np.ndarray:
    """Per-row counts of the values 0..size-1 in `draws` (K, M)."""
    offsets = np.arange(draws.shape[0], dtype=np.int64)[:, None] * size
    return np.bincount((draws + offsets).ravel(), minlength=draws.shape[0] * size).reshape(draws.shape[0], size).astype(np.int64)
