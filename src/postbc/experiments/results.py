"""Read a sweep directory into tables: stage status, pretrained success, finetuning success by budget,
final (many-episode) evaluations of the finetuned policies, paired same-seed differences between methods.

Works on partial sweeps: stages the config plans but that have not run (or failed) appear with
their status, and aggregates count only finished runs (`n` says how many seeds went in).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from postbc.errors import PostBCError
from postbc.experiments import markers
from postbc.experiments.eval_pretrained import ACTOR_OUTPUTS
from postbc.experiments.config import SweepConfig, parse_sweep_config
from postbc.experiments.plan import Stage, plan_sweep
from postbc.io.runs import read_metrics
from postbc.pretrain.command import ENSEMBLE_LOG
from postbc.stats import mean_interval, paired_p_value


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


def clipped_interval(values, floor: float, ceiling: float) -> tuple[float, float, float]:
    """mean_interval with its bounds clipped to the values' possible range (a t interval of 2 seeds is wide)."""
    mean, low, high = mean_interval(values) if len(values) else (math.nan,) * 3
    return mean, max(floor, low) if not math.isnan(low) else low, min(ceiling, high) if not math.isnan(high) else high


def success_interval(values: list[float]) -> tuple[float, float, float]:
    """`clipped_interval` of success rates, to [0, 1]."""
    return clipped_interval(values, 0.0, 1.0)


def _interval(values: list[float]) -> dict[str, Any]:
    mean, low, high = success_interval(values)
    return {"n": len(values), "mean": mean, "ci_low": low, "ci_high": high}


FINAL_ACTORS = {"served": ACTOR_OUTPUTS["deterministic"][1], "stochastic": ACTOR_OUTPUTS["stochastic"][1]}
"""The final evaluations' policies: the served one (DSRL: its deterministic actor), and DSRL's stochastic actor
(the reference's evaluation) on the same episodes."""


def evaluations(results: SweepResults, kind: str, file: str,
                read: Callable[[dict], Any]) -> dict[tuple, dict[int, Any]]:
    """Grid coordinates without the seed -> {seed: read(evaluation)} of every finished evaluation stage of `kind`
    ("eval": pretrained policies, keyed (task, demos, method); "final": finetuned ones, (task, demos, algo, method))
    that wrote `file`; an evaluation `read` returns None for is left out."""
    out: dict[tuple, dict[int, Any]] = defaultdict(dict)
    for r in results.of_kind(kind):
        ev = markers.read_marker(r.stage.dir, file)
        value = read(ev) if ev is not None else None
        if value is not None:
            out[stage_coordinates(r.stage)][int(r.stage.params["seed"])] = value
    return out


def eval_success(results: SweepResults, kind: str, file: str = "eval.json") -> dict[tuple, dict[int, float]]:
    """`evaluations`' success rates."""
    return evaluations(results, kind, file, lambda ev: float(ev["success_rate"]))


def stage_coordinates(stage: Stage) -> tuple:
    """A stage's grid coordinates without its seed: (task, demos, method), and the algorithm before the method for
    finetuning stages and their final evaluations."""
    p = stage.params
    return (p["task"], p["demos"], p["algo"], p["method"]) if "algo" in p else (p["task"], p["demos"], p["method"])


def pretrained_rows(results: SweepResults) -> list[dict[str, Any]]:
    """Pretrained success per (task, demos, method): mean and 95% interval across seeds, and each seed's (methods
    of a partial grid may have finished different seeds: `pretrained_paired_rows` compares them seed by seed)."""
    planned: dict[tuple, int] = defaultdict(int)
    for r in results.of_kind("eval", done_only=False):
        planned[stage_coordinates(r.stage)] += 1
    done = eval_success(results, "eval")
    return [{"task": t, "demos": d, "method": m, **_interval(list(done[(t, d, m)].values())), "planned": planned[(t, d, m)],
             "per_seed": _per_seed(done[(t, d, m)])} for (t, d, m) in planned]


def pretrained_paired_rows(results: SweepResults) -> list[dict[str, Any]]:
    """Claim 1 seed by seed: same-seed differences of pretrained success, PostBC - BC and PostBC - sigma-BC, over the
    seeds both methods finished (mean, t-interval and paired t-test p)."""
    by_method = {(t, d, "pretrained", m): by_seed for (t, d, m), by_seed in eval_success(results, "eval").items()}
    rows = []
    for task, demos, _, a, b, success_a, success_b in method_pairs(by_method):
        seeds = sorted(set(success_a) & set(success_b))
        if seeds:
            ya, yb = (np.array([d[s] for s in seeds]) for d in (success_a, success_b))
            rows.append({"task": task, "demos": demos, "comparison": f"{a} - {b}", "n": len(seeds),
                         **_difference(ya, yb), "seeds": _signed(seeds, ya - yb)})
    return rows


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


STOCHASTIC_ACTOR = " (stochastic actor)"
"""Appended to a DSRL run's algorithm in the curves of its stochastic actor (`eval_stochastic_success`, what the
reference evaluates), which the report shows beside those of the served deterministic actor."""


def curve_value(row: dict[str, Any], column: str = "eval_success") -> float:
    """A metrics row's point on the success curve: the served policy's eval success (`column`), except where the
    row also evaluated the pretrained policy itself (DSRL's step 0): the curve starts from that."""
    pretrained = _float(row.get("pretrained_success"))
    return pretrained if np.isfinite(pretrained) else _float(row.get(column))


def seed_curves(results: SweepResults) -> dict[tuple, dict[str, Any]]:
    """(task, demos, algo, method) -> {x_key, seeds: {seed: (x, success)}} of every finished finetuning run; a run
    that logged its stochastic actor (DSRL) also under algo + `STOCHASTIC_ACTOR`."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in results.of_kind("finetune"):
        p = r.stage.params
        xk = x_key(r.metrics)
        for suffix, column in (("", "eval_success"), (STOCHASTIC_ACTOR, "eval_stochastic_success")):
            if suffix and not any(np.isfinite(_float(row.get(column))) for row in r.metrics):
                continue
            rows = [row for row in r.metrics if np.isfinite(curve_value(row, column))]
            group = out.setdefault((p["task"], p["demos"], p["algo"] + suffix, p["method"]), {"x_key": xk, "seeds": {}})
            group["seeds"][int(p["seed"])] = (np.array([_float(row[xk]) for row in rows]),
                                              np.array([curve_value(row, column) for row in rows]))
    return out


# What a finetuning run logs about its own learning, in the order the report plots them (those a run has).
TRAINING_SIGNALS = ("train_success", "q_mean", "alpha", "entropy", "critic_loss", "noise_critic_loss",
                    "value_loss", "approx_kl", "clip_fraction", "explained_variance")


def signal_curves(results: SweepResults) -> dict[tuple, dict[str, Any]]:
    """(task, demos, algo) -> {x_key, signals: [names], runs: {(method, seed): {signal: (x, y)}}} of every finished
    finetuning run: the logged `TRAINING_SIGNALS` (each at the rows where it is finite), for the report's
    training-signal figures (why a run moved or did not: its critic's values, temperature, entropy, train success)."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in results.of_kind("finetune"):
        p = r.stage.params
        xk = x_key(r.metrics)
        group = out.setdefault((p["task"], p["demos"], p["algo"]), {"x_key": xk, "signals": [], "runs": {}})
        run_signals = {}
        for name in TRAINING_SIGNALS:
            points = [(_float(row[xk]), _float(row.get(name))) for row in r.metrics]
            points = [(x, y) for x, y in points if np.isfinite(y)]
            if points:
                run_signals[name] = (np.array([x for x, _ in points]), np.array([y for _, y in points]))
        group["runs"][(p["method"], int(p["seed"]))] = run_signals
        group["signals"] = [n for n in TRAINING_SIGNALS if n in run_signals or n in group["signals"]]
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


def method_pairs(grouped: dict[tuple, Any]):
    """(task, demos, algo, a, b, grouped[a's key], grouped[b's key]) for each of PAIRED_COMPARISONS that both hold;
    `grouped` is keyed (task, demos, algo, method)."""
    for (task, demos, algo, method_a), group_a in sorted(grouped.items()):
        for a, b in PAIRED_COMPARISONS:
            group_b = grouped.get((task, demos, algo, b))
            if method_a == a and group_b is not None:
                yield task, demos, algo, a, b, group_a, group_b


def paired_rows(results: SweepResults, points: int = 4) -> list[dict[str, Any]]:
    """Same-seed differences of finetuning success, PostBC - BC and PostBC - sigma-BC, at up to `points`
    evaluation indices (evenly spaced, the first and last included; index 0 is the pretrained policies).

    Seeds share their demos and evaluation episodes, so a paired difference removes what a seed's episodes
    make easy or hard. `diff`: success(a) - success(b) at that point; `gain_diff`: (a's gain since index 0)
    - (b's gain), i.e. which finetunes further from where it started. Mean and Student-t 95% interval over
    the seeds both methods finished (`seeds` lists them)."""
    rows = []
    for task, demos, algo, a, b, group_a, group_b in method_pairs(seed_curves(results)):
        seeds = sorted(set(group_a["seeds"]) & set(group_b["seeds"]))
        if not seeds:
            continue
        length = min(len(g["seeds"][s][0]) for g in (group_a, group_b) for s in seeds)
        ya, yb = (np.array([g["seeds"][s][1][:length] for s in seeds]) for g in (group_a, group_b))  # (seeds, evals)
        xs = np.mean([group_a["seeds"][s][0][:length] for s in seeds], axis=0)
        for i in budget_indices(length, points):
            rows.append({"task": task, "demos": demos, "algo": algo, "comparison": f"{a} - {b}", "budget": int(xs[i]),
                         "unit": group_a["x_key"], "n": len(seeds),
                         **_paired(ya[:, i], yb[:, i], ya[:, 0], yb[:, 0]), "seeds": _signed(seeds, ya[:, i] - yb[:, i])})
    return rows


def _difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean, t-interval and two-sided paired t-test p of the same-seed differences a - b."""
    diff = clipped_interval(a - b, -1.0, 1.0)
    return {"diff": diff[0], "diff_low": diff[1], "diff_high": diff[2], "p": paired_p_value(a - b)}


def _paired(a: np.ndarray, b: np.ndarray, a_start: np.ndarray, b_start: np.ndarray) -> dict[str, float]:
    """`_difference` of a - b, and mean and t-interval of the differences of their gains since the start."""
    gain = clipped_interval((a - a_start) - (b - b_start), -2.0, 2.0)  # a difference of two gains
    return {**_difference(a, b), "gain_diff": gain[0], "gain_low": gain[1], "gain_high": gain[2]}


def _per_seed(by_seed: dict[int, float]) -> str:
    return " ".join(f"s{s}:{by_seed[s]:.3f}" for s in sorted(by_seed))


def _signed(seeds: list[int], values: np.ndarray) -> str:
    return " ".join(f"s{s}:{v:+.2f}" for s, v in zip(seeds, values))


def final_rows(results: SweepResults) -> list[dict[str, Any]]:
    """The final evaluations (`evaluate.final_episodes` of each finished finetuned policy) per (task, demos, algo,
    method, actor: `FINAL_ACTORS`): mean success and 95% interval across seeds, and the gain over the same seeds'
    pretrained evaluation (whose episodes are the first of the final ones)."""
    episodes = results.config.evaluate.final_episodes if results.config else None
    return final_table(eval_success(results, "eval"), final_successes(results), episodes)


def final_successes(results: SweepResults) -> dict[str, dict[tuple, dict[int, float]]]:
    """actor -> (task, demos, algo, method) -> seed -> final success."""
    return {actor: eval_success(results, "final", file) for actor, file in FINAL_ACTORS.items()}


def final_table(pretrained: dict[tuple, dict[int, float]], finals: dict[str, dict[tuple, dict[int, float]]],
                episodes: int | None) -> list[dict[str, Any]]:
    """`final_rows` from per-seed successes: `pretrained` (task, demos, method) -> seed -> success, `finals` as
    `final_successes` gives them (or merged from several grids: benchmarks/combine_finals.py)."""
    rows = []
    for actor, by_run in finals.items():
        for (task, demos, algo, method), by_seed in sorted(by_run.items()):
            seeds = sorted(by_seed)
            start = pretrained.get((task, demos, method), {})
            gains = [by_seed[s] - start[s] for s in seeds if s in start]
            gain = clipped_interval(gains, -1.0, 1.0)
            rows.append({"task": task, "demos": demos, "algo": algo, "method": method, "actor": actor,
                         "episodes": episodes, **_interval([by_seed[s] for s in seeds]),
                         "gain": gain[0], "gain_low": gain[1], "gain_high": gain[2],
                         "per_seed": _per_seed(by_seed)})
    return rows


def final_paired_rows(results: SweepResults) -> list[dict[str, Any]]:
    """Same-seed differences of the final evaluations (per actor: `FINAL_ACTORS`), PostBC - BC and PostBC - sigma-BC
    (gain_diff: of the gains over each seed's pretrained evaluation), over the seeds where both methods have both
    evaluations."""
    return final_paired_table(eval_success(results, "eval"), final_successes(results))


def final_paired_table(pretrained: dict[tuple, dict[int, float]],
                       finals: dict[str, dict[tuple, dict[int, float]]]) -> list[dict[str, Any]]:
    """`final_paired_rows` from per-seed successes (as `final_table` takes them)."""
    rows = []
    for actor, by_run in finals.items():
        for task, demos, algo, a, b, final_a, final_b in method_pairs(by_run):
            start_a, start_b = pretrained.get((task, demos, a), {}), pretrained.get((task, demos, b), {})
            seeds = sorted(set(final_a) & set(final_b) & set(start_a) & set(start_b))
            if not seeds:
                continue
            ya, yb, sa, sb = (np.array([d[s] for s in seeds]) for d in (final_a, final_b, start_a, start_b))
            rows.append({"task": task, "demos": demos, "algo": algo, "actor": actor, "comparison": f"{a} - {b}",
                         "n": len(seeds), **_paired(ya, yb, sa, sb), "seeds": _signed(seeds, ya - yb)})
    return rows


def run_wall(done: dict, run: Run) -> float:
    """Wall seconds of a finished stage: its DONE marker times only the last sweep that ran it, so a resumed run
    is read from its logs' `wall_time`, which its checkpoints carry across resumes (`_logged`)."""
    logged = _logged(run, "wall_time")
    return max(done["wall_time_s"], logged) if np.isfinite(logged) else done["wall_time_s"]


def run_cpu(done: dict, run: Run) -> float:
    """CPU seconds of a finished stage: its logs' `cpu_time` where the run logs one (carried across resumes;
    the DONE marker's can be larger, as it also counts what the loops do not: env workers joined at the end, a
    pretraining's data loading and posterior), else the marker's if it timed the whole run, NaN for a resumed run
    that logged none (its earlier segments are unknown)."""
    marker = done.get("cpu_time_s")
    logged = _logged(run, "cpu_time")
    if np.isfinite(logged):
        return max(marker or 0.0, logged)
    if marker is None or _logged(run, "wall_time") > done["wall_time_s"]:  # resumed: the marker saw a segment
        return math.nan
    return marker


def _logged(run: Run, key: str) -> float:
    """The stage's training loops' last logged `key`, summed: a finetuning run's, a pretraining run's policy loop's
    and, for PostBC, its ensemble loop's (which may have finished in an earlier segment); NaN if any lacks it."""
    logs = [run.metrics]
    if run.stage.kind == "pretrain" and (run.stage.dir / ENSEMBLE_LOG / "metrics.csv").exists():
        logs.append(read_metrics(run.stage.dir / ENSEMBLE_LOG))
    return sum(_float(m[-1].get(key)) if m else math.nan for m in logs)


def cost_rows(results: SweepResults) -> list[dict[str, Any]]:
    """What the finished stages cost, per kind (and per algorithm for finetuning and its final evaluation, whose
    costs differ by algorithm): runs, wall time (total and per run, `run_wall`), CPU time (`run_cpu`: the total
    where every run's is known, the mean over those known and how many they are), and for online finetuning the
    env steps per second of whole runs."""
    by_kind: dict[tuple[str, str], list[tuple[dict, Run]]] = defaultdict(list)
    for r in results.runs:
        done = markers.read_marker(r.stage.dir, markers.DONE) if r.status == "done" else None
        if done and done.get("wall_time_s") is not None:
            by_kind[(r.stage.kind, r.stage.params.get("algo", ""))].append((done, r))
    rows = []
    for (kind, algo), items in by_kind.items():
        walls = [run_wall(d, r) for d, r in items]
        cpus = [c for c in (run_cpu(d, r) for d, r in items) if np.isfinite(c)]
        speeds = [_float(r.metrics[-1].get("env_steps")) / wall for (_, r), wall in zip(items, walls)
                  if kind == "finetune" and r.metrics and "env_steps" in r.metrics[-1] and wall > 0]
        rows.append({
            "kind": kind, "algo": algo, "runs": len(items), "wall_h": sum(walls) / 3600,
            "wall_per_run_min": np.mean(walls) / 60, "cpu_h": sum(cpus) / 3600 if len(cpus) == len(items) else math.nan,
            "cpu_per_run_h": np.mean(cpus) / 3600 if cpus else math.nan, "cpu_runs": len(cpus),
            "env_steps_per_s": float(np.mean(speeds)) if speeds else math.nan,
        })
    return rows
