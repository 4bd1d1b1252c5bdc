"""The Monte-Carlo checks agree with their predictions (seeded, so these are deterministic)."""

import numpy as np
import pytest

from postbc.theory import experiments
from postbc.stats import Estimate

CONFIDENCE = 0.99


def inside(prediction: float, estimate: Estimate, slack: float = 1e-9) -> bool:
    """Zero-width intervals (a quantity that does not vary across datasets) need float slack."""
    return estimate.low - slack <= prediction <= estimate.high + slack


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_result1_bc_misses_with_the_predicted_probability():
    table = experiments.result1(rng(), trials=3000, confidence=CONFIDENCE)
    for row in table.rows:
        assert inside(row["P(BC misses 2,3) pred"], row["P(BC misses 2,3) meas"]), row
        assert inside(row["E J(BC) pred"], row["E J(BC) meas"]), row
        assert row["P(PostBC misses) meas"].value == 0
    assert min(table.column("P(BC misses 2,3) pred")) >= 0.5  # T <= 1/(20 eps)


def test_result2_closed_forms_and_the_tradeoff():
    table = experiments.result2(rng(), trials=2000, confidence=CONFIDENCE)
    for row in table.rows:
        assert inside(row["E J pred"], row["E J meas"]), row
        assert inside(row["coverage pred"], row["coverage meas"]), row
    assert inside(table.summary["p_collapse_pred"], table.summary["p_collapse_meas"])
    # The headline: at equal return PostBC covers the rare state many times better.
    assert table.summary["coverage_ratio_at_matched_return"] > 10
    for alpha in (0.01, 0.1):
        uniform = table.column("E J meas", {"method": "uniform noise", "alpha": alpha})[0]
        postbc = table.column("E J meas", {"method": "PostBC", "alpha": alpha})[0]
        assert postbc.low > uniform.high


def test_result3_bound_holds_and_gap_falls_like_log_t_over_t():
    table = experiments.result3(rng(), trials=1500, confidence=CONFIDENCE, demo_counts=(30, 100, 300, 1000, 3000))
    for row in table.rows:
        assert row["P(bound holds)"].high >= 0.9
        assert row["gap PostBC"].low > 0
        assert row["gap*T/(H^2 S log T)"] < 0.05  # the rate's constant stays bounded
    assert inside(table.summary["slope_of_log_t_over_t"], table.summary["slope"])


def test_result4_postbc_is_below_the_bound_and_as_predicted():
    table = experiments.result4(rng(), trials=2000, confidence=CONFIDENCE)
    assert inside(table.summary["p_e_pred"], table.summary["p_e_meas"])
    for row in table.rows:
        assert inside(row["xi pred"], row["xi meas"]), row
        assert row["gamma meas"] == pytest.approx(row["gamma pred"])
        assert row["gamma/bound"] <= 1
    assert table.rows[-1]["gamma/bound"] > 0.3  # near-optimal, not just below the bound


def test_finetuning_bc_stays_blind_and_postbc_discovers():
    table = experiments.finetune_bandit(rng(), trials=300, confidence=CONFIDENCE, budgets=(0, 10, 100, 300))
    ceiling = 1 - (1 - 2 * 0.005) ** 10
    bc_final = table.column("E J meas", {"method": "BC", "rollouts": 300})[0]
    assert bc_final.value <= ceiling + 0.05
    assert table.summary["PostBC - BC"].low > 0.3
    postbc = table.column("E J meas", {"method": "PostBC"})
    assert postbc[-1].value > postbc[0].value + 0.3
    assert inside(postbc[-1].value, table.column("limit (exact critic)", {"method": "PostBC"})[0])


def test_finetuning_chain_postbc_beats_return_matched_noise():
    table = experiments.finetune_chain(rng(), trials=300, confidence=CONFIDENCE, budgets=(0, 1000))
    assert table.summary["PostBC - uniform noise"].low > 0
    assert table.summary["PostBC - BC"].low > 0
