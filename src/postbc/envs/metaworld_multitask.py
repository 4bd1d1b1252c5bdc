"""Meta-World MT10 as one registered task, `mt10`: one env, ten tasks, a task-conditioning key.

Libero's setting (multi-task, task-conditioned policies) built on what installs here. Each episode
is one of MT10's ten tasks (Meta-World 3.1.1 `MT10` train classes, in its order), each an MT1
benchmark as in `postbc.envs.metaworld_tasks` (50 variations from `mt1_seed`). The observation is
the single-task one plus `task_onehot` (10,), the one-hot of the episode's task: flattened with the
other keys, it conditions every network of the pipeline (denoiser, ensemble, SAC, IQL, DPPO's value
net) without any of them knowing about tasks, and one policy serves all ten. `info["task"]` names
the task on every step, so evaluation can report success per task.

The task of an episode is drawn from the reset seed, or chosen with `reset(options={"task": NAME})`
(how `postbc collect` writes N demos of each task).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from postbc.envs.metaworld_tasks import DEFAULT_HORIZON, MT1_SEED, OBS_DIMS, OBS_KEYS, MetaWorldEnv
from postbc.envs.cameras import image_key
from postbc.envs.registry import TaskSpec, register
from postbc.errors import PostBCError

MT10_TASKS = ("reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close", "button-press-topdown",
              "peg-insert-side", "window-open", "window-close")
TASK_KEY = "task_onehot"
# One instruction per task, as Libero's demos carry (Meta-World has none): each demo records its
# task's, so embeddings of them can be made elsewhere and added as a key (postbc.data.task_keys).
INSTRUCTIONS = {
    "reach": "reach the goal position",
    "push": "push the puck to the goal",
    "pick-place": "pick up the puck and place it at the goal",
    "door-open": "open the door",
    "drawer-open": "open the drawer",
    "drawer-close": "close the drawer",
    "button-press-topdown": "press the button from the top",
    "peg-insert-side": "insert the peg into the hole from the side",
    "window-open": "slide the window open",
    "window-close": "slide the window closed",
}
NAME = "mt10"


class MultiTaskMetaWorldEnv(gym.Env):
    """Meta-World tasks behind one env (see module docstring); each task's env is built when first used."""

    def __init__(self, tasks: tuple[str, ...] = MT10_TASKS, horizon: int = DEFAULT_HORIZON, mt1_seed: int = MT1_SEED,
                 conditioning: dict[str, dict[str, list[float]]] | None = None, episode_tasks: tuple[str, ...] | None = None,
                 cameras: tuple[str, ...] = (), image_size: int = 84):
        """`conditioning`: extra observation keys, one vector per task (a policy's table, `postbc.data.task_keys`);
        `episode_tasks`: the tasks episodes are drawn from (default: all; a policy's trained tasks)."""
        self.tasks, self.horizon, self.mt1_seed = tuple(tasks), int(horizon), int(mt1_seed)
        self.cameras, self.image_size = tuple(cameras), int(image_size)
        self.conditioning = {k: {t: np.asarray(v, np.float32) for t, v in table.items()}
                             for k, table in (conditioning or {}).items()}
        self.episode_tasks = tuple(episode_tasks or self.tasks)
        for name in self.episode_tasks:
            self.task_index(name)
        self._envs: dict[str, MetaWorldEnv] = {}
        self.observation_space = gym.spaces.Dict(
            {k: gym.spaces.Box(-np.inf, np.inf, (d,), np.float32) for k, d in zip(OBS_KEYS, OBS_DIMS)}
            | {TASK_KEY: gym.spaces.Box(0.0, 1.0, (len(self.tasks),), np.float32)}
            | {k: gym.spaces.Box(-np.inf, np.inf, (len(next(iter(t.values()))),), np.float32)
               for k, t in self.conditioning.items()}
            | {image_key(c): gym.spaces.Box(0, 255, (self.image_size,) * 2 + (3,), np.uint8) for c in self.cameras}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.current = self.episode_tasks[0]

    def task_index(self, name: str) -> int:
        if name not in self.tasks:
            raise PostBCError(f"task {name!r} is not one of this env's tasks: {', '.join(self.tasks)}")
        return self.tasks.index(name)

    def one_hot(self, name: str) -> np.ndarray:
        out = np.zeros(len(self.tasks), np.float32)
        out[self.task_index(name)] = 1.0
        return out

    def _env(self, name: str) -> MetaWorldEnv:
        if name not in self._envs:
            self._envs[name] = MetaWorldEnv(f"{name}-v3", horizon=self.horizon, mt1_seed=self.mt1_seed,
                                            cameras=self.cameras, image_size=self.image_size)
        return self._envs[name]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        chosen = (options or {}).get("task")
        if chosen is not None:
            self.task_index(chosen)
            missing = [k for k, table in self.conditioning.items() if chosen not in table]
            if missing:
                raise PostBCError(f"task {chosen!r} has no {', '.join(missing)} vector: the policy was not trained on it "
                                  f"(it knows: {', '.join(next(iter(self.conditioning.values())))})")
        self.current = chosen if chosen is not None else self.episode_tasks[int(self.np_random.integers(len(self.episode_tasks)))]
        obs, info = self._env(self.current).reset(seed=int(self.np_random.integers(2**31)))
        return self._with_task(obs), {**info, "task": self.current}

    def step(self, action):
        obs, reward, terminated, truncated, info = self._env(self.current).step(action)
        return self._with_task(obs), reward, terminated, truncated, {**info, "task": self.current}

    def _with_task(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**obs, TASK_KEY: self.one_hot(self.current)} | {k: t[self.current] for k, t in self.conditioning.items()}

    def close(self):
        for env in self._envs.values():
            env.close()


def make_mt10_env(seed: int | None = None, **kwargs: Any) -> MultiTaskMetaWorldEnv:
    env = MultiTaskMetaWorldEnv(**kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def register_mt10() -> None:
    register(TaskSpec(
        name=NAME, family="metaworld", obs_keys=OBS_KEYS + (TASK_KEY,), obs_dims=OBS_DIMS + (len(MT10_TASKS),),
        act_dim=4, horizon=DEFAULT_HORIZON, make=make_mt10_env,
        env_args={"env_name": "MT10", "type": "metaworld",
                  "env_kwargs": {"task": NAME, "horizon": DEFAULT_HORIZON, "mt1_seed": MT1_SEED}},
        description=f"Meta-World MT10 (one task per episode, {TASK_KEY} conditions), horizon {DEFAULT_HORIZON}",
        tasks=MT10_TASKS, instructions=INSTRUCTIONS,
    ))
