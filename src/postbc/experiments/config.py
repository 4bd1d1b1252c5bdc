"""The sweep config file: the grid of experiments and the budget of every stage.

A JSON or TOML file maps onto `SweepConfig`. Pretrain and finetune options are passed through
to `PretrainConfig` / `FinetuneConfig` fields (checked against them when the file is loaded, so
a typo fails before any run starts); `task_overrides` replaces some of them for one task (the
paper uses other widths and noise weights per task). Unknown keys are refused by name.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

from postbc.errors import PostBCError
from postbc.finetune.config import ALGOS  # neither import loads torch
from postbc.io.config import from_jsonable, require_choice, require_positive
from postbc.pretrain.command import METHODS

# Fields the sweep sets itself for each stage; a budget may not set them.
PRETRAIN_OWNED = ("method", "dataset", "out", "seed", "quiet")
FINETUNE_OWNED = ("checkpoint", "task", "out", "algo", "seed", "quiet")


@dataclasses.dataclass
class GridConfig:
    """The cross product of runs: tasks x demos x methods x algos x seeds."""

    tasks: list[str]
    """registered task names."""
    demos: list[int] | dict[str, list[int]]
    """demos per dataset: a list for every task, or a table of lists per task (the paper: 5 Lift, 10 Can, 30 Square)."""
    methods: list[str]
    """pretraining methods: bc, sigma_bc, postbc."""
    algos: list[str] = dataclasses.field(default_factory=list)
    """finetuning algorithms (dsrl, dsrl_na, dppo, best_of_n); empty = pretrain and evaluate only."""
    seeds: list[int] = dataclasses.field(default_factory=lambda: [0])
    """one pretrained policy per seed, finetuned once per algorithm with the same seed."""
    data_seed: int = 0
    """seed of demo collection: every method and seed sees the same demos (as in the paper)."""

    def __post_init__(self) -> None:
        if isinstance(self.demos, dict):
            for task in self.demos:
                require_choice("grid.demos key", task, self.tasks)
            missing = [t for t in self.tasks if t not in self.demos]
            if missing:
                raise ValueError(f"grid.demos has no demo counts for task(s) {missing}")
        lists = {"tasks": self.tasks, "methods": self.methods, "seeds": self.seeds}
        lists.update({f"demos.{t}": d for t, d in self.demos.items()} if isinstance(self.demos, dict) else {"demos": self.demos})
        for name, values in lists.items():
            if not values:
                raise ValueError(f"grid.{name} is empty; list at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"grid.{name}={values} lists a value twice")
        for m in self.methods:
            require_choice("grid.methods[]", m, METHODS)
        for a in self.algos:
            require_choice("grid.algos[]", a, ALGOS)
        for task in self.tasks:
            for d in self.demos_for(task):
                require_positive("grid.demos[]", d)

    def demos_for(self, task: str) -> list[int]:
        return self.demos[task] if isinstance(self.demos, dict) else self.demos


@dataclasses.dataclass
class CollectBudget:
    operator: str = "mixed"
    """scripted operator of `postbc collect`."""
    max_attempts: int | None = None
    """give up after this many episodes (default: collect's own)."""
    hold_steps: int = 0
    """demos go on until the task has stayed solved this many steps after the first solved one (robosuite's own
    collection: 10); 0: they end at the first solved step (`postbc collect --hold-steps`)."""


@dataclasses.dataclass
class EvalBudget:
    episodes: int = 50
    """evaluation episodes of each pretrained policy (paper: 200)."""
    num_envs: int = 1
    """parallel envs of that evaluation."""
    seed: int = 1000
    """evaluation seed (the same episodes for every policy)."""
    final_episodes: int = 0
    """evaluation episodes of every finished finetuned policy (its served policy; paper: 200), with the same seed,
    so its first `episodes` episodes are the pretrained evaluation's; 0: none (the report then reads the runs' own
    last evaluation only)."""

    def __post_init__(self) -> None:
        require_positive("evaluate.episodes", self.episodes)
        require_positive("evaluate.num_envs", self.num_envs)
        require_positive("evaluate.final_episodes", self.final_episodes, allow_zero=True)


@dataclasses.dataclass
class TaskOverride:
    pretrain: dict[str, Any] = dataclasses.field(default_factory=dict)
    finetune: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class SweepConfig:
    """A sweep: its grid and the options of every stage."""

    grid: GridConfig
    name: str = "sweep"
    """a label shown in the report."""
    collect: CollectBudget = dataclasses.field(default_factory=CollectBudget)
    evaluate: EvalBudget = dataclasses.field(default_factory=EvalBudget)
    pretrain: dict[str, Any] = dataclasses.field(default_factory=dict)
    """PretrainConfig options for every pretraining run (e.g. epochs, hidden, alpha)."""
    finetune: dict[str, Any] = dataclasses.field(default_factory=dict)
    """FinetuneConfig options for every finetuning run (e.g. steps, eval_every, sac = {...})."""
    algo_overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """per finetuning algorithm: finetune options that replace the common ones (e.g. best_of_n's `steps`
    count IQL gradient steps, not env steps). A task override wins over an algorithm override."""
    task_overrides: dict[str, TaskOverride] = dataclasses.field(default_factory=dict)
    """per task: pretrain / finetune options that replace the common ones."""

    def __post_init__(self) -> None:
        for task in self.task_overrides:
            require_choice("task_overrides key", task, self.grid.tasks)
        for algo in self.algo_overrides:
            require_choice("algo_overrides key", algo, self.grid.algos)
        self.task_overrides = {t: o if isinstance(o, TaskOverride) else _build(TaskOverride, o, f"task_overrides.{t}")
                               for t, o in self.task_overrides.items()}
        for where, options in [("pretrain", self.pretrain), *((f"task_overrides.{t}.pretrain", o.pretrain)
                                                              for t, o in self.task_overrides.items())]:
            _check_passthrough(where, options, "postbc.pretrain.command", "PretrainConfig", PRETRAIN_OWNED)
        for where, options in [("finetune", self.finetune),
                               *((f"algo_overrides.{a}", o) for a, o in self.algo_overrides.items()),
                               *((f"task_overrides.{t}.finetune", o.finetune) for t, o in self.task_overrides.items())]:
            _check_passthrough(where, options, "postbc.finetune.config", "FinetuneConfig", FINETUNE_OWNED)

    def pretrain_options(self, task: str) -> dict[str, Any]:
        override = self.task_overrides.get(task)
        return {**self.pretrain, **(override.pretrain if override else {})}

    def finetune_options(self, task: str, algo: str) -> dict[str, Any]:
        """The finetune options of one stage; the options sections of other algorithms (a grid's shared
        [finetune.sac] for its Best-of-N stages, say) are left out, as `postbc finetune` refuses them."""
        from postbc.finetune.config import ALGO_SECTION

        override = self.task_overrides.get(task)
        merged = _merge(_merge(self.finetune, self.algo_overrides.get(algo, {})), override.finetune if override else {})
        foreign = set(ALGO_SECTION.values()) - {ALGO_SECTION[algo]}
        return {k: v for k, v in merged.items() if k not in foreign}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Nested tables (e.g. `sac`) are merged key by key, so an override can change one SAC option."""
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _check_passthrough(where: str, options: dict[str, Any], module: str, cls_name: str, owned: tuple[str, ...]) -> None:
    import importlib

    cls = getattr(importlib.import_module(module), cls_name)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in options:
        if key in owned:
            raise ValueError(f"{where}.{key} is set by the sweep itself (from the grid); remove it from the file")
        if key not in fields:
            allowed = ", ".join(sorted(fields - set(owned)))
            raise ValueError(f"{where}.{key} is not a {cls_name} option; allowed: {allowed}")


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table of options, got {data!r}")
    try:
        return from_jsonable(cls, data)
    except TypeError as e:  # a required field is missing
        raise ValueError(f"{where}: {e}") from e


def parse_sweep_config(data: dict[str, Any], source: str = "sweep config") -> SweepConfig:
    """Build and validate a `SweepConfig` from parsed JSON / TOML; errors name `source` and the key."""
    if "grid" not in data:
        raise PostBCError(f"{source}: the [grid] table is missing; it needs tasks, demos and methods")
    try:
        return _build(SweepConfig, data, "sweep")
    except ValueError as e:
        raise PostBCError(f"{source}: {e}") from e


def load_sweep_config(path: Path) -> SweepConfig:
    path = Path(path)
    if not path.exists():
        raise PostBCError(f"sweep config {path} does not exist; see configs/ for examples")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            raise PostBCError(f"sweep config {path}: unknown format '{path.suffix}'; use a .toml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise PostBCError(f"sweep config {path} does not parse: {e}") from e
    return parse_sweep_config(data, str(path))
