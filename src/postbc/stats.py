"""Confidence intervals used wherever a success rate or a mean is reported."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well-behaved at 0% and 100%)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values, z: float = Z95) -> tuple[float, float, float]:
    """(mean, low, high) with a normal-approximation 95% interval; Student-t for small samples."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    if n == 1:
        return (m, m, m)
    from scipy import stats

    t = float(stats.t.ppf(0.975, n - 1)) if n < 30 else z
    half = t * float(x.std(ddof=1)) / math.sqrt(n)
    return (m, m - half, m + half)
