"""Scripted demonstrators for Meta-World: its shipped expert policies, acted out by operators.

Meta-World ships a reactive scripted policy per task (`metaworld.policies`): it reads the 39-d
observation and returns a hand-delta and gripper action. An operator (`postbc.experts.operators`)
changes how it is carried out, not what it decides:
- speed: the hand-delta is clipped to [-speed, speed] per axis, as Meta-World clips it to [-1, 1]
  (scaling it instead would lower the policies' fine-positioning gains, which some tasks, e.g.
  assembly, do not survive);
- grasp point: the expert sees the first object shifted by the episode's grasp offset, so it
  reaches for a slightly different spot (a sloppy offset can miss; the policy then tries again
  by itself, or the demo fails and is filtered out by the collector);
- pauses and hesitation: now and then the hand stops for a few steps, or backs off a little;
- correlated action noise on the hand-delta;
- corrective retries: when the hand is stuck (the policy pushes but the hand has not moved for
  `STUCK_STEPS` steps, e.g. fingers that closed too early above the handle of a slowly
  approached wrench), the operator opens the hand and backs up, and the policy tries again.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from postbc.envs.metaworld_multitask import MT10_TASKS, TASK_KEY
from postbc.envs.metaworld_tasks import OBS_KEYS, PREFIX
from postbc.envs.registry import flatten_obs
from postbc.experts.operators import OPERATORS, CorrelatedNoise, Operator

EVENT_EVERY = 25  # mean steps between chances of a pause / a hesitation
STUCK_STEPS = 12
STUCK_MOVE = 0.002  # m: less hand motion than this over STUCK_STEPS while pushing = stuck
RETRY_STEPS = 8
MAX_RETRIES = 3
OBJ1_XY = slice(4, 6)  # first object's x, y in Meta-World's flat observation


class MetaWorldExpert:
    def __init__(self, env_name: str, operator: Operator):
        from metaworld.policies import ENV_POLICY_MAP

        self.env_name, self.op, self.operator = env_name, operator, operator.name
        self.policy = ENV_POLICY_MAP[env_name]()

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None:
        self._rng = rng
        self.style = self.op.sample(rng)
        self._noise = CorrelatedNoise(rng, 3, self.style.noise, self.style.noise_corr)
        self._pause = self._back_off = self._retreat = 0
        self.retries = 0
        self._hand_history: list[np.ndarray] = []

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        flat = flatten_obs(obs, OBS_KEYS).astype(np.float64)
        flat[OBJ1_XY] += self.style.grasp_offset
        with warnings.catch_warnings():  # the shipped policies warn whenever their gain saturates
            warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
            action = np.asarray(self.policy.get_action(flat), np.float64)
        if self._stuck(flat[:3], action[:3]):
            self.retries += 1
            self._retreat = RETRY_STEPS
        if self._retreat > 0:
            self._retreat -= 1
            return np.array([0.0, 0.0, 0.6, -1.0], np.float32)
        move = np.clip(action[:3], -self.style.speed, self.style.speed)
        self._maybe_start_event()
        if self._pause > 0:
            self._pause -= 1
            move = np.zeros(3)
        elif self._back_off > 0:
            self._back_off -= 1
            move = -0.4 * move
        action[:3] = move + self._noise()
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _stuck(self, hand: np.ndarray, push: np.ndarray) -> bool:
        self._hand_history = (self._hand_history + [hand.copy()])[-STUCK_STEPS:]
        if self._retreat or self.retries >= MAX_RETRIES or len(self._hand_history) < STUCK_STEPS:
            return False
        moved = np.linalg.norm(self._hand_history[-1] - self._hand_history[0])
        if moved < STUCK_MOVE and np.linalg.norm(push) > 0.2:
            self._hand_history = []
            return True
        return False

    def _maybe_start_event(self) -> None:
        if self._pause or self._back_off:
            return
        u = self._rng.random() * EVENT_EVERY
        if u < self.style.pause_prob:
            self._pause = int(self._rng.integers(*self.style.pause_steps))
        elif u < self.style.pause_prob + self.style.hesitate_prob:
            self._back_off = int(self._rng.integers(2, 6))


def make_metaworld_expert(task: str, operator: str) -> MetaWorldExpert:
    return MetaWorldExpert(f"{task.removeprefix(PREFIX)}-v3", OPERATORS[operator])


class MultiTaskExpert:
    """An MT10 operator: the episode's task (the `task_onehot` observation) picks which task's expert acts."""

    def __init__(self, tasks: tuple[str, ...], operator: Operator):
        self.tasks, self.operator = tasks, operator.name
        self.experts = {name: MetaWorldExpert(f"{name}-v3", operator) for name in tasks}
        self.current = self.experts[tasks[0]]

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None:
        self.current = self.experts[self.tasks[int(np.argmax(obs[TASK_KEY]))]]
        self.current.reset(rng, obs)

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.current.act(obs)


def make_mt10_expert(operator: str) -> MultiTaskExpert:
    return MultiTaskExpert(MT10_TASKS, OPERATORS[operator])
