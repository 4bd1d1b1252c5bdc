"""The report's final-evaluation tables on hand-built per-seed successes: gains, same-seed differences, and
intervals that stay within what a success rate allows."""

import pytest

from postbc.experiments.results import final_paired_table, final_table


PRETRAINED = {("can", 10, "bc"): {0: 0.320, 1: 0.495}, ("can", 10, "postbc"): {0: 0.300, 1: 0.400}}
FINALS = {"served": {("can", 10, "dsrl", "bc"): {0: 0.540, 1: 0.345},
                     ("can", 10, "dsrl", "postbc"): {0: 0.375, 1: 0.500}}}


def test_final_table_gains_are_over_the_same_seeds_and_bounded():
    rows = {r["method"]: r for r in final_table(PRETRAINED, FINALS, episodes=200)}
    bc = rows["bc"]
    assert bc["mean"] == pytest.approx((0.540 + 0.345) / 2) and bc["per_seed"] == "s0:0.540 s1:0.345"
    assert bc["gain"] == pytest.approx(((0.540 - 0.320) + (0.345 - 0.495)) / 2)
    # two seeds' t interval (t = 12.7) is far wider than a gain can be: clipped to [-1, 1], as success to [0, 1]
    assert (bc["gain_low"], bc["gain_high"]) == (-1.0, 1.0) and (bc["ci_low"], bc["ci_high"]) == (0.0, 1.0)


def test_final_paired_table_differences_are_same_seed_and_bounded():
    [row] = final_paired_table(PRETRAINED, FINALS)
    assert row["comparison"] == "postbc - bc" and row["n"] == 2
    assert row["diff"] == pytest.approx(((0.375 - 0.540) + (0.500 - 0.345)) / 2)
    assert row["seeds"] == "s0:-0.17 s1:+0.16"
    assert -1.0 <= row["diff_low"] and row["diff_high"] <= 1.0 and -2.0 <= row["gain_low"] and row["gain_high"] <= 2.0
    assert row["gain_diff"] == pytest.approx(((0.375 - 0.300) - (0.540 - 0.320) + (0.500 - 0.400) - (0.345 - 0.495)) / 2)
