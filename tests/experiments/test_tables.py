"""Markdown cells of the report's tables."""

from postbc.experiments.tables import to_markdown


def test_tables_show_a_small_p_value_instead_of_zero():
    line = to_markdown([{"p": 3.76e-05, "diff": 0.125, "none": float("nan"), "zero": 0.0}]).splitlines()[-1]
    assert line == "| 3.8e-05 | 0.125 | missing | 0.000 |"
