"""Rows of dicts as CSV and Markdown tables (floats as 3 decimals or, below 0.0005, 2 significant digits; NaN as
"missing")."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from postbc.io.atomic import atomic_write, atomic_write_bytes


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "missing"
        return f"{v:.1e}" if 0 < abs(v) < 5e-4 else f"{v:.3f}"  # a small p-value is not 0.000
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no finished runs)\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict[str, Any]], stem: Path) -> None:
    """`stem`.csv and `stem`.md."""
    stem = Path(stem)

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            if rows:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)

    atomic_write(stem.with_suffix(".csv"), write_csv)
    atomic_write_bytes(stem.with_suffix(".md"), to_markdown(rows).encode())
