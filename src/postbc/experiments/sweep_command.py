"""`postbc sweep CONFIG`: run a grid of experiments (collect -> pretrain -> eval -> finetune).

    postbc sweep configs/toy_tiny.toml --out runs/toy_tiny
    postbc sweep configs/paper_robomimic.toml --backend ray --ray-address auto

Every stage writes its own directory under --out, named by its parameters. Running the same
command again skips finished stages (DONE.json), retries failed ones and resumes the rest from
their checkpoints, so a killed sweep is simply started again.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Annotated

import tyro

from postbc.io.config import require_choice, require_positive

BACKENDS = ("local", "ray")


@dataclasses.dataclass
class SweepCommandConfig:
    config: Annotated[Path, tyro.conf.Positional]
    """sweep config file (.toml or .json): the grid and the budgets; see configs/ and docs/experiments.md."""
    out: Path | None = None
    """sweep directory (default: runs/<config file name>)."""
    backend: str = "local"
    """local (a process pool on this machine) | ray (one Ray task per stage)."""
    ray_address: str | None = None
    """address of a Ray cluster (implies --backend ray); without it the ray backend starts a local instance."""
    max_workers: int = 0
    """local backend: stages run at once (0: CPU cores // cpus_per_run); --dry-run prices the wall time on this many
    workers (with --backend ray, give the cluster's)."""
    cpus_per_run: int = 1
    """CPUs (torch threads) each stage uses; the Ray backend declares them as the task's resources."""
    gpus_per_run: float = 0.0
    """GPUs each pretrain / finetune stage uses (0: everything on CPUs). Local backend: each such stage gets the
    least busy visible GPU as --device; Ray: the task requests num_gpus (a fraction shares a GPU)."""
    only: str | None = None
    """run only the stages whose name contains this text, plus the stages they depend on (e.g. "pretrain/")."""
    dry_run: bool = False
    """list the stages and their status, run nothing."""
    record: Path | None = None
    """keep each finished stage's small files (metrics, evaluations, markers; not its policies, demos or replay) in
    this directory, to commit; a later sweep restores from it the stages its --out lacks and reruns only those whose
    artifacts a stage still to run needs (docs/experiments.md, "Records")."""

    def __post_init__(self) -> None:
        if self.ray_address:
            self.backend = "ray"
        require_choice("backend", self.backend, BACKENDS)
        require_positive("max_workers", self.max_workers, allow_zero=True)
        require_positive("cpus_per_run", self.cpus_per_run)
        require_positive("gpus_per_run", self.gpus_per_run, allow_zero=True)
        self.config = Path(self.config)
        self.out = Path(self.out) if self.out is not None else Path("runs") / self.config.stem
        self.record = Path(self.record) if self.record is not None else None


def select(stages, only: str | None):
    """The stages whose name contains `only`, and everything they need."""
    if not only:
        return stages
    by_name = {s.name: s for s in stages}
    keep: set[str] = set()
    todo = [s.name for s in stages if only in s.name]
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo += by_name[name].deps
    return [s for s in stages if s.name in keep]


def make_backend(cfg: SweepCommandConfig, ray_init: dict | None = None, gpus: list[str] | None = None):
    """The backend of `cfg`; `gpus`: the local GPUs device stages are placed on (`stage_devices`)."""
    from postbc.experiments.scheduler import LocalBackend, RayBackend, default_workers

    if cfg.backend == "ray":
        return RayBackend(cfg.ray_address, cfg.cpus_per_run, init_kwargs=ray_init, gpus_per_run=cfg.gpus_per_run)
    return LocalBackend(cfg.max_workers or default_workers(cfg.cpus_per_run), cfg.cpus_per_run, gpus)


def run(cfg: SweepCommandConfig, *, ray_init: dict | None = None):
    """Run the sweep; returns its `SweepResult`. `ray_init`: extra `ray.init` arguments (tests)."""
    from postbc.errors import PostBCError
    from postbc.experiments import markers, record
    from postbc.experiments.config import load_sweep_config
    from postbc.experiments.plan import plan_sweep
    from postbc.experiments.scheduler import default_workers, run_stages, stage_devices
    from postbc.io.atomic import atomic_write_json
    from postbc.io.config import to_jsonable

    sweep = load_sweep_config(cfg.config)
    # a Ray cluster's GPUs are Ray's to count; a local sweep is refused here when it asks for GPUs this machine lacks
    gpus = stage_devices(cfg.gpus_per_run) if cfg.backend == "local" else []
    stages = select(plan_sweep(sweep, cfg.out), cfg.only)
    if not stages:
        raise PostBCError(f"--only {cfg.only!r} matches no stage of {cfg.config}; names look like pretrain/toy-d5-bc-s0")
    if cfg.dry_run:
        print_plan(stages, cfg.record, workers=cfg.max_workers or default_workers(cfg.cpus_per_run))
        return None
    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.record is not None:
        restored = sum(record.restore(cfg.record / s.name, s.dir) for s in stages)
        recorded = sum(record.sync(s.dir, cfg.record / s.name) for s in stages)
        print(f"record {cfg.record}: {restored} finished stage(s) restored from it, {recorded} recorded into it")
    by_name = {s.name: s for s in stages}
    for root in (cfg.out, cfg.record) if cfg.record is not None else (cfg.out,):  # `postbc report` reads a record too
        atomic_write_json(root / "sweep.json", {"source": str(cfg.config), "config": to_jsonable(sweep)})
    t0 = time.perf_counter()

    cpu_time = 0.0

    def on_event(kind: str, name: str, res: dict) -> None:
        nonlocal cpu_time
        cpu_time += res.get("cpu_time_s") or 0.0
        if kind == "done":
            refilled = " refilled" + (f": {', '.join(res['changed'])} differ from the record's, the new run stands"
                                      if res["changed"] else ", as recorded") if res.get("refilled") else ""
            print(f"[{time.perf_counter() - t0:7.1f}s] done     {name} ({res['wall_time_s']:.1f}s){refilled}", flush=True)
            if cfg.record is not None:
                record.sync(by_name[name].dir, cfg.record / name)
        elif kind == "failed":
            print(f"[{time.perf_counter() - t0:7.1f}s] FAILED   {name}: {res['error']}", flush=True)
        elif kind in ("started", "blocked"):
            print(f"[{time.perf_counter() - t0:7.1f}s] {kind:8s} {name}", flush=True)

    backend = make_backend(cfg, ray_init, gpus)
    try:
        result = run_stages(stages, backend, on_event)
    finally:
        backend.close()
    print(f"sweep {cfg.out}: {len(result.done)} run, {len(result.skipped)} already done, "
          f"{len(result.failed)} failed, {len(result.blocked)} blocked by a failure")
    if result.done:
        print(utilisation_line(time.perf_counter() - t0, cpu_time, cfg.backend))
    for name, error in result.failed.items():
        print(f"  failed: {name}: {error} (details in {cfg.out / name / markers.FAILED})", file=sys.stderr)
    if not result.ok:
        raise PostBCError(f"{len(result.failed)} stage(s) failed; fix the cause and run the same command again "
                          "(finished stages are kept)")
    return result


def print_plan(stages, record_dir: Path | None, workers: int = 1) -> None:
    """`--dry-run`: each stage's status; `redo`: done but runs again (its budget grew, or what it read changed);
    `recorded`: not here but in the record (restored, not run); `refill`: restored without the artifacts a stage
    still to run needs, so it runs again. A recorded stage is judged as the sweep will judge it once restored, so a
    fresh machine's plan shows the refills and the redos it will run. A started stage says whether it runs now and
    how far it logged (`progress.describe`); then the counts and what the rest should cost (`progress.estimate`)."""
    import dataclasses
    from collections import Counter

    from postbc.experiments import markers, progress, record
    from postbc.experiments.scheduler import refills, standing, with_dep_dirs

    restorable = {s.name for s in stages if record_dir is not None and markers.stage_status(s.dir) == "missing"
                  and record.recorded_at(record_dir / s.name) is not None}
    view = with_dep_dirs([dataclasses.replace(s, dir=record_dir / s.name) if s.name in restorable else s
                          for s in stages])
    by_name = {s.name: s for s in view}
    stand = standing(view)
    refill = refills(by_name, stand)
    status = {}
    for s in view:
        state = markers.stage_status(s.dir)
        if state == "done":
            state = ("refill" if s.name in refill else "recorded" if s.name in restorable else "done") \
                if s.name in stand else "redo"
        status[s.name] = state
        detail = f"  ({progress.describe(s)})" if state == "started" else ""
        print(f"{state:8s} {s.name}{detail}")
    counts = Counter(status.values())
    print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + f" of {len(stages)} stages")
    print(progress.estimate(view, status, record_dir).line(workers))


def utilisation_line(wall: float, cpu: float, backend: str) -> str:
    """Wall time, the stages' CPU time and, for a local pool, the share of this machine's cores it kept busy."""
    import os

    line = f"wall {wall / 60:.1f} min, CPU time of the stages run now {cpu / 60:.1f} min"
    if backend == "local":
        cores = os.cpu_count() or 1
        line += f": {cpu / (wall * cores):.0%} of {cores} cores busy (other processes on the machine not counted)"
    return line
