"""Coverage diagnostics: how widely a policy samples actions in given states.

PostBC's claim is about the *spread* of the action distribution: wide where demonstrations are
scarce, BC-like where they are dense. These helpers sample a policy many times per state from
seeded noise (so numbers are reproducible) and summarise the spread per state and per region.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def sample_actions(policy: Any, obs_flat: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """(S, M, chunk, act_dim) raw actions: M draws of `policy.act` for each of the S states.

    `policy` follows the `PretrainedPolicy` contract: `act(obs (B, obs_dim), noise=(B, chunk, act_dim))`.
    """
    obs_flat = np.asarray(obs_flat, dtype=np.float32)
    num_states = obs_flat.shape[0]
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((num_states * num_samples, policy.chunk, policy.act_dim)).astype(np.float32)
    actions = policy.act(np.repeat(obs_flat, num_samples, axis=0), noise=noise)
    return np.asarray(actions).reshape(num_states, num_samples, policy.chunk, policy.act_dim)


def action_spread(samples: np.ndarray) -> np.ndarray:
    """(S,) per-state spread: the root of the mean per-dimension variance of the first action.

    The first action of the chunk is what the env executes first, and the part that differs
    between modes; the square root keeps the unit of the action.
    """
    first = samples[:, :, 0, :]
    return np.sqrt(first.var(axis=1).mean(axis=-1))


def spread_by_region(spread: np.ndarray, regions: np.ndarray) -> Mapping[str, float]:
    """Mean spread over the states of each region label (e.g. "rare" / "common")."""
    regions = np.asarray(regions)
    return {str(r): float(spread[regions == r].mean()) for r in np.unique(regions)}
