"""Run a DAG of stages on a backend: each stage starts as soon as the stages it depends on are done.

Stages already DONE are not run again (unless a stage to run needs the artifacts a sweep record left out:
`refills`); a failed stage is recorded and its dependents are
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
from postbc.experiments import markers, record
from postbc.experiments.plan import KINDS, Stage, stage_complete, with_dep_dirs
from postbc.experiments.worker import execute_stage, init_worker


class Backend(Protocol):
    capacity: int | None  # stages it runs at once (a local pool's workers); None: submit everything ready
    def submit(self, stage: Stage) -> Any: ...
    def wait(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]: ...
    def close(self) -> None: ...


class GpuSlots:
    """Which visible GPU the next device stage runs on: the one running the fewest stages (ties: lowest index)."""

    def __init__(self, gpus: list[str]):
        self.running = {gpu: 0 for gpu in gpus}

    def acquire(self) -> str:
        gpu = min(self.running, key=self.running.get)  # the first of equal counts: the lowest index
        self.running[gpu] += 1
        return gpu

    def release(self, gpu: str) -> None:
        self.running[gpu] -= 1


def stage_devices(gpus_per_run: float) -> list[str]:
    """The GPUs a sweep places device stages on ([] for a CPU sweep), refused when it asks for GPUs there are none of."""
    if gpus_per_run <= 0:
        return []
    from postbc.device import available_devices

    gpus = available_devices()[1:]
    if not gpus:
        raise PostBCError(f"--gpus-per-run {gpus_per_run}: this machine has no CUDA device (available: cpu); "
                          "drop the option to run the sweep on CPUs")
    return gpus


class LocalBackend:
    """A pool of spawned worker processes on this machine.

    With GPUs (`gpus`, e.g. ["cuda:0", "cuda:1"]), each pretrain / finetune stage gets the least busy
    one as its `--device`; collect and eval stages and GPU-less sweeps run on the CPU.
    """

    def __init__(self, max_workers: int, cpus_per_run: int, gpus: list[str] | None = None):
        self.max_workers, self.cpus = max_workers, cpus_per_run
        self.capacity = max_workers  # more would wait in the pool's FIFO queue, in submission order
        self.gpus = GpuSlots(gpus) if gpus else None
        self.placed: dict[Future, str] = {}
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=init_worker, initargs=(self.cpus,))

    def submit(self, stage: Stage) -> Future:
        device = self.gpus.acquire() if self.gpus is not None and stage.uses_device else "cpu"
        try:
            fut = self.pool.submit(execute_stage, stage, self.cpus, device)
        except BrokenProcessPool:  # a worker died earlier: the stages it took down were recorded; start afresh
            self.pool = self._new_pool()
            fut = self.pool.submit(execute_stage, stage, self.cpus, device)
        if device != "cpu":
            self.placed[fut] = device
        return fut

    def wait(self, handles: list[Future]) -> list[tuple[Future, dict[str, Any]]]:
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        results = []
        for fut in done:
            if fut in self.placed:
                self.gpus.release(self.placed.pop(fut))
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
    """Each stage is a Ray task declaring `cpus_per_run` CPUs, and pretrain / finetune stages also
    `gpus_per_run` GPUs (Ray makes the granted GPU the task's cuda:0); Ray places it on the cluster."""

    def __init__(self, address: str | None, cpus_per_run: int, init_kwargs: dict[str, Any] | None = None,
                 gpus_per_run: float = 0.0):
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **(init_kwargs or {}))
        self.ray = ray
        self.remote = ray.remote(num_cpus=cpus_per_run, max_retries=0)(execute_stage)
        self.remote_gpu = (ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_stage)
                           if gpus_per_run > 0 else None)
        self.cpus = cpus_per_run
        self.capacity = None  # Ray schedules (and an autoscaling cluster grows) on its own

    def submit(self, stage: Stage) -> Any:
        if self.remote_gpu is not None and stage.uses_device:
            return self.remote_gpu.remote(stage, self.cpus, "cuda")
        return self.remote.remote(stage, self.cpus, "cpu")

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


def launch_priority(stage: Stage) -> tuple[int, int]:
    """Downstream kinds first, so finished branches complete (eval after its pretrain) before new branches
    start; then lower seeds first, so a grid stopped part-way holds every method at its first seeds (a
    complete comparison) rather than every seed of its first method. Ties keep the plan's order."""
    kind = -KINDS.index(stage.kind) if stage.kind in KINDS else 0
    return kind, stage.params.get("seed", 0)


def standing(stages: list[Stage]) -> list[str]:
    """The stages whose results stand, in the order given: complete (`stage_complete`), after stages that all stand
    too (a stage after one that runs again, such as the final evaluation of a run whose budget grew, runs again).
    `stages` carry their `dep_dirs` (`plan_sweep` and `run_stages` fill them)."""
    stand: dict[str, None] = {}  # ordered set
    growing = True
    while growing:
        growing = False
        for s in stages:
            if s.name not in stand and all(d in stand for d in s.deps) and stage_complete(s):
                stand[s.name] = None
                growing = True
    return list(stand)


def refills(by_name: dict[str, Stage], stand: list[str]) -> set[str]:
    """The standing stages restored from a sweep record without their artifacts (`record.missing`) that a stage still
    to run needs, directly or through another such stage: they run again to refill them (`worker.execute_stage`)."""
    stand_set, out = set(stand), set()
    todo = [d for s in by_name.values() if s.name not in stand_set for d in s.deps]
    while todo:
        name = todo.pop()
        if name in stand_set and name not in out and record.missing(by_name[name].dir):
            out.add(name)
            todo += by_name[name].deps
    return out


def run_stages(stages: list[Stage], backend: Backend, on_event: Callable[[str, str, dict], None] | None = None) -> SweepResult:
    """Run every stage of the DAG on `backend`; `on_event(kind, name, result)` reports progress."""
    by_name = {s.name: s for s in stages}
    for s in stages:
        missing = [d for d in s.deps if d not in by_name]
        if missing:
            raise ValueError(f"stage {s.name} depends on unknown stage(s) {missing}")
    by_name = {s.name: s for s in with_dep_dirs(stages)}
    on_event = on_event or (lambda *a: None)
    result = SweepResult()
    finished: set[str] = set()
    pending = dict(by_name)
    stand = standing(list(by_name.values()))
    refill = refills(by_name, stand)
    for name in (n for n in stand if n not in refill):
        finished.add(name)
        result.skipped.append(name)
        del pending[name]
        on_event("skipped", name, {})
    running: dict[Any, str] = {}

    capacity = getattr(backend, "capacity", None)

    def launch_ready() -> None:
        ready = [s for s in pending.values() if all(d in finished for d in s.deps)]
        # Only as many as the backend runs at once, so "started" means started and a stage that becomes
        # ready later is not queued behind every stage submitted before it.
        free = len(ready) if capacity is None else max(capacity - len(running), 0)
        for s in sorted(ready, key=launch_priority)[:free]:
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
