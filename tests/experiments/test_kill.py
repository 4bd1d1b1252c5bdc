"""SIGKILL a real `postbc sweep` mid-way and start it again (real collect / pretrain / eval stages)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from postbc.experiments import markers
from postbc.io.runs import read_metrics

# 2 tasks, one of which does not exist: its collect fails every time, the toy branch must not care.
SWEEP = {
    "name": "kill-test",
    "grid": {"tasks": ["toy", "nosuchtask"], "demos": [3], "methods": ["bc"], "seeds": [0, 1]},
    "evaluate": {"episodes": 2},
    "pretrain": {"epochs": 1500, "hidden": 16, "layers": 1, "train_steps": 10, "inference_steps": 2,
                 "checkpoint_every": 50},
}


def sweep(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "POSTBC_QUIET": "1"}
    return subprocess.Popen([sys.executable, "-m", "postbc.cli", "sweep", str(config), "--out", str(out), "--max-workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def checkpoint_epoch(run_dir: Path) -> int:
    meta = run_dir / "checkpoints" / "last.json"
    return json.loads(meta.read_text())["meta"]["epoch"] if meta.exists() else 0


def test_sigkill_then_restart(tmp_path):
    config = tmp_path / "kill.json"
    config.write_text(json.dumps(SWEEP))
    out = tmp_path / "sweep"
    data, p0, p1 = out / "data" / "toy-d3-s0", out / "pretrain" / "toy-d3-bc-s0", out / "pretrain" / "toy-d3-bc-s1"
    proc = sweep(config, out)
    deadline = time.time() + 900  # generous: on a loaded machine the first pretraining run alone can take minutes
    # kill once a pretraining run has finished and the next one is mid-way (has a checkpoint, no DONE)
    while not (markers.is_done(p0) and checkpoint_epoch(p1) >= 100 and not markers.is_done(p1)):
        assert proc.poll() is None, f"sweep ended before the kill point:\n{proc.stdout.read()}"
        assert time.time() < deadline, "the kill point was not reached in 900 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not markers.is_done(p1)
    done_before = {d: (d / markers.DONE).stat().st_mtime_ns for d in out.glob("*/*") if markers.is_done(d)}
    assert data in done_before and p0 in done_before
    killed_epoch = checkpoint_epoch(p1)
    rows_before = [r for r in read_metrics(p1) if int(r["epoch"]) <= killed_epoch]
    # the toy branch's stages run before the next task's data stage (downstream first, one worker)
    assert markers.stage_status(out / "data" / "nosuchtask-d3-s0") == "missing"

    proc = sweep(config, out)
    output, _ = proc.communicate(timeout=900)  # the rest of the work; a loaded machine must not fail the test
    assert proc.returncode == 2, output  # the failing branch is reported as a failure
    assert "1 failed, 4 blocked" in output, output

    # nothing finished was redone
    for d, mtime in done_before.items():
        assert (d / markers.DONE).stat().st_mtime_ns == mtime, f"{d} was redone"
    # the killed pretraining run continued from its checkpoint: its logged rows (with their wall
    # times, which a fresh start could not reproduce) are kept
    assert [r for r in read_metrics(p1) if int(r["epoch"]) <= killed_epoch] == rows_before
    assert int(read_metrics(p1)[-1]["epoch"]) == 1500
    # the toy branch is complete and every stage directory is either DONE or FAILED
    for name in ("data/toy-d3-s0", "pretrain/toy-d3-bc-s0", "pretrain/toy-d3-bc-s1", "eval/toy-d3-bc-s0", "eval/toy-d3-bc-s1"):
        assert markers.is_done(out / name), name
    assert json.loads((out / "eval" / "toy-d3-bc-s1" / "eval.json").read_text())["episodes"] == 2
    # the failing stage is recorded with its error
    failed_after = markers.read_marker(out / "data" / "nosuchtask-d3-s0", markers.FAILED)
    assert "nosuchtask" in failed_after["error"] and failed_after["traceback"]
    assert sorted(p.name for p in (out / "pretrain").iterdir()) == ["toy-d3-bc-s0", "toy-d3-bc-s1"]
