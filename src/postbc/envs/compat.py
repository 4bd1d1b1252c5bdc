"""Does a dataset (or a policy made from one) fit a task? One check, one error naming both sides."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError

# env_kwargs that change neither what an action does nor what is observed.
IRRELEVANT_ENV_KWARGS = frozenset(
    {"task", "horizon", "has_renderer", "has_offscreen_renderer", "render", "image_size", "camera", "ignore_done",
     "hard_reset"}
)


def check_dataset_matches_task(
    env_args: Mapping[str, Any] | None,
    obs_keys: Sequence[str],
    act_dim: int,
    spec: TaskSpec,
    *,
    obs_dims: Sequence[int] | None = None,
    source: str = "dataset",
) -> None:
    """Refuse data made for another task: other env, other env settings, other obs keys, sizes or action size.

    `env_args` is the robomimic-style dict stored with the data (`env_name`, `type`, `env_kwargs`);
    settings that only concern rendering or episode length are not compared. `source` names the
    data in the message (e.g. the file path).
    """
    problems = []
    if env_args:
        problems += _env_problems(env_args, spec)
    keys, task_keys = list(obs_keys), list(spec.obs_keys)
    if set(keys) != set(task_keys):
        missing = [k for k in task_keys if k not in keys]
        extra = [k for k in keys if k not in task_keys]
        problems.append(f"obs keys: {source} {keys}, task {task_keys} (missing {missing}, extra {extra})")
    elif obs_dims is not None:
        mine = dict(zip(keys, map(int, obs_dims)))
        theirs = dict(zip(task_keys, spec.obs_dims))
        diff = {k: (mine[k], theirs[k]) for k in task_keys if mine[k] != theirs[k]}
        if diff:
            problems.append("obs sizes: " + ", ".join(f"{k} {source} {a} vs task {b}" for k, (a, b) in diff.items()))
    if int(act_dim) != spec.act_dim:
        problems.append(f"action dim: {source} {act_dim}, task {spec.act_dim}")
    if problems:
        raise PostBCError(
            f"{source} does not fit task '{spec.name}': " + "; ".join(problems)
            + f". Use data / a policy made for '{spec.name}', or pick the task it was made for"
        )


def _env_problems(env_args: Mapping[str, Any], spec: TaskSpec) -> list[str]:
    problems = []
    kwargs = env_args.get("env_kwargs") or {}
    task = kwargs.get("task")
    if task is not None and task != spec.name:
        problems.append(f"task: data made for '{task}'")
    family = env_args.get("type")
    if isinstance(family, str) and family != spec.family:
        problems.append(f"env type: data '{family}', task '{spec.family}'")
    name = env_args.get("env_name")
    if name is not None and name != spec.env_args.get("env_name"):
        problems.append(f"env_name: data '{name}', task '{spec.env_args.get('env_name')}'")
    ours = spec.env_args.get("env_kwargs", {})
    for key in sorted(set(ours) & set(kwargs) - IRRELEVANT_ENV_KWARGS):
        diff = _first_difference(kwargs[key], ours[key], f"env_kwargs['{key}']")
        if diff:
            path, theirs, mine = diff
            problems.append(f"{path}: data {_short(theirs)}, task {_short(mine)}")
    return problems


def _first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    """The first place where two JSON-like values differ, as (path, a's value, b's value)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}['{key}']", a.get(key, "<absent>"), b.get(key, "<absent>")
            diff = _first_difference(a[key], b[key], f"{path}['{key}']")
            if diff:
                return diff
        return None
    return None if _canonical(a) == _canonical(b) else (path, a, b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _short(value: Any, limit: int = 120) -> str:
    text = _canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
