"""Run a DAG of stages on a backend: each stage starts as soon as the stages it depends on are done.

Stages already DONE are not run again; a failed stage is recorded and its dependents are
reported as blocked, while every other branch of the DAG goes on. Backends differ only in how
a stage is started and how finished ones are collected (`submit` / `wait`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol

from postbc.errors import PostBCError
from postbc.experiments import markers
from postbc.experiments.plan import KINDS, Stage
from postbc.experiments.worker import execute_stage, init_worker


class Backend(Protocol):
    def submit(self, stage: Stage) -> Any: ...
    def wait(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]: ...
    def close(self) -> None: ...


class LocalBackend:
    """A pool of spawned worker processes on this machine."""

    def __init__(self, max_workers: int, cpus_per_run: int):
        self.max_workers, self.cpus = max_workers, cpus_per_run
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(self.cpus,))

    def submit(self, stage: Stage) -> Future:
        try:
            return self.pool.submit(execute_stage, stage, self.cpus)
        except BrokenProcessPool:  # a worker died earlier: the stages it took down were recorded; start afresh
            self.pool = self._new_pool()
            return self.pool.submit(execute_stage, stage, self.cpus)

    def wait(self, handles: list[Future]) -> list[tuple[Future, dict[str, Any]]]:
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        results = []
        for fut in done:
            try:
                results.append((fut, fut.result()))
            except BrokenProcessPool as e:  # out of memory, killed: every stage on the pool is lost
                results.append((fut, _died(f"worker process died ({e})")))
        return results

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _died(error: str) -> dict[str, Any]:
    return {"status": "failed", "error": error, "wall_time_s": None, "died": True}


class RayBackend:
    """Each stage is a Ray task declaring `cpus_per_run` CPUs; Ray places it on the cluster."""

    def __init__(self, address: str | None, cpus_per_run: int, init_kwargs: dict[str, Any] | None = None):
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **(init_kwargs or {}))
        self.ray = ray
        self.remote = ray.remote(num_cpus=cpus_per_run, max_retries=0)(execute_stage)
        self.cpus = cpus_per_run

    def submit(self, stage: Stage) -> Any:
        return self.remote.remote(stage, self.cpus)

    def wait(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        done, _ = self.ray.wait(handles, num_returns=1)
        results = []
        for ref in done:
            try:
                results.append((ref, self.ray.get(ref)))
            except self.ray.exceptions.RayError as e:  # the task's worker died; execute_stage itself never raises
                results.append((ref, _died(f"Ray task died: {e}")))
        return results

    def close(self) -> None:
        pass  # the caller owns the Ray connection (`ray.shutdown()` ends a local instance)


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise PostBCError('the Ray backend needs Ray, which is not installed; install it with pip install -e ".[ray]"') from e
    return ray


@dataclasses.dataclass
class SweepResult:
    done: list[str] = dataclasses.field(default_factory=list)  # ran and finished now
    skipped: list[str] = dataclasses.field(default_factory=list)  # already DONE before
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> error
    blocked: list[str] = dataclasses.field(default_factory=list)  # a dependency failed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


def run_stages(stages: list[Stage], backend: Backend, on_event: Callable[[str, str, dict], None] | None = None) -> SweepResult:
    """Run every stage of the DAG on `backend`; `on_event(kind, name, result)` reports progress."""
    by_name = {s.name: s for s in stages}
    for s in stages:
        missing = [d for d in s.deps if d not in by_name]
        if missing:
            raise ValueError(f"stage {s.name} depends on unknown stage(s) {missing}")
    on_event = on_event or (lambda *a: None)
    result = SweepResult()
    finished: set[str] = set()
    pending = dict(by_name)
    for name, s in list(pending.items()):
        if markers.is_done(s.dir):
            finished.add(name)
            result.skipped.append(name)
            del pending[name]
            on_event("skipped", name, {})
    running: dict[Any, str] = {}

    def launch_ready() -> None:
        ready = [s for s in pending.values() if all(d in finished for d in s.deps)]
        # downstream kinds first: results of finished branches arrive before new branches start
        for s in sorted(ready, key=lambda s: -KINDS.index(s.kind) if s.kind in KINDS else 0):
            del pending[s.name]
            running[backend.submit(s)] = s.name
            on_event("started", s.name, {})

    launch_ready()
    while running:
        for handle, res in backend.wait(list(running)):
            name = running.pop(handle)
            if res["status"] == "failed":
                if res.get("died"):  # execute_stage could not record it itself
                    markers.write_failed(by_name[name].dir, {"name": name, "error": res["error"], "traceback": None})
                result.failed[name] = res["error"]
                on_event("failed", name, res)
                continue
            finished.add(name)
            (result.done if res["status"] == "done" else result.skipped).append(name)
            on_event(res["status"], name, res)
        _block_dependents(pending, set(result.failed) | set(result.blocked), result, on_event)
        launch_ready()
    return result


def _block_dependents(pending: dict[str, Stage], bad: set[str], result: SweepResult, on_event) -> None:
    changed = True
    while changed:
        changed = False
        for name, s in list(pending.items()):
            if any(d in bad for d in s.deps):
                del pending[name]
                result.blocked.append(name)
                bad.add(name)
                on_event("blocked", name, {})
                changed = True


def default_workers(cpus_per_run: int) -> int:
    return max(1, (os.cpu_count() or 1) // cpus_per_run)
