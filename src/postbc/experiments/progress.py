"""How far a sweep has got, and what its remaining stages should cost: `postbc sweep --dry-run`'s progress.

A started stage says whether a worker on this machine runs it now (its lock is held) or it was stopped, and how far
it has logged against its budget (env steps, IQL updates, epochs of the policy or of PostBC's ensemble). The
estimate of the rest prices each stage still to run at the mean CPU time of the finished stages like it (same kind,
algorithm and method: PostBC's pretraining costs several times BC's), else of those of its kind and algorithm with
other methods (said how many: a PostBC pretraining priced from BC's is priced low), a started finetuning run at the
share of its budget still ahead. A stage that runs again is priced from its own finished run where it can be: a
refill (restored from a sweep record without its artifacts) or a stage whose inputs changed at what it cost, a
finetuning run whose budget grew at its cost scaled to the new budget (the whole of it when it starts clean, the added share when it continues from its
checkpoints). Stages with nothing finished of their kind are counted and left out of the sum.
Two lower bounds on the wall time follow: the sum divided by the workers, and the longest chain of priced stages
still to run that wait on each other (pretraining, then finetuning, then its final evaluation), which no number of
workers shortens: what a Ray cluster with a core per run would take.
"""

from __future__ import annotations

import dataclasses
import fcntl
import math
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from postbc.experiments import markers, record
from postbc.experiments.plan import Stage, grown_budgets
from postbc.experiments.results import Run, run_cpu, x_key
from postbc.io.runs import read_metrics
from postbc.pretrain.command import ENSEMBLE_LOG


def cost_key(stage: Stage) -> tuple[str, str, str]:
    return stage.kind, stage.params.get("algo", ""), stage.params.get("method", "")


@dataclasses.dataclass(frozen=True)
class Logged:
    """The budgeted count a started stage logged last, e.g. 80000 of 200000 env steps."""

    what: str  # "env steps", "updates" (Best-of-N's IQL), "epochs" (the policy's), "ensemble epochs"
    at: float
    budget: int
    path: Path  # the metrics file it was read from

    @property
    def share(self) -> float:
        return min(1.0, self.at / self.budget)


# kind -> (directory under the stage's, count column or None for the curve's x, budget option); a pretraining run
# trains PostBC's ensemble first, then the policy, so the policy's log is read first
LOGS = {
    "finetune": ((".", None, "steps"),),
    "pretrain": ((".", "epoch", "epochs"), (ENSEMBLE_LOG, "epoch", "ensemble_epochs")),
}


def last_logged(stage: Stage) -> Logged | None:
    """A finetuning run's env steps (Best-of-N: IQL updates) of its `steps`; a pretraining run's policy epochs of its
    `epochs`, or before it has any, its ensemble's epochs of `ensemble_epochs`; None when nothing is logged yet."""
    for sub, column, budget_key in LOGS.get(stage.kind, ()):
        budget = stage.config.get(budget_key)
        metrics = read_metrics(stage.dir / sub) if budget and (stage.dir / sub / "metrics.csv").exists() else []
        if metrics:
            key = column or x_key(metrics)
            what = ("epochs" if key == "epoch" else key.replace("_", " "))
            what = "ensemble " + what if sub == ENSEMBLE_LOG else what
            return Logged(what, float(metrics[-1].get(key) or 0.0), budget, stage.dir / sub / "metrics.csv")
    return None


def running(stage: Stage) -> bool:
    """Whether a process on this machine holds the stage's lock (a sweep's worker runs it now); a started stage
    that nobody holds was stopped and resumes when a sweep runs it again."""
    lock = stage.dir / ".lock"
    if not lock.exists():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def describe(stage: Stage, now: float | None = None) -> str:
    """A started stage's state and progress, e.g. "running; 80000 / 200000 env steps, logged 3 min ago"."""
    state = "running" if running(stage) else "stopped"
    logged = last_logged(stage)
    if logged is None:
        return state
    age = ((now or time.time()) - logged.path.stat().st_mtime) / 60
    return f"{state}; {logged.at:.0f} / {logged.budget} {logged.what}, logged {age:.0f} min ago"


def finished_cpu(stage: Stage, record_dir: Path | None = None) -> float:
    """CPU seconds of a finished stage (`results.run_cpu`), read from its directory or its record; NaN if unknown."""
    for where in [stage.dir] + ([record_dir / stage.name] if record_dir is not None else []):
        done = markers.read_marker(where, markers.DONE)
        if done is not None and done.get("wall_time_s") is not None:
            run = Run(dataclasses.replace(stage, dir=where), "done", None, read_metrics(where))
            return run_cpu(done, run)
    return math.nan


@dataclasses.dataclass
class Estimate:
    cpu_s: float  # CPU seconds of the priced stages still to run
    priced: int
    from_other_methods: int  # of those, priced from finished stages of other methods
    unpriced: int  # stages still to run with no finished stage of their kind and algorithm
    chain_s: float = 0.0  # the longest chain of priced stages still to run, each waiting on the one before

    def line(self, workers: int) -> str:
        to_run = self.priced + self.unpriced
        if not to_run:
            return "nothing to run"
        text = f"{to_run} stage(s) to run"
        if self.priced:
            text += f": {self.priced} priced at about {self.cpu_s / 3600:.1f} CPU-h"
            if self.from_other_methods:
                text += f" ({self.from_other_methods} from other methods' runs)"
            wall = max(self.cpu_s / workers, self.chain_s)
            text += (f", at least {wall / 3600:.1f} h of wall on {workers} worker(s) and {self.chain_s / 3600:.1f} h "
                     "on any number (the longest chain of stages that wait on each other)")
        if self.unpriced:
            text += f"; {self.unpriced} not priced (nothing of their kind and algorithm finished yet)"
        return text


def estimate(stages: list[Stage], status: dict[str, str], record_dir: Path | None = None) -> Estimate:
    """What the stages whose `status` is not done should cost, from those that are (`status`: name -> the
    dry run's status, "done" and "recorded" meaning finished)."""
    finished = {"done", "recorded"}
    by_method: dict[tuple, list[float]] = defaultdict(list)  # cost_key -> CPU seconds
    by_algo: dict[tuple, list[float]] = defaultdict(list)  # (kind, algo) -> CPU seconds, every method
    for s in stages:
        if status[s.name] in finished:
            cpu = finished_cpu(s, record_dir)
            if np.isfinite(cpu):
                by_method[cost_key(s)].append(cpu)
                by_algo[cost_key(s)[:2]].append(cpu)
    price: dict[str, float] = {}  # stage name -> CPU seconds still ahead of it
    other, unpriced = 0, 0
    for s in stages:
        if status[s.name] in finished:
            continue
        own = rerun_price(s, status[s.name], record_dir)
        if np.isfinite(own):
            price[s.name] = own
            continue
        known = by_method.get(cost_key(s)) or by_algo.get(cost_key(s)[:2])
        if not known:
            unpriced += 1
            continue
        other += cost_key(s) not in by_method
        # a started pretraining run is priced whole: its ensemble's and its policy's epochs cost differently
        logged = last_logged(s) if status[s.name] == "started" and s.kind == "finetune" else None
        price[s.name] = float(np.mean(known)) * (1.0 - (logged.share if logged else 0.0))
    return Estimate(sum(price.values()), len(price), other, unpriced, longest_chain(stages, price))


def rerun_price(stage: Stage, state: str, record_dir: Path | None = None) -> float:
    """CPU seconds of a finished stage that runs again, from its own run (NaN when it has none): what it cost (a
    `refill`, or a `redo` because what it read changed: the same work again); a `redo` whose budget grew
    (`Stage.extendable`) its cost times new / old budget when it starts clean (restored from a record, without its
    checkpoints), times (new - old) / old when it continues from them."""
    if state not in ("refill", "redo"):
        return math.nan
    cpu = finished_cpu(stage, record_dir)
    if state == "refill" or not np.isfinite(cpu):
        return cpu
    grown = grown_budgets(stage, (markers.read_marker(stage.dir, markers.DONE) or {}).get("config", {}))
    if not grown or grown[0][0] <= 0:
        return cpu
    old, new = grown[0]
    return cpu * (new if record.missing(stage.dir) else new - old) / old


def longest_chain(stages: list[Stage], price: dict[str, float]) -> float:
    """The most CPU seconds along one path of dependencies, counting each stage at its `price` (finished and unpriced
    stages at 0): a lower bound on the wall time however many workers run the rest."""
    by_name = {s.name: s for s in stages}
    ends: dict[str, float] = {}  # stage name -> the earliest its chain can end

    def end(name: str) -> float:
        if name not in ends:
            deps = [d for d in by_name[name].deps if d in by_name]
            ends[name] = price.get(name, 0.0) + max((end(d) for d in deps), default=0.0)
        return ends[name]

    return max((end(s.name) for s in stages), default=0.0)
