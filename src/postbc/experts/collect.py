"""Roll out a scripted expert in a registered task and append its successful episodes to a dataset.

Reproducible: attempt i resets the env with a seed and gives the expert a generator both drawn
from `seed`, so the same (task, operator, seed, episodes) gives the same file. Every demo records
its `operator`, the env `seed` it was reset with and its `attempt` number.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from postbc.data.robomimic import Demo, DemoWriter
from postbc.envs.cameras import is_image_key, with_cameras
from postbc.envs.registry import TaskSpec, get_task
from postbc.errors import PostBCError
from postbc.experts.base import Expert
from postbc.experts.registry import can_hold, get_expert
from postbc.utils import progress


@dataclasses.dataclass
class CollectResult:
    path: Path
    demos: int  # successful episodes written
    attempts: int  # episodes rolled out (failed ones are not written)
    operators: dict[str, int]  # demos per operator

    @property
    def expert_success_rate(self) -> float:
        return self.demos / self.attempts if self.attempts else 0.0


def rollout(env, expert: Expert, spec: TaskSpec, env_seed: int, rng: np.random.Generator,
            task: str | None = None, hold_steps: int = 0) -> tuple[Demo, bool]:
    """One episode of `expert` in `env` (of `task`, for a multi-task env); the demo and whether it succeeded.

    `hold_steps` > 0: after the first solved step the expert holds (`expert.hold`) and the demo ends once the task
    has stayed solved for that many more steps, as robosuite's demonstration collection records 10 (its
    `task_completion_hold_count`); a success lost meanwhile sends the expert back to work and the count restarts,
    and an episode whose hold the horizon cuts short is a failure. 0: the demo ends at the first solved step."""
    obs, _ = env.reset(seed=env_seed, options={"task": task} if task is not None else None)
    expert.reset(rng, obs)
    steps: dict[str, list] = {"obs": [], "next_obs": [], "actions": [], "rewards": [], "dones": []}
    success, held = False, -1  # held: solved steps since the first of the current run of them
    for _ in range(spec.horizon):
        action = np.asarray(expert.hold(obs) if held >= 0 else expert.act(obs), dtype=np.float32)
        next_obs, reward, terminated, truncated, info = env.step(action)
        solved = bool(info.get("success", False))
        held = held + 1 if solved else -1
        success = solved and held >= hold_steps
        steps["obs"].append(obs)
        steps["next_obs"].append(next_obs)
        steps["actions"].append(action)
        steps["rewards"].append(float(reward))
        steps["dones"].append(bool(terminated))
        obs = next_obs
        if success or truncated or (terminated and not solved):
            break

    def stack(frames: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        return {k: np.stack([np.asarray(f[k], dtype=np.uint8 if is_image_key(k) else np.float32) for f in frames])
                for k in spec.obs_keys}

    demo = Demo(
        obs=stack(steps["obs"]),
        next_obs=stack(steps["next_obs"]),
        actions=np.stack(steps["actions"]),
        rewards=np.asarray(steps["rewards"], dtype=np.float32),
        dones=np.asarray(steps["dones"], dtype=np.int64),
        attrs={"operator": expert.operator, "seed": int(env_seed), **({"task": task} if task is not None else {}),
               **({"instruction": spec.instructions[task]} if task in spec.instructions else {})},
    )
    return demo, success


def collect(
    task: str,
    episodes: int,
    out: Path,
    seed: int = 0,
    *,
    operator: str = "mixed",
    overwrite: bool = False,
    max_attempts: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    cameras: Sequence[str] = (),
    image_size: int = 84,
    hold_steps: int = 0,
    quiet: bool = False,
) -> CollectResult:
    """Write `episodes` successful demos of `task` to `out` (robomimic HDF5), one at a time.

    Failed episodes are dropped; after `max_attempts` rollouts (default 2 * episodes + 10) without
    enough successes, collection stops with an error and the file keeps the demos written so far.
    Each demo is listed under the filter key `operator_<name>`. A multi-task env (`spec.tasks`, e.g.
    mt10) gets `episodes` demos of each of its tasks, each recording its `task` (attribute and
    filter key `task_<name>`), with `max_attempts` per task. `cameras` adds each camera's view,
    `image_size` pixels square, as uint8 key `<camera>_image` (postbc.envs.cameras). `hold_steps`: see `rollout`.
    """
    if episodes <= 0:
        raise PostBCError(f"episodes={episodes} must be > 0")
    if hold_steps < 0:
        raise PostBCError(f"hold_steps={hold_steps} must be >= 0")
    spec = with_cameras(get_task(task), cameras, image_size)
    expert = get_expert(task, operator)
    if hold_steps and not can_hold(expert):
        raise PostBCError(f"the '{operator}' expert for '{task}' cannot hold a solved task (it has no `hold`): "
                          "collect it with --hold-steps 0 (demos end at the first solved step)")
    max_attempts = 2 * episodes + 10 if max_attempts is None else max_attempts
    env_kwargs = dict(env_kwargs or {})
    env_args = {**spec.env_args, "env_kwargs": {**spec.env_args["env_kwargs"], **env_kwargs}}
    writer = DemoWriter(
        Path(out), env_args, obs_keys=spec.obs_keys, overwrite=overwrite,
        attrs={"collect_operator": operator, "collect_seed": int(seed), "collect_hold_steps": int(hold_steps)},
    )
    env = spec.make(seed=seed, **env_kwargs)
    master = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    attempts = 0
    jobs = [sub for sub in spec.tasks or (None,) for _ in range(episodes)]  # `episodes` demos of each task in turn
    written: dict[str | None, int] = {}
    tried: dict[str | None, int] = {}
    bar = progress(jobs, desc=f"collect {task}", total=len(jobs), quiet=quiet)
    try:
        for sub in bar:
            while True:
                if tried.get(sub, 0) >= max_attempts:
                    what = f"'{task}'" + (f" task {sub!r}" if sub is not None else "")
                    raise PostBCError(
                        f"the '{operator}' expert for {what} succeeded in only {written.get(sub, 0)} of {tried[sub]} "
                        f"episodes (max_attempts={max_attempts}); {out} keeps the {writer.num_demos} demos written. "
                        "Raise --max-attempts or fix the expert")
                env_seed = int(master.integers(2**31))
                expert_rng = np.random.default_rng(master.integers(2**63))
                demo, success = rollout(env, expert, spec, env_seed, expert_rng, sub, hold_steps)
                demo.attrs["attempt"] = attempts
                attempts, tried[sub] = attempts + 1, tried.get(sub, 0) + 1
                if success:
                    break
            keys = [f"operator_{demo.attrs['operator']}"] + ([f"task_{sub}"] if sub is not None else [])
            writer.add(demo, filter_keys=keys)
            written[sub] = written.get(sub, 0) + 1
            counts[expert.operator] = counts.get(expert.operator, 0) + 1
    finally:
        env.close()
        if hasattr(bar, "close"):
            bar.close()
    return CollectResult(path=Path(out), demos=writer.num_demos, attempts=attempts, operators=counts)
