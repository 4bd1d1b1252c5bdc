import math

import numpy as np
import pytest

from postbc.stats import loglog_slope, mcnemar_exact_p, mean, wilson


def test_wilson_known_values():
    # 0 of 10: the upper end is z^2 / (n + z^2).
    zero = wilson(0, 10)
    assert (zero.low, zero.value) == (0.0, 0.0)
    assert zero.high == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-5)
    half = wilson(50, 100)
    assert half.value == 0.5 and half.low == pytest.approx(0.4038, abs=1e-4) and half.high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(10, 10).high == 1.0


def test_mean_interval_matches_t_formula():
    samples = np.array([1.0, 2.0, 3.0, 4.0])
    estimate = mean(samples, confidence=0.9)
    half = 2.353363 * samples.std(ddof=1) / 2  # t_{0.95, 3} = 2.3534
    assert (estimate.low, estimate.high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-5)


def test_loglog_slope_recovers_a_power_law():
    x = np.array([10.0, 100.0, 1000.0, 10000.0])
    fit = loglog_slope(x, 3 * x**-0.75)
    assert fit.slope.value == pytest.approx(-0.75)
    assert fit.intercept == pytest.approx(np.log(3))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: wilson(3, 2), "successes <= trials"),
        (lambda: mean([1.0]), "at least 2 samples"),
        (lambda: mean([1.0, 2.0], confidence=1.0), "confidence"),
        (lambda: loglog_slope([1, 2, 3], [1, 0, 1]), "positive"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_interval_helpers_match_the_estimates():
    from postbc.stats import mean_interval, wilson_interval

    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(3, 10) == (wilson(3, 10).low, wilson(3, 10).high)
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi
    assert mean_interval([5.0]) == (5.0, 5.0, 5.0)


def test_paired_p_value_matches_a_one_sample_t_test_by_hand():
    from postbc.stats import paired_p_value

    d = np.array([0.095, 0.005, 0.225, 0.220, 0.150])  # the assembly claims grid's PostBC - BC
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert abs(t - 3.3727) < 1e-3
    assert abs(paired_p_value(d) - 0.02797) < 1e-4  # two-sided, 4 degrees of freedom
    assert np.isnan(paired_p_value([0.1])) and paired_p_value([0.2, 0.2]) == 0.0 and paired_p_value([0, 0]) == 1.0


def test_mcnemar_exact_known_values():
    assert mcnemar_exact_p(0, 5) == pytest.approx(2 / 32)  # all five discordant episodes one way: 2 * 0.5^5
    assert mcnemar_exact_p(5, 0) == mcnemar_exact_p(0, 5)
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(3, 3) == 1.0
    tail = sum(math.comb(68, k) for k in range(13)) / 2**68  # 56 gained, 12 lost: twice the binomial tail
    assert mcnemar_exact_p(56, 12) == pytest.approx(2 * tail, rel=1e-9)
    with pytest.raises(ValueError):
        mcnemar_exact_p(-1, 2)
