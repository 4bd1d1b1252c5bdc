"""The task spec a policy needs: its cameras, its task-conditioning keys, and exactly its obs keys.

`spec_for_policy(spec, policy)` is what eval and finetuning build envs from:
- a multi-task policy (one trained on demos that record their `task`) gets an env that draws
  episodes only from the tasks it was trained on, and that adds every per-task key the env cannot
  compute itself (an embedding made elsewhere, `postbc.data.task_keys`) from the policy's table;
  a single-task env, or one lacking a trained task, is refused by name;
- image keys bring their cameras, and a policy on a subset of the env's keys sees just those
  (`postbc.envs.cameras.spec_for_obs_keys`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

from postbc.envs.cameras import spec_for_obs_keys
from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError


def with_task_conditioning(spec: TaskSpec, obs_keys: Sequence[str], table: Mapping[str, Mapping[str, Sequence[float]]],
                           tasks: Sequence[str]) -> TaskSpec:
    """`spec` whose episodes draw from `tasks` and whose observations add the keys of `table` it lacks."""
    tasks = tuple(tasks)
    if not tasks:
        return spec
    if not spec.tasks:
        raise PostBCError(f"the policy is multi-task (trained on {', '.join(tasks)}) and task '{spec.name}' is a single "
                          "task; evaluate or finetune it on the multi-task env it was trained on (e.g. mt10)")
    unknown = [t for t in tasks if t not in spec.tasks]
    if unknown:
        raise PostBCError(f"the policy was trained on task(s) {', '.join(unknown)} that '{spec.name}' does not have "
                          f"(its tasks: {', '.join(spec.tasks)})")
    injected = {k: {t: list(v) for t, v in table[k].items()} for k in obs_keys if k not in spec.obs_keys and k in table}
    dims = tuple(len(next(iter(vectors.values()))) for vectors in injected.values())
    return dataclasses.replace(
        spec,
        obs_keys=spec.obs_keys + tuple(injected),
        obs_dims=spec.obs_dims + dims,
        make=functools.partial(spec.make, conditioning=injected or None, episode_tasks=tasks),
        tasks=tasks,
    )


def spec_for_policy(spec: TaskSpec, policy: Any) -> TaskSpec:
    """The spec to build `policy`'s envs from (module docstring); `policy` may be a finetuned one on a base."""
    inner = getattr(policy, "base", policy)
    spec = with_task_conditioning(spec, policy.obs_keys, getattr(inner, "task_table", {}) or {},
                                  getattr(inner, "tasks", ()) or ())
    return spec_for_obs_keys(spec, policy.obs_keys, getattr(policy, "obs_dims", ()) or ())
