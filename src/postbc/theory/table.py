"""A printable, JSON-serializable table of predicted versus measured numbers."""

from __future__ import annotations

import dataclasses
from typing import Any

from postbc.stats import Estimate


@dataclasses.dataclass
class Table:
    """Rows are dicts keyed by column name; values are numbers, strings or `Estimate`s.
    `summary` holds the experiment's headline numbers for results.json, tests and plots;
    `notes` says them in words under the printed table."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)

    def add(self, **row: Any) -> None:
        missing = set(self.columns) - set(row)
        if missing:
            raise KeyError(f"row for {self.title!r} lacks columns {sorted(missing)}")
        self.rows.append(row)

    def column(self, name: str, where: dict[str, Any] | None = None) -> list[Any]:
        where = where or {}
        return [row[name] for row in self.rows if all(row[k] == v for k, v in where.items())]

    def render(self) -> str:
        cells = [self.columns] + [[_format(row[c]) for c in self.columns] for row in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.columns))]
        lines = [f"== {self.title}"]
        for i, line in enumerate(cells):
            lines.append("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
            if i == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.extend(f"  {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": [{k: _jsonable(v) for k, v in row.items()} for row in self.rows],
            "notes": self.notes,
            "summary": {k: _jsonable(v) for k, v in self.summary.items()},
        }


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Estimate):
        return dataclasses.asdict(value)
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value
