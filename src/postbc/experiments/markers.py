"""Stage markers: DONE.json after a stage's outputs are complete, FAILED.json with its error.

A marker is written atomically (temp file + rename), so a stage killed at any point either has a
complete marker or none; no marker means "not finished", and the next sweep runs it again.
`stage.json` records the stage's grid coordinates when the stage starts (the report reads them).
A finished stage that runs again (its budget grew, or what it read changed) first moves its DONE marker,
and copies its outputs, to `superseded/<when it had finished>/`, so the earlier result is kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from postbc.io.atomic import atomic_write_json

DONE, FAILED, STAGE = "DONE.json", "FAILED.json", "stage.json"


def is_done(stage_dir: Path) -> bool:
    return (Path(stage_dir) / DONE).exists()


def read_marker(stage_dir: Path, name: str) -> dict[str, Any] | None:
    path = Path(stage_dir) / name
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def stage_status(stage_dir: Path) -> str:
    """done | failed | started (a stage.json but no outcome: running or killed) | missing."""
    stage_dir = Path(stage_dir)
    if (stage_dir / DONE).exists():
        return "done"
    if (stage_dir / FAILED).exists():
        return "failed"
    return "started" if (stage_dir / STAGE).exists() else "missing"


def write_started(stage_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(Path(stage_dir) / STAGE, record)


def write_done(stage_dir: Path, record: dict[str, Any]) -> None:
    (Path(stage_dir) / FAILED).unlink(missing_ok=True)
    atomic_write_json(Path(stage_dir) / DONE, record)


def write_failed(stage_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(Path(stage_dir) / FAILED, record)


def supersede(stage_dir: Path, outputs: tuple[str, ...]) -> Path | None:
    """Move a finished stage's DONE marker, and copy its `outputs`, to superseded/<finished_at>/ before it runs again."""
    stage_dir = Path(stage_dir)
    done = read_marker(stage_dir, DONE)
    if done is None:
        return None
    keep = stage_dir / "superseded" / str(int(done.get("finished_at", 0)))
    keep.mkdir(parents=True, exist_ok=True)
    for name in outputs:
        if (stage_dir / name).exists():
            shutil.copy2(stage_dir / name, keep / name)
    (stage_dir / DONE).replace(keep / DONE)
    return keep
