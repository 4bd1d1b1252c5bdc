"""Read a sweep directory into tables: stage status, pretrained success, finetuning success by budget.

Works on partial sweeps: stages the config plans but that have not run (or failed) appear with
their status, and aggregates count only finished runs (`n` says how many seeds went in).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from postbc.errors import PostBCError
from postbc.experiments import markers
from postbc.experiments.config import SweepConfig, parse_sweep_config
from postbc.experiments.plan import Stage, plan_sweep
from postbc.io.runs import read_metrics
from postbc.stats import mean_interval


@dataclasses.dataclass
class Run:
    stage: Stage
    status: str  # done | failed | started | missing
    error: str | None
    metrics: list[dict[str, str]]


@dataclasses.dataclass
class SweepResults:
    root: Path
    config: SweepConfig
    runs: list[Run]

    def of_kind(self, kind: str, done_only: bool = True) -> list[Run]:
        return [r for r in self.runs if r.stage.kind == kind and (r.status == "done" or not done_only)]


def load_results(root: Path) -> SweepResults:
    root = Path(root)
    record = markers.read_marker(root, "sweep.json")
    if record is None:
        raise PostBCError(f"{root} holds no sweep.json: it is not a sweep directory (run `postbc sweep CONFIG --out {root}`)")
    cfg = parse_sweep_config(record["config"], str(root / "sweep.json"))
    runs = []
    for stage in plan_sweep(cfg, root):
        status = markers.stage_status(stage.dir)
        failed = markers.read_marker(stage.dir, markers.FAILED) if status == "failed" else None
        runs.append(Run(stage, status, failed and failed.get("error"), read_metrics(stage.dir) if status == "done" else []))
    return SweepResults(root, cfg, runs)


def status_rows(results: SweepResults) -> list[dict[str, Any]]:
    return [{"stage": r.stage.name, "status": r.status, "error": r.error or ""} for r in results.runs]


def _float(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def success_interval(values: list[float]) -> tuple[float, float, float]:
    """mean_interval of success rates, its bounds clipped to [0, 1] (a t interval of 2 seeds is wide)."""
    mean, low, high = mean_interval(values) if len(values) else (math.nan,) * 3
    return mean, max(0.0, low) if not math.isnan(low) else low, min(1.0, high) if not math.isnan(high) else high


def _interval(values: list[float]) -> dict[str, Any]:
    mean, low, high = success_interval(values)
    return {"n": len(values), "mean": mean, "ci_low": low, "ci_high": high}


def pretrained_rows(results: SweepResults) -> list[dict[str, Any]]:
    """Pretrained success per (task, demos, method): mean and 95% interval across seeds."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    planned: dict[tuple, int] = defaultdict(int)
    for r in results.of_kind("eval", done_only=False):
        key = (r.stage.params["task"], r.stage.params["demos"], r.stage.params["method"])
        planned[key] += 1
        if r.status == "done":
            ev = markers.read_marker(r.stage.dir, "eval.json")
            if ev is not None:
                groups[key].append(float(ev["success_rate"]))
    return [{"task": t, "demos": d, "method": m, **_interval(groups[(t, d, m)]), "planned": planned[(t, d, m)]}
            for (t, d, m) in planned]


def x_key(metrics: list[dict[str, str]]) -> str:
    """Finetuning curves are over env steps; Best-of-N logs gradient updates instead."""
    return "env_steps" if metrics and "env_steps" in metrics[0] else "updates"


def curves(results: SweepResults) -> dict[tuple, dict[str, Any]]:
    """(task, demos, algo, method) -> {x_key, x, mean, low, high, n}: eval success across seeds.

    Seeds are aligned by evaluation index, not by exact step: runs evaluate every E steps, but a
    vector env overshoots E by a few steps that differ between seeds (e.g. 2007 vs 2011). The i-th
    points of all seeds form one point at their mean step; only points every seed reached are kept.
    """
    seeds: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    xk: dict[tuple, str] = {}
    for r in results.of_kind("finetune"):
        p = r.stage.params
        key = (p["task"], p["demos"], p["algo"], p["method"])
        xk[key] = x_key(r.metrics)
        rows = [row for row in r.metrics if np.isfinite(_float(row.get("eval_success")))]
        seeds[key].append((np.array([_float(row[xk[key]]) for row in rows]), np.array([_float(row["eval_success"]) for row in rows])))
    out = {}
    for key, per_seed in seeds.items():
        n_points = min(len(x) for x, _ in per_seed)
        xs = np.mean([x[:n_points] for x, _ in per_seed], axis=0) if n_points else np.array([])
        stats = [success_interval([y[i] for _, y in per_seed]) for i in range(n_points)]
        out[key] = {"x_key": xk[key], "x": xs, "n": len(per_seed),
                    "mean": np.array([s[0] for s in stats]), "low": np.array([s[1] for s in stats]),
                    "high": np.array([s[2] for s in stats])}
    return out


def budget_rows(curve_map: dict[tuple, dict[str, Any]], points: int = 4) -> list[dict[str, Any]]:
    """Finetuning success at up to `points` budgets (evenly spaced logged steps, the last included)."""
    rows = []
    for (task, demos, algo, method), c in sorted(curve_map.items()):
        if not len(c["x"]):
            continue
        idx = sorted(set(np.linspace(0, len(c["x"]) - 1, min(points, len(c["x"]))).round().astype(int)))
        for i in idx:
            rows.append({"task": task, "demos": demos, "algo": algo, "method": method, "budget": int(c["x"][i]), "unit": c["x_key"],
                         "n": c["n"], "mean": c["mean"][i], "ci_low": c["low"][i], "ci_high": c["high"][i]})
    return rows

