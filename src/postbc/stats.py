"""Confidence intervals for success rates and means, a log-log slope fit, and paired tests.

One place for every interval the project reports (evaluation, reports, theory).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate with a two-sided confidence interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return confidence


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + _check_confidence(confidence) / 2))


def wilson(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion: honest near 0 and 1, unlike the normal interval."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {successes}/{trials}")
    z = _z(confidence)
    p = successes / trials
    center = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    # The closed-form ends are exactly 0 and 1 in these cases; rounding would leave ~1e-19.
    low = 0.0 if successes == 0 else center - half
    high = 1.0 if successes == trials else center + half
    return Estimate(p, low, high)


def proportion(flags: np.ndarray, confidence: float = 0.95) -> Estimate:
    flags = np.asarray(flags, dtype=bool).ravel()
    return wilson(int(flags.sum()), flags.size, confidence)


def mean(samples: np.ndarray, confidence: float = 0.95) -> Estimate:
    """Student-t interval for the mean of i.i.d. samples."""
    samples = np.asarray(samples, dtype=float).ravel()
    if samples.size < 2:
        raise ValueError(f"need at least 2 samples for a confidence interval, got {samples.size}")
    t = stats.t.ppf(0.5 + _check_confidence(confidence) / 2, samples.size - 1)
    center = float(samples.mean())
    half = float(t * samples.std(ddof=1) / math.sqrt(samples.size))
    return Estimate(center, center - half, center + half)


@dataclasses.dataclass(frozen=True)
class SlopeFit:
    slope: Estimate
    intercept: float


def loglog_slope(x: np.ndarray, y: np.ndarray, confidence: float = 0.95) -> SlopeFit:
    """Least-squares fit of log y = slope * log x + intercept, with a t interval on the slope."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or x.shape != y.shape or not (np.all(x > 0) and np.all(y > 0)):
        raise ValueError("need at least 3 points with positive x and y for a log-log fit")
    x, y = np.log(x), np.log(y)
    fit = stats.linregress(x, y)
    half = float(stats.t.ppf(0.5 + _check_confidence(confidence) / 2, x.size - 2) * fit.stderr)
    return SlopeFit(Estimate(float(fit.slope), fit.slope - half, fit.slope + half), float(fit.intercept))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the Wilson interval; (0, 1) when there were no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    est = wilson(successes, trials, confidence)
    return (est.low, est.high)


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) with a Student-t interval; a single value is its own interval, none gives NaNs."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    if x.size == 1:
        return (float(x[0]),) * 3
    est = mean(x, confidence)
    return (est.value, est.low, est.high)


def paired_p_value(differences) -> float:
    """Two-sided p-value of a one-sample t-test that the mean of same-seed differences is 0 (NaN below 2
    values; identical values give 0 if they are not 0, else 1)."""
    x = np.asarray(differences, dtype=np.float64).ravel()
    if x.size < 2:
        return math.nan
    if np.ptp(x) == 0:
        return 0.0 if x[0] != 0 else 1.0
    return float(stats.ttest_1samp(x, 0.0).pvalue)


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided p of McNemar's exact test for two policies run on the same episodes: `only_a` episodes solved by
    the first alone, `only_b` by the second alone (the episodes both or neither solved carry no information).
    Under "no difference" each of those discordant episodes goes either way with probability 1/2; 1 when there
    are none."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got {only_a} and {only_b}")
    n = only_a + only_b
    return 1.0 if n == 0 else float(stats.binomtest(min(only_a, only_b), n, 0.5).pvalue)
