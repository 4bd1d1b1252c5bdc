"""Run one stage inside a worker process (local pool or Ray task) and record its outcome.

The stage's command does its own resuming; this wrapper adds what a sweep needs around it:
- a lock on the stage directory, so a stage left running by a killed sweep (a worker that
  outlived its parent) and the same stage of the restarted sweep never write at the same time;
- the stage's stdout / stderr appended to `stage.log`;
- DONE.json only after `run(cfg)` returned, FAILED.json with the error and traceback otherwise.
Exceptions never leave `execute_stage`: one failing stage does not stop the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib
import os
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Iterator

from postbc.experiments import markers, record
from postbc.experiments.plan import Stage, stage_complete
from postbc.utils import cpu_seconds

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def init_worker(cpus: int) -> None:
    """Pool initializer: die with the sweep process, and size thread pools to `cpus`."""
    _die_with_parent()
    limit_threads(cpus)


def limit_threads(cpus: int) -> None:
    for var in THREAD_VARS:
        os.environ[var] = str(cpus)
    if "torch" in sys.modules:  # otherwise torch reads OMP_NUM_THREADS when the command imports it
        sys.modules["torch"].set_num_threads(cpus)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the process that started it dies (a killed sweep leaves no orphans)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def _stage_lock(stage_dir: Path) -> Iterator[None]:
    stage_dir.mkdir(parents=True, exist_ok=True)
    with open(stage_dir / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released by the kernel when the holder dies
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _output_to(log_path: Path) -> Iterator[None]:
    """Send this process's stdout / stderr (file descriptors, so child processes too) to `log_path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            # sys.stdout may not be file descriptor 1 (e.g. under pytest), so redirect it as well
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def execute_stage(stage: Stage, cpus: int = 1, device: str | None = None) -> dict[str, Any]:
    """Run `stage` unless it is done; returns {"name", "status": done | skipped | failed, "error", "wall_time_s"}.
    A done stage restored from a sweep record without its artifacts (`record`) is run again to refill them; its
    result then also says `refilled` and which artifacts `changed` from the recorded ones.

    `device` ("cpu", "cuda:1", ...) is given to the stage's command as its `device` option when its
    config has one (placement is the backend's decision, not the sweep config's)."""
    limit_threads(cpus)
    with _stage_lock(stage.dir):
        hollow = bool(record.missing(stage.dir))
        if stage_complete(stage):  # finished by a sweep that was killed before it heard back, or a refill
            if not hollow:
                return {"name": stage.name, "status": "skipped", "error": None, "wall_time_s": 0.0}
            return _refill(stage, record.park(stage.dir), device)
        if record.parking(stage.dir).is_dir():  # a refill killed before it finished: it resumes, as a refill
            return _refill(stage, record.parking(stage.dir), device)
        if hollow:  # a recorded result that runs again (its budget grew): the command starts clean
            record.unpark(stage.dir, record.park(stage.dir), keep=False)
        else:
            markers.supersede(stage.dir, stage.outputs)
        return _run(stage, device)


def _refill(stage: Stage, parked: Path, device: str | None) -> dict[str, Any]:
    """Run a hollow stage again, its recorded files parked in `parked`; then they come back if the new artifacts
    match them or the run failed, else they go to superseded/ (`record.unpark`). A killed run leaves them parked."""
    result = _run(stage, device)
    changed = record.mismatches(stage.dir, parked) if result["status"] == "done" else []
    record.unpark(stage.dir, parked, keep=result["status"] != "done" or not changed)
    return {**result, "refilled": True, "changed": changed}


def _run(stage: Stage, device: str | None) -> dict[str, Any]:
    info = {"name": stage.name, "kind": stage.kind, "params": stage.params, "config": stage.config,
            "host": socket.gethostname(), "pid": os.getpid()}
    markers.write_started(stage.dir, {**info, "started_at": time.time()})
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    try:
        with _output_to(stage.dir / "stage.log"):
            print(f"=== {stage.name} started {time.ctime()}", flush=True)
            module = importlib.import_module(stage.module)
            cls = getattr(module, stage.config_class)
            options = stage.config
            if device is not None and "device" in {f.name for f in dataclasses.fields(cls)}:
                options = {**options, "device": device}
                print(f"device: {device}", flush=True)
            cfg = _build_config(cls, options)
            module.run(cfg)
    except BaseException as e:  # noqa: BLE001 - every failure, even SystemExit, is recorded
        wall = time.perf_counter() - t0
        error = f"{type(e).__name__}: {e}"
        markers.write_failed(stage.dir, {**info, "error": error, "traceback": traceback.format_exc(),
                                         "wall_time_s": wall, "failed_at": time.time()})
        if isinstance(e, KeyboardInterrupt):
            raise
        return {"name": stage.name, "status": "failed", "error": error, "wall_time_s": wall}
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    markers.write_done(stage.dir, {**info, "wall_time_s": wall, "cpu_time_s": cpu, "finished_at": time.time()})
    return {"name": stage.name, "status": "done", "error": None, "wall_time_s": wall, "cpu_time_s": cpu}


def _build_config(cls: type, options: dict[str, Any]) -> Any:
    from postbc.io.config import from_jsonable

    return from_jsonable(cls, options)
