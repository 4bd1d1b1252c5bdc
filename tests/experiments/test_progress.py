"""`postbc sweep --dry-run`'s progress: a started run's share of its budget, and the price of what is left."""

import dataclasses
import fcntl
import json
import math
from pathlib import Path

import pytest

from postbc.experiments import markers
from postbc.experiments.plan import Stage
from postbc.experiments.progress import describe, estimate, last_logged, rerun_price


def stage(root: Path, kind: str, method: str, seed: int, *, cpu_s: float | None = None, logged: int | None = None,
          recorded_in: Path | None = None) -> Stage:
    """A stage of a toy grid; `cpu_s`: it finished at that CPU time (in its directory, or only in `recorded_in`);
    `logged`: a finetuning run that has logged that many env steps of its 200."""
    params = {"task": "toy", "demos": 5, "method": method, "seed": seed, **({"algo": "dsrl"} if kind == "finetune" else {})}
    name = f"{kind}/toy-d5-{method}-s{seed}"
    s = Stage(name, kind, root / name, "m", "C", {"steps": 200} if kind == "finetune" else {}, params)
    s.dir.mkdir(parents=True)
    if logged is not None:
        (s.dir / "metrics.csv").write_text(f"env_steps,eval_success\n0,0.5\n{logged},0.6\n")
    if cpu_s is not None:
        where = recorded_in / name if recorded_in is not None else s.dir
        where.mkdir(parents=True, exist_ok=True)
        (where / markers.DONE).write_text(json.dumps({"wall_time_s": cpu_s, "cpu_time_s": cpu_s}))
    return s


def test_a_started_run_reports_its_share_of_the_budget(tmp_path):
    s = stage(tmp_path, "finetune", "bc", 0, logged=50)
    assert last_logged(s).share == 0.25
    assert describe(s) == "stopped; 50 / 200 env steps, logged 0 min ago"
    with open(s.dir / ".lock", "w") as held:  # what a sweep's worker holds while it runs the stage
        fcntl.flock(held, fcntl.LOCK_EX)
        assert describe(s).startswith("running; 50 / 200 env steps")
    assert describe(s).startswith("stopped")  # the worker died or the sweep was stopped
    assert describe(stage(tmp_path, "finetune", "bc", 1)) == "stopped"  # started, nothing logged yet


def test_a_started_pretraining_reports_its_ensemble_then_its_policy(tmp_path):
    s = stage(tmp_path, "pretrain", "postbc", 0)
    s.config.update(epochs=1000, ensemble_epochs=6000)
    assert last_logged(s) is None
    (s.dir / "ensemble_log").mkdir()
    (s.dir / "ensemble_log" / "metrics.csv").write_text("epoch,loss,wall_time\n757,-2.2,289.0\n758,-2.2,289.4\n")
    assert describe(s) == "stopped; 758 / 6000 ensemble epochs, logged 0 min ago"
    (s.dir / "metrics.csv").write_text("epoch,loss,lr,wall_time\n1,0.49,0.001,0.5\n")
    assert describe(s) == "stopped; 1 / 1000 epochs, logged 0 min ago"  # the ensemble is done: now the policy


def test_estimate_prices_each_stage_from_finished_ones_like_it(tmp_path):
    record = tmp_path / "record"
    stages = [
        stage(tmp_path, "pretrain", "bc", 0, cpu_s=100.0),
        stage(tmp_path, "pretrain", "postbc", 0, cpu_s=400.0, recorded_in=record),  # restored from a record
        stage(tmp_path, "finetune", "bc", 0, cpu_s=1000.0, logged=200),
        stage(tmp_path, "pretrain", "postbc", 1),  # priced at PostBC's 400, not BC's 100
        stage(tmp_path, "finetune", "postbc", 0, logged=50),  # a quarter done, priced from BC's run: 750 left
        stage(tmp_path, "eval", "bc", 0),  # no finished evaluation: not priced
    ]
    status = dict(zip([s.name for s in stages], ["done", "recorded", "done", "missing", "started", "missing"]))
    est = estimate(stages, status, record)
    assert est.cpu_s == pytest.approx(400.0 + 750.0)
    assert (est.priced, est.from_other_methods, est.unpriced) == (2, 1, 1)
    line = est.line(workers=2)
    assert line == ("3 stage(s) to run: 2 priced at about 0.3 CPU-h (1 from other methods' runs), at least 0.2 h of "
                    "wall on 2 worker(s) and 0.2 h on any number (the longest chain of stages that wait on each other); "
                    "1 not priced (nothing of their kind and algorithm finished yet)")


def test_the_wall_bound_is_the_longest_chain_when_workers_are_many(tmp_path):
    """pretrain (done) -> finetune s0 (done); pretrain s1 (3600 s) -> finetune s1 (7200 s) is the chain; a second
    finetuning run on the finished pretraining (7200 s) runs beside it."""
    done_pre = stage(tmp_path, "pretrain", "bc", 0, cpu_s=3600.0)
    pre1 = stage(tmp_path, "pretrain", "bc", 1)
    done_ft = dataclasses.replace(stage(tmp_path, "finetune", "bc", 0, cpu_s=7200.0), deps=(done_pre.name,))
    ft1 = dataclasses.replace(stage(tmp_path, "finetune", "bc", 1), deps=(pre1.name,))
    ft2 = dataclasses.replace(stage(tmp_path, "finetune", "bc", 2), deps=(done_pre.name,))
    stages = [done_pre, done_ft, pre1, ft1, ft2]
    status = dict(zip([s.name for s in stages], ["done", "done", "missing", "missing", "missing"]))
    est = estimate(stages, status)
    assert est.cpu_s == pytest.approx(3600.0 + 7200.0 + 7200.0)
    assert est.chain_s == pytest.approx(3600.0 + 7200.0)  # not 18000: ft2 needs nothing still to run
    assert "at least 5.0 h of wall on 1 worker(s) and 3.0 h on any number" in est.line(workers=1)
    assert "at least 3.0 h of wall on 8 worker(s)" in est.line(workers=8)  # the chain, not 18000 / 8


def test_a_stage_that_runs_again_is_priced_from_its_own_run(tmp_path):
    """A refill costs what it cost; a finetuning run whose budget doubled costs its run again twice over when it
    starts clean (restored from a record without its checkpoints) and once more when it continues from them."""
    refill = stage(tmp_path, "pretrain", "postbc", 0, cpu_s=400.0)
    grown = dataclasses.replace(stage(tmp_path, "finetune", "bc", 0), extendable=("steps",))  # steps 200 now
    (grown.dir / markers.DONE).write_text(json.dumps({"wall_time_s": 900.0, "cpu_time_s": 1000.0,
                                                      "config": {"steps": 100}}))
    other = stage(tmp_path, "finetune", "bc", 1, cpu_s=5000.0)  # the mean of finished runs is not used
    assert rerun_price(refill, "refill") == pytest.approx(400.0)
    assert rerun_price(grown, "redo") == pytest.approx(1000.0)  # continues from its checkpoints: 100 more steps
    (grown.dir / "RECORD.json").write_text(json.dumps({"left_out": {"checkpoints/last.safetensors": {}}}))
    assert rerun_price(grown, "redo") == pytest.approx(2000.0)  # hollow: all 200 steps again
    assert math.isnan(rerun_price(stage(tmp_path, "eval", "bc", 0), "redo"))  # never finished: priced like the rest
    status = {refill.name: "refill", grown.name: "redo", other.name: "done"}
    assert estimate([refill, grown, other], status).cpu_s == pytest.approx(400.0 + 2000.0)
