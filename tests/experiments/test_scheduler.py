"""The DAG runner with stand-in stages in real worker processes (no torch, a few seconds)."""

import dataclasses
import json
from pathlib import Path

import pytest

from postbc.experiments import markers, record
from postbc.experiments.plan import Stage, stage_complete, with_dep_dirs
from postbc.experiments.scheduler import LocalBackend, run_stages
from postbc.experiments.worker import execute_stage

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def standin_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # spawned workers inherit sys.path


def standin(root: Path, name: str, deps=(), **options) -> Stage:
    d = root / name
    return Stage(name=name, kind="test", dir=d, module="standin_stage", config_class="StandinConfig",
                 config={"out": str(d), **options}, params={"name": name}, deps=tuple(deps))


def starts(stage: Stage) -> int:
    path = stage.dir / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_failure_is_recorded_and_blocks_only_its_dependents(tmp_path):
    a = standin(tmp_path, "a")
    bad = standin(tmp_path, "bad", deps=["a"], fail=True)
    after_bad = standin(tmp_path, "after_bad", deps=["bad"])
    b = standin(tmp_path, "b", deps=["a"])
    c = standin(tmp_path, "c", deps=["b"])
    stages = [a, bad, after_bad, b, c]
    backend = LocalBackend(max_workers=2, cpus_per_run=1)
    try:
        result = run_stages(stages, backend)
        assert sorted(result.done) == ["a", "b", "c"]
        assert list(result.failed) == ["bad"] and "stand-in stage asked to fail" in result.failed["bad"]
        assert result.blocked == ["after_bad"]
        failed = markers.read_marker(bad.dir, markers.FAILED)
        assert "RuntimeError: stand-in stage asked to fail" in failed["error"]
        assert "Traceback" in failed["traceback"] and failed["params"] == {"name": "bad"}
        assert not markers.is_done(bad.dir) and markers.stage_status(after_bad.dir) == "missing"
        done = markers.read_marker(c.dir, markers.DONE)
        assert done["wall_time_s"] >= 0 and json.loads((c.dir / "step.json").read_text()) == {"step": 3}

        # a rerun retries the failure (now fixed) and its dependents, and redoes nothing else
        fixed = [standin(tmp_path, "bad", deps=["a"]) if s.name == "bad" else s for s in stages]
        result = run_stages(fixed, backend)
        assert sorted(result.done) == ["after_bad", "bad"] and sorted(result.skipped) == ["a", "b", "c"]
        assert result.ok and not (bad.dir / markers.FAILED).exists()
        assert [starts(s) for s in (a, b, c)] == [1, 1, 1] and starts(bad) == 2
    finally:
        backend.close()


def test_worker_resumes_a_started_stage_and_skips_a_done_one(tmp_path):
    s = standin(tmp_path, "s", steps=5)
    s.dir.mkdir()
    (s.dir / "step.json").write_text(json.dumps({"step": 3}))  # as left by a killed worker
    assert execute_stage(s)["status"] == "done"
    assert json.loads((s.dir / "step.json").read_text()) == {"step": 5}
    assert markers.read_marker(s.dir, markers.STAGE)["name"] == "s"
    assert "=== s started" in (s.dir / "stage.log").read_text()
    assert execute_stage(s)["status"] == "skipped" and starts(s) == 1


def test_a_done_stage_missing_an_output_of_its_config_runs_again(tmp_path):
    """A stage that finished under older code, before its command wrote every file it writes now (a DSRL final
    evaluation from before the stochastic actor's), runs again; the stages after it wait for it."""
    old = standin(tmp_path, "final", steps=2)
    after = standin(tmp_path, "after", deps=["final"])
    assert execute_stage(old)["status"] == "done"
    now = dataclasses.replace(old, outputs=("step.json", "extra.json"))
    assert execute_stage(now)["status"] == "done" and starts(now) == 2  # not skipped: extra.json is missing
    (now.dir / "extra.json").write_text("{}")
    backend = LocalBackend(max_workers=1, cpus_per_run=1)
    try:
        result = run_stages([now, after], backend)
    finally:
        backend.close()
    assert result.skipped == ["final"] and result.done == ["after"] and starts(now) == 2


def test_a_grown_budget_continues_a_finished_run_and_redoes_what_read_it(tmp_path):
    """Raising a finished finetuning stage's `steps` continues that run from its checkpoint; the final evaluation
    that had read it runs again, its earlier result kept under superseded/; nothing else is redone."""
    def plan(steps):
        run = dataclasses.replace(standin(tmp_path, "run", steps=steps), extendable=("steps",))
        final = dataclasses.replace(standin(tmp_path, "final", deps=["run"]), outputs=("step.json",))
        other = standin(tmp_path, "other")
        return [run, final, other]

    backend = LocalBackend(max_workers=1, cpus_per_run=1)
    try:
        assert sorted(run_stages(plan(2), backend).done) == ["final", "other", "run"]
        first_final = markers.read_marker(tmp_path / "final", markers.DONE)
        result = run_stages(plan(2), backend)
        assert result.done == [] and sorted(result.skipped) == ["final", "other", "run"]

        result = run_stages(plan(4), backend)
        assert result.done == ["run", "final"] and result.skipped == ["other"]
    finally:
        backend.close()
    run, final, other = plan(4)
    assert json.loads((run.dir / "step.json").read_text()) == {"step": 4}
    assert starts(run) == 2 and starts(final) == 2 and starts(other) == 1
    kept = final.dir / "superseded" / str(int(first_final["finished_at"]))
    assert markers.read_marker(kept, markers.DONE) == first_final and (kept / "step.json").exists()
    assert markers.read_marker(run.dir, markers.DONE)["config"]["steps"] == 4
    # a smaller budget than the run's is not a reason to run it again
    assert all(stage_complete(s) for s in with_dep_dirs(plan(3)))
    # nor is a budget the config no longer names (the command's default then applies, as it did)
    assert stage_complete(dataclasses.replace(run, config={"out": str(run.dir)}))


def test_sweep_finals_of_noise_actor_runs_require_both_actors_outputs():
    from postbc.experiments.config import load_sweep_config
    from postbc.experiments.plan import plan_sweep

    repo = HERE.parents[1]
    stages = plan_sweep(load_sweep_config(repo / "configs" / "toy_tiny.toml"), Path("/nonexistent"))
    finals = [s for s in stages if s.kind == "final"]
    assert finals and all(s.outputs == ("eval.json", "eval_stochastic.json") for s in finals)
    assert all(s.outputs == ("eval.json",) for s in stages if s.kind == "eval")


def test_unknown_dependency_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown stage"):
        run_stages([standin(tmp_path, "x", deps=["nope"])], backend=None)


class RecordingBackend:
    """Runs each stage at submission (in this process) and reports them one at a time."""

    def __init__(self, capacity):
        self.capacity, self.order, self.queue = capacity, [], []

    def submit(self, stage):
        self.order.append(stage.name)
        self.queue.append(stage.name)
        return stage.name

    def wait(self, handles):
        name = self.queue.pop(0)
        return [(name, {"status": "done"})]

    def close(self):
        pass


def test_a_finished_branch_completes_before_a_new_one_starts(tmp_path):
    stages = [Stage(name=f"{kind}/{seed}", kind=kind, dir=tmp_path / f"{kind}{seed}", module="m", config_class="C",
                    config={}, params={}, deps=(f"pretrain/{seed}",) if kind == "eval" else ())
              for kind in ("pretrain", "eval") for seed in (0, 1)]
    backend = RecordingBackend(capacity=1)
    assert run_stages(stages, backend).ok
    assert backend.order == ["pretrain/0", "eval/0", "pretrain/1", "eval/1"]  # not both pretrains first
    unbounded = RecordingBackend(capacity=None)
    run_stages(stages, unbounded)
    assert unbounded.order[:2] == ["pretrain/0", "pretrain/1"]


def test_a_stopped_grid_holds_every_method_at_its_first_seeds(tmp_path):
    stages = [Stage(name=f"finetune/{method}-s{seed}", kind="finetune", dir=tmp_path / f"{method}{seed}", module="m",
                    config_class="C", config={}, params={"method": method, "seed": seed})
              for method in ("bc", "postbc") for seed in (0, 1)]  # the plan's order: method-major
    backend = RecordingBackend(capacity=1)
    assert run_stages(stages, backend).ok
    assert backend.order == ["finetune/bc-s0", "finetune/postbc-s0", "finetune/bc-s1", "finetune/postbc-s1"]


# Sweep records (`postbc sweep --record`, postbc.experiments.record): a grid outlives its run directory.

def record_all(stages, dest: Path) -> None:
    for s in stages:
        record.sync(s.dir, dest / s.name)


def restore_all(stages, dest: Path) -> None:
    for s in stages:
        record.restore(dest / s.name, s.dir)


@pytest.fixture
def backend():
    b = LocalBackend(max_workers=1, cpus_per_run=1)
    yield b
    b.close()


def test_a_record_keeps_small_files_and_the_checksums_of_what_it_leaves_out(tmp_path):
    s = standin(tmp_path / "run", "pretrain", artifact="weights")
    assert execute_stage(s)["status"] == "done"
    (s.dir / "tb").mkdir()
    (s.dir / "tb" / "events").write_text("x")
    (s.dir / "big.log").write_text("x" * (record.SMALL_BYTES + 1))
    dest = tmp_path / "rec" / s.name
    assert record.sync(s.dir, dest) and not record.sync(s.dir, dest)  # recorded once, then up to date
    kept = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert kept == {"DONE.json", "stage.json", "stage.log", "starts.txt", "step.json", "device.txt", record.MANIFEST}
    left_out = record.manifest(dest)["left_out"]
    assert set(left_out) == {"model.safetensors", "tb/events", "big.log"}
    assert left_out["model.safetensors"]["sha256"] == record.sha256(s.dir / "model.safetensors")
    # restored elsewhere, only the artifact is missing: logs and events are not what a later stage reads
    assert record.restore(dest, tmp_path / "elsewhere") and record.missing(tmp_path / "elsewhere") == ["model.safetensors"]


def test_a_lost_run_dir_is_restored_and_only_what_a_stage_to_run_needs_is_refilled(tmp_path, backend):
    """The record of data -> pretrain (-> eval, both done) is restored into an empty directory; the finetune still to
    run needs the pretrained artifact, so pretrain runs again, and data before it; the refills match the record, so
    their recorded markers stand and the eval is not redone."""
    def plan(root):
        data = standin(root, "data", artifact="demos")
        pre = standin(root, "pretrain", deps=["data"], artifact="weights", reads=str(root / "data" / "model.safetensors"))
        ev = dataclasses.replace(standin(root, "eval", deps=["pretrain"], reads=str(root / "pretrain" / "model.safetensors")),
                                 outputs=("step.json",))
        ft = standin(root, "finetune", deps=["pretrain"], reads=str(root / "pretrain" / "model.safetensors"))
        return data, pre, ev, ft

    rec = tmp_path / "record"
    first = plan(tmp_path / "a")
    assert sorted(run_stages(list(first[:3]), backend).done) == ["data", "eval", "pretrain"]
    record_all(first, rec)
    recorded_done = markers.read_marker(rec / "pretrain", markers.DONE)

    stages = plan(tmp_path / "b")  # a new machine: nothing but the record
    restore_all(stages, rec)
    assert all(markers.is_done(s.dir) for s in stages[:3]) and record.missing(stages[1].dir) == ["model.safetensors"]
    result = run_stages(list(stages), backend)
    assert result.ok and result.skipped == ["eval"] and result.done == ["data", "pretrain", "finetune"]
    data, pre, ev, ft = stages
    assert markers.read_marker(pre.dir, markers.DONE) == recorded_done and not record.missing(pre.dir)
    assert starts(ev) == 1 and starts(pre) == 1  # the refill ran (the artifact is back), its own files gave way to the record's
    assert not (pre.dir / "superseded").exists() and not (pre.dir / ".refill").exists()
    # everything now stands: a further sweep runs nothing
    result = run_stages(list(stages), backend)
    assert result.done == [] and len(result.skipped) == 4


def test_a_refill_that_differs_from_the_record_stands_as_a_new_run(tmp_path, backend):
    rec = tmp_path / "record"
    pre = standin(tmp_path / "a", "pretrain", artifact="weights v1")
    assert run_stages([pre], backend).done == ["pretrain"]
    record_all([pre], rec)
    recorded_done = markers.read_marker(rec / "pretrain", markers.DONE)

    root = tmp_path / "b"
    pre2 = standin(root, "pretrain", artifact="weights v2")  # not deterministic after all
    ft = standin(root, "finetune", deps=["pretrain"], reads=str(root / "pretrain" / "model.safetensors"))
    restore_all([pre2, ft], rec)
    result = run_stages([pre2, ft], backend)
    assert result.done == ["pretrain", "finetune"]
    assert (pre2.dir / "model.safetensors").read_text() == "weights v2"
    new_done = markers.read_marker(pre2.dir, markers.DONE)
    assert new_done["finished_at"] > recorded_done["finished_at"] and not (pre2.dir / record.MANIFEST).exists()
    kept = pre2.dir / "superseded" / str(int(recorded_done["finished_at"]))
    assert markers.read_marker(kept, markers.DONE) == recorded_done
    record.sync(pre2.dir, rec / "pretrain")  # the record now holds the new run
    assert record.manifest(rec / "pretrain")["left_out"]["model.safetensors"]["sha256"] == \
        record.sha256(pre2.dir / "model.safetensors")


def test_a_refill_killed_before_it_finished_resumes_as_a_refill(tmp_path):
    """The session ends while a refill runs: its recorded files sit parked, the run has a checkpoint and no DONE.
    The next sweep resumes the run and settles it as a refill: the recorded run goes to superseded/, not lost."""
    rec = tmp_path / "record"
    pre = standin(tmp_path / "a", "pretrain", steps=3, artifact="weights v1")
    execute_stage(pre)
    record_all([pre], rec)
    recorded_done = markers.read_marker(rec / "pretrain", markers.DONE)

    pre2 = standin(tmp_path / "b", "pretrain", steps=3, artifact="weights v2")
    restore_all([pre2], rec)
    record.park(pre2.dir)  # what the killed refill had done before it ran ...
    (pre2.dir / "step.json").write_text(json.dumps({"step": 1}))  # ... and how far it got
    assert markers.stage_status(pre2.dir) != "done"
    result = execute_stage(pre2)
    assert result["status"] == "done" and result["refilled"] and result["changed"] == ["model.safetensors"]
    assert json.loads((pre2.dir / "step.json").read_text()) == {"step": 3} and starts(pre2) == 1  # resumed
    assert not record.parking(pre2.dir).exists() and not (pre2.dir / record.MANIFEST).exists()
    kept = pre2.dir / "superseded" / str(int(recorded_done["finished_at"]))
    assert markers.read_marker(kept, markers.DONE) == recorded_done


def test_a_restored_run_whose_budget_grew_starts_clean(tmp_path, backend):
    rec = tmp_path / "record"
    run = dataclasses.replace(standin(tmp_path / "a", "run", steps=2, artifact="replay"), extendable=("steps",))
    run_stages([run], backend)
    record_all([run], rec)
    grown = dataclasses.replace(standin(tmp_path / "b", "run", steps=4, artifact="replay"), extendable=("steps",))
    restore_all([grown], rec)
    (grown.dir / "step.json").write_text(json.dumps({"step": 2}))  # as recorded: a checkpoint without its buffer
    assert run_stages([grown], backend).done == ["run"]
    assert json.loads((grown.dir / "step.json").read_text()) == {"step": 4}
    assert not record.missing(grown.dir) and (grown.dir / "superseded").is_dir()


def test_restore_leaves_a_directory_with_work_in_it_alone(tmp_path):
    s = standin(tmp_path / "a", "run")
    execute_stage(s)
    record.save(s.dir, tmp_path / "rec")
    live = tmp_path / "live"
    live.mkdir()
    (live / "step.json").write_text(json.dumps({"step": 7}))  # a later run under way
    assert not record.restore(tmp_path / "rec", live)
    assert not markers.is_done(live)
    assert record.restore(tmp_path / "rec", tmp_path / "empty") and markers.is_done(tmp_path / "empty")
