"""Run directories: config.json, metrics.csv (+ TensorBoard events), checkpoints.

A command that is started again on the same directory with the same config resumes; with a
different config it is refused, so one directory never mixes two experiments.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Mapping

from postbc.errors import PostBCError
from postbc.io.atomic import atomic_write_json
from postbc.io.config import from_jsonable, to_jsonable

RESUME_IGNORED_FIELDS = ("out", "quiet", "resume", "device")  # a run may resume on another device


def recorded_config(cfg: Any, recorded: dict) -> dict:
    """A config.json's config as today's code reads it: a field added since the run was written takes the value
    the run had (`LEGACY_DEFAULTS`, else today's default), so adding an option does not block resuming runs."""
    if not dataclasses.is_dataclass(cfg):
        return recorded
    try:
        return to_jsonable(from_jsonable(type(cfg), recorded, recorded=True))
    except (ValueError, TypeError):  # a field since removed, or a value today's code refuses: compare as written
        return recorded


def prepare_run_dir(out: Path, cfg: Any, *, command: str, ignore: tuple[str, ...] = RESUME_IGNORED_FIELDS,
                    extendable: tuple[str, ...] = ()) -> bool:
    """Create `out` with config.json, or check an existing one matches. Returns True when resuming.

    `extendable`: budget fields that may grow on a resume (a finished or killed run continues to
    the larger budget, and config.json records it); every other difference is refused.
    """
    out = Path(out)
    config_path = out / "config.json"
    record = {"command": command, "config": to_jsonable(cfg)}
    if config_path.exists():
        old = json.loads(config_path.read_text())
        old_cfg = {k: v for k, v in recorded_config(cfg, old.get("config", {})).items() if k not in ignore}
        new_cfg = {k: v for k, v in record["config"].items() if k not in ignore}
        grown = [k for k in extendable if k in old_cfg and old_cfg[k] != new_cfg.get(k)]
        for k in grown:
            if new_cfg[k] < old_cfg[k]:
                raise PostBCError(f"run directory {out} was started with {k}={old_cfg[k]}; a resume may raise the "
                                  f"budget, not lower it to {new_cfg[k]}: pass --{k} {old_cfg[k]} or more, or a new --out")
            old_cfg[k] = new_cfg[k]
        if old.get("command") != command or old_cfg != new_cfg:
            changed = sorted(k for k in set(old_cfg) | set(new_cfg) if old_cfg.get(k) != new_cfg.get(k))
            raise PostBCError(
                f"run directory {out} already holds a '{old.get('command')}' run with a different config "
                f"(differs in: {', '.join(changed) or 'command'}); choose a new --out or delete the directory"
            )
        if grown:
            atomic_write_json(config_path, {**old, "config": {**old["config"], **{k: new_cfg[k] for k in grown}}})
        return True
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, record)
    return False


class MetricsLogger:
    """Append rows to metrics.csv and TensorBoard; on resume, rows past `resume_step` are dropped.

    Rows are keyed by `step_key`; the header is fixed by the first row written (later rows may leave
    columns empty but may not add new ones, so the CSV stays rectangular). `keep_old_header`: a run
    resumed from a metrics.csv that an older version wrote keeps that file's columns and drops the
    row keys it lacks, instead of refusing the row. A file none of whose rows are kept (no
    `resume_step`: the run starts over) is emptied, header included.
    """

    def __init__(self, run_dir: Path, *, step_key: str = "step", resume_step: int | None = None, tensorboard: bool = True,
                 keep_old_header: bool = False):
        self.path = Path(run_dir) / "metrics.csv"
        self.step_key = step_key
        self.fields: list[str] | None = None
        self._drop_unknown = False
        rows: list[dict[str, str]] = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                self.fields = list(reader.fieldnames or []) or None
                self._drop_unknown = keep_old_header and self.fields is not None
                rows = [r for r in reader if resume_step is not None and float(r[step_key]) <= resume_step]
            if not rows:  # a restart from scratch: an older file's header must not constrain the new rows
                self.fields, self._drop_unknown = None, False
            self._rewrite(rows)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)

        from postbc.io.atomic import atomic_write

        atomic_write(self.path, write)

    def log(self, row: Mapping[str, Any]) -> None:
        if self.step_key not in row:
            raise ValueError(f"metrics row needs '{self.step_key}'")
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        extra = set(row) - set(self.fields)
        if extra and self._drop_unknown:
            row = {k: v for k, v in row.items() if k in self.fields}
        elif extra:
            raise ValueError(f"metrics keys {sorted(extra)} were not in the first row {self.fields}")
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow({k: _fmt(v) for k, v in row.items()})
        if self._tb is not None:
            step = int(row[self.step_key])
            for k, v in row.items():
                if k != self.step_key and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _fmt(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
