"""Read a sweep directory into tables: stage status, pretrained success, finetuning success by budget,
paired same-seed differences between methods.

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


def per_task_rows(results: SweepResults) -> list[dict[str, Any]]:
    """Multi-task envs (e.g. mt10): pretrained success per (task, demos, method, sub-task) across seeds; [] otherwise."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in results.of_kind("eval"):
        ev = markers.read_marker(r.stage.dir, "eval.json") or {}
        for sub, rate in (ev.get("per_task") or {}).items():
            key = (r.stage.params["task"], r.stage.params["demos"], r.stage.params["method"], sub)
            groups[key].append(float(rate["success_rate"]))
    return [{"task": t, "demos": d, "method": m, "sub_task": sub, **_interval(values)}
            for (t, d, m, sub), values in sorted(groups.items())]


def x_key(metrics: list[dict[str, str]]) -> str:
    """Finetuning curves are over env steps; Best-of-N logs gradient updates instead."""
    return "env_steps" if metrics and "env_steps" in metrics[0] else "updates"


def curve_value(row: dict[str, Any]) -> float:
    """A metrics row's point on the success curve: the served policy's eval success, except where the
    row also evaluated the pretrained policy itself (DSRL's step 0): the curve starts from that."""
    pretrained = _float(row.get("pretrained_success"))
    return pretrained if np.isfinite(pretrained) else _float(row.get("eval_success"))


def seed_curves(results: SweepResults) -> dict[tuple, dict[str, Any]]:
    """(task, demos, algo, method) -> {x_key, seeds: {seed: (x, success)}} of every finished finetuning run."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in results.of_kind("finetune"):
        p = r.stage.params
        key = (p["task"], p["demos"], p["algo"], p["method"])
        xk = x_key(r.metrics)
        rows = [row for row in r.metrics if np.isfinite(curve_value(row))]
        group = out.setdefault(key, {"x_key": xk, "seeds": {}})
        group["seeds"][int(p["seed"])] = (np.array([_float(row[xk]) for row in rows]),
                                          np.array([curve_value(row) for row in rows]))
    return out


def curves(results: SweepResults) -> dict[tuple, dict[str, Any]]:
    """(task, demos, algo, method) -> {x_key, x, mean, low, high, n}: eval success across seeds.

    Seeds are aligned by evaluation index, not by exact step: runs evaluate every E steps, but a
    vector env overshoots E by a few steps that differ between seeds (e.g. 2007 vs 2011). The i-th
    points of all seeds form one point at their mean step; only points every seed reached are kept.
    """
    out = {}
    for key, group in seed_curves(results).items():
        per_seed = list(group["seeds"].values())
        n_points = min(len(x) for x, _ in per_seed)
        xs = np.mean([x[:n_points] for x, _ in per_seed], axis=0) if n_points else np.array([])
        stats = [success_interval([y[i] for _, y in per_seed]) for i in range(n_points)]
        out[key] = {"x_key": group["x_key"], "x": xs, "n": len(per_seed),
                    "mean": np.array([s[0] for s in stats]), "low": np.array([s[1] for s in stats]),
                    "high": np.array([s[2] for s in stats])}
    return out


def steps_to_threshold(x: np.ndarray, success: np.ndarray, threshold: float) -> float:
    """The first logged step whose evaluation reaches `threshold` (0 if the pretrained policy already does); inf if none."""
    hit = np.flatnonzero(success >= threshold)
    return float(x[hit[0]]) if len(hit) else math.inf


def threshold_rows(results: SweepResults, thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    """Steps each seed's finetuning needed to first reach each success threshold: the paper's "sooner".

    A seed that never reached it within its budget counts as infinitely slow, so the median is
    finite only when more than half of the seeds got there.
    """
    rows = []
    for (task, demos, algo, method), group in sorted(seed_curves(results).items()):
        for threshold in thresholds:
            steps = {seed: steps_to_threshold(x, y, threshold) for seed, (x, y) in sorted(group["seeds"].items())}
            values = np.array(list(steps.values()))
            reached = np.isfinite(values)
            rows.append({"task": task, "demos": demos, "algo": algo, "method": method, "threshold": threshold,
                         "unit": group["x_key"], "reached": f"{int(reached.sum())}/{len(values)}",
                         "median": f"{np.median(values):.0f}" if reached.mean() > 0.5 else "not reached by most seeds",
                         "per_seed": " ".join(f"s{seed}:{int(v) if math.isfinite(v) else 'never'}" for seed, v in steps.items())})
    return rows


def budget_indices(length: int, points: int) -> list[int]:
    """Up to `points` evenly spaced indices into a curve of `length` evaluations, the first and last included."""
    return sorted(set(np.linspace(0, length - 1, min(points, length)).round().astype(int)))


def budget_rows(curve_map: dict[tuple, dict[str, Any]], points: int = 4) -> list[dict[str, Any]]:
    """Finetuning success at up to `points` budgets (evenly spaced logged steps, the last included)."""
    rows = []
    for (task, demos, algo, method), c in sorted(curve_map.items()):
        if not len(c["x"]):
            continue
        for i in budget_indices(len(c["x"]), points):
            rows.append({"task": task, "demos": demos, "algo": algo, "method": method, "budget": int(c["x"][i]), "unit": c["x_key"],
                         "n": c["n"], "mean": c["mean"][i], "ci_low": c["low"][i], "ci_high": c["high"][i]})
    return rows


PAIRED_COMPARISONS = (("postbc", "bc"), ("postbc", "sigma_bc"))  # the paper's claims: PostBC against each baseline


def paired_rows(results: SweepResults, points: int = 4) -> list[dict[str, Any]]:
    """Same-seed differences of finetuning success, PostBC - BC and PostBC - sigma-BC, at up to `points`
    evaluation indices (evenly spaced, the first and last included; index 0 is the pretrained policies).

    Seeds share their demos and evaluation episodes, so a paired difference removes what a seed's episodes
    make easy or hard. `diff`: success(a) - success(b) at that point; `gain_diff`: (a's gain since index 0)
    - (b's gain), i.e. which finetunes further from where it started. Mean and Student-t 95% interval over
    the seeds both methods finished (`seeds` lists them)."""
    grouped = seed_curves(results)
    rows = []
    for (task, demos, algo, method_a), group_a in sorted(grouped.items()):
        for a, b in PAIRED_COMPARISONS:
            group_b = grouped.get((task, demos, algo, b))
            if method_a != a or group_b is None:
                continue
            seeds = sorted(set(group_a["seeds"]) & set(group_b["seeds"]))
            if not seeds:
                continue
            length = min(len(g["seeds"][s][0]) for g in (group_a, group_b) for s in seeds)
            ya, yb = (np.array([g["seeds"][s][1][:length] for s in seeds]) for g in (group_a, group_b))  # (seeds, evals)
            xs = np.mean([group_a["seeds"][s][0][:length] for s in seeds], axis=0)
            for i in budget_indices(length, points):
                diff = mean_interval(ya[:, i] - yb[:, i])
                gain = mean_interval((ya[:, i] - ya[:, 0]) - (yb[:, i] - yb[:, 0]))
                rows.append({"task": task, "demos": demos, "algo": algo, "comparison": f"{a} - {b}", "budget": int(xs[i]),
                             "unit": group_a["x_key"], "n": len(seeds), "diff": diff[0], "diff_low": diff[1],
                             "diff_high": diff[2], "gain_diff": gain[0], "gain_low": gain[1], "gain_high": gain[2],
                             "seeds": " ".join(f"s{s}:{d:+.2f}" for s, d in zip(seeds, ya[:, i] - yb[:, i]))})
    return rows


def cost_rows(results: SweepResults) -> list[dict[str, Any]]:
    """What the finished stages cost, per kind: runs, wall time (total and per run), CPU time where the
    stage recorded it, and for online finetuning the env steps per second of whole runs."""
    by_kind: dict[str, list[tuple[dict, Run]]] = defaultdict(list)
    for r in results.runs:
        done = markers.read_marker(r.stage.dir, markers.DONE) if r.status == "done" else None
        if done and done.get("wall_time_s") is not None:
            by_kind[r.stage.kind].append((done, r))
    rows = []
    for kind, items in by_kind.items():
        walls = [d["wall_time_s"] for d, _ in items]
        cpus = [d["cpu_time_s"] for d, _ in items if d.get("cpu_time_s") is not None]
        speeds = [_float(r.metrics[-1].get("env_steps")) / d["wall_time_s"] for d, r in items
                  if kind == "finetune" and r.metrics and "env_steps" in r.metrics[-1] and d["wall_time_s"] > 0]
        rows.append({
            "kind": kind, "runs": len(items), "wall_h": sum(walls) / 3600, "wall_per_run_min": np.mean(walls) / 60,
            # CPU time only where every run recorded it (stages finished before it was recorded have none)
            "cpu_h": sum(cpus) / 3600 if len(cpus) == len(items) else math.nan,
            "env_steps_per_s": float(np.mean(speeds)) if speeds else math.nan,
        })
    return rows
