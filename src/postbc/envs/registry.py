"""The task registry: one name per task, the env it builds, and what its data must look like.

Every registered env follows the gymnasium API (`reset(seed=)`, 5-tuple `step`) with
- observations: a dict of low-dim arrays, keys `spec.obs_keys` (flattened in that order by
  `flatten_obs` for policies and RL),
- actions: a Box in [-1, 1]^act_dim,
- reward 1.0 on the step the task is solved, else 0.0; `info["success"]` on every step;
  `terminated` once solved, `truncated` at `spec.horizon`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from postbc.errors import PostBCError


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str  # "toy" | "robosuite" | "metaworld"
    obs_keys: tuple[str, ...]
    obs_dims: tuple[int, ...]
    act_dim: int
    horizon: int
    make: Callable[..., Any]  # make(seed: int | None = None, **kwargs) -> gymnasium.Env
    env_args: Mapping[str, Any]  # robomimic-style {"env_name", "type", "env_kwargs"} written into datasets
    description: str = ""
    in_process: bool = False  # a step costs less than a pipe round trip: VectorEnv "auto" keeps these envs in-process
    tasks: tuple[str, ...] = ()  # a multi-task env's tasks (its info["task"] names the episode's); () for one task
    instructions: Mapping[str, str] = dataclasses.field(default_factory=dict)  # task -> instruction (demos record it)

    @property
    def obs_dim(self) -> int:
        return int(sum(self.obs_dims))


_TASKS: dict[str, TaskSpec] = {}
_LOADERS: list[Callable[[], None]] = []


def register(spec: TaskSpec) -> TaskSpec:
    _TASKS[spec.name] = spec
    return spec


def register_loader(loader: Callable[[], None]) -> None:
    """A function that registers a family of tasks when first needed (keeps imports of simulators lazy)."""
    _LOADERS.append(loader)


def _load_all() -> None:
    while _LOADERS:
        _LOADERS.pop(0)()


def task_names() -> list[str]:
    _load_all()
    return sorted(_TASKS)


def get_task(name: str) -> TaskSpec:
    if name not in _TASKS:
        _load_all()
    if name not in _TASKS:
        raise PostBCError(unknown_task_message(name))
    return _TASKS[name]


def unknown_task_message(name: str) -> str:
    """'unknown task', the closest names, and the known tasks grouped by family (not 50 Meta-World names)."""
    import difflib

    names = task_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    families: dict[str, list[str]] = {}
    for n in names:
        families.setdefault(_TASKS[n].family, []).append(n)
    listed = []
    for family, members in families.items():
        if family == "metaworld":
            single = [m for m in members if not _TASKS[m].tasks]
            listed.append(f"mw-<name> for the {len(single)} Meta-World MT1 tasks (e.g. mw-pick-place)")
            listed += [m for m in members if _TASKS[m].tasks]
        else:
            listed += members
    return f"unknown task '{name}'{hint or '.'} Known tasks: {', '.join(listed)}"


def make_env(name: str, seed: int | None = None, **kwargs: Any):
    return get_task(name).make(seed=seed, **kwargs)


def flatten_obs(obs: Mapping[str, np.ndarray], keys: tuple[str, ...]) -> np.ndarray:
    """Concatenate the named obs parts along the last axis, in the given order, as float32.

    Works for one observation (parts of shape (d,)) and for a batch (parts of shape (B, d)). Image
    parts, (H, W, C) or (B, H, W, C), are flattened to H * W * C values (postbc.envs.cameras).
    """
    missing = [k for k in keys if k not in obs]
    if missing:
        raise PostBCError(f"observation lacks key(s) {missing}; it has {sorted(obs)}")
    return np.concatenate([_flat_part(np.asarray(obs[k], dtype=np.float32)) for k in keys], axis=-1)


def key_slices(keys: Sequence[str], dims: Sequence[int]) -> list[tuple[str, slice]]:
    """Where each key's values lie in an observation `flatten_obs` made from `keys` with sizes `dims`."""
    out, start = [], 0
    for key, dim in zip(keys, dims):
        out.append((key, slice(start, start + int(dim))))
        start += int(dim)
    return out


def _flat_part(part: np.ndarray) -> np.ndarray:
    if part.ndim >= 3:  # an image: low-dim parts are (d,) or (B, d)
        return part.reshape(part.shape[:-3] + (-1,))
    return np.atleast_1d(part)


# Lazy loaders: a family's module is imported (and registers its tasks) only when a task is looked up.
from importlib import import_module  # noqa: E402

register_loader(lambda: import_module("postbc.envs.robosuite_tasks").register_robosuite_tasks())
register_loader(lambda: import_module("postbc.envs.metaworld_tasks").register_metaworld_tasks())
register_loader(lambda: import_module("postbc.envs.metaworld_multitask").register_mt10())
register_loader(lambda: import_module("postbc.envs.toy"))
