"""Which scripted experts exist for which task, found without importing every simulator.

An expert module registers its operators with `register_expert(task, operators, make)`.
`get_expert(task, operator)` imports `postbc.experts.<family>` or, failing that,
`postbc.experts.<family>_experts` (the task's family: `toy`, `robosuite`, `metaworld`) the first
time a task of that family is asked for, so adding a family means adding that module;
`register_expert_loader` covers experts living elsewhere.
Every task also gets the operator "mixed": a different registered operator, drawn uniformly,
for each episode (like robomimic's multi-human datasets).
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping, Sequence

import numpy as np

from postbc.errors import PostBCError
from postbc.experts.base import Expert

MIXED = "mixed"

_EXPERTS: dict[str, tuple[tuple[str, ...], Callable[[str], Expert]]] = {}
_LOADERS: list[Callable[[], None]] = []


def register_expert(task: str, operators: Sequence[str], make: Callable[[str], Expert]) -> None:
    """`make(operator)` builds an expert for `task`; `operators` lists the names it accepts."""
    if MIXED in operators:
        raise ValueError(f"operator name '{MIXED}' is reserved for the mixture of all operators")
    _EXPERTS[task] = (tuple(operators), make)


def register_expert_loader(loader: Callable[[], None]) -> None:
    _LOADERS.append(loader)


def _load(task: str) -> None:
    while _LOADERS and task not in _EXPERTS:
        _LOADERS.pop(0)()
    if task in _EXPERTS:
        return
    from postbc.envs.registry import get_task

    family = get_task(task).family
    for module in (f"postbc.experts.{family}", f"postbc.experts.{family}_experts"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
        if task in _EXPERTS:
            return


def expert_operators(task: str) -> list[str]:
    """The operator names `get_expert` accepts for `task` ("mixed" last)."""
    _load(task)
    if task not in _EXPERTS:
        raise PostBCError(f"task '{task}' has no scripted expert; tasks with experts: {', '.join(sorted(_EXPERTS)) or 'none'}")
    return [*_EXPERTS[task][0], MIXED]


def get_expert(task: str, operator: str = MIXED) -> Expert:
    operators = expert_operators(task)
    if operator not in operators:
        raise PostBCError(f"task '{task}' has no operator '{operator}'; choose one of: {', '.join(operators)}")
    names, make = _EXPERTS[task]
    if operator == MIXED:
        return MixedExpert({name: make(name) for name in names})
    return make(operator)


class MixedExpert:
    """Each episode, one of several experts drawn uniformly; `operator` names the one drawn."""

    def __init__(self, experts: Mapping[str, Expert]):
        if not experts:
            raise ValueError("a mixture needs at least one expert")
        self.experts = dict(experts)
        self.current: Expert = next(iter(self.experts.values()))
        self.operator = self.current.operator

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None:
        names = list(self.experts)
        self.current = self.experts[names[int(rng.integers(len(names)))]]
        self.operator = self.current.operator
        self.current.reset(rng, obs)

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.current.act(obs)

    def hold(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.current.hold(obs)


def can_hold(expert: Expert) -> bool:
    """Whether `expert` (every expert of a mixture) can keep a solved task solved (`hold`, for `--hold-steps`)."""
    inner = expert.experts.values() if isinstance(expert, MixedExpert) else [expert]
    return all(callable(getattr(e, "hold", None)) for e in inner)
