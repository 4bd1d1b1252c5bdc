"""Chunk transitions for RL from `postbc.envs.vector.VectorEnv`: reward transform, final obs, crashes.

One transition = one action chunk (up to `chunk` env steps; it stops early when the episode
ends). Its reward is the plain sum of the transformed per-step rewards; discounting is per chunk.
`episode_end` picks the training episode (`postbc.envs.episodes`): "success" ends it when the task
is solved (terminated: no bootstrapping; the horizon truncates and bootstraps); "horizon" runs it
to the task's horizon, which is terminal, each step rewarded by whether it is solved.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from postbc.envs.registry import TaskSpec, flatten_obs
from postbc.envs.vector import VectorEnv

log = logging.getLogger("postbc.finetune")

REWARDS = ("minus_one", "zero_one")


def transform_reward(step_rewards, kind: str) -> float:
    """Task rewards are 1.0 on the solving step, else 0.0 (registry contract).

    Under `RunToHorizon` the task reward is 1.0 on every step that is solved, else 0.0.
    minus_one: -1 on every unsolved step, 0 on solved ones (DSRL); zero_one: unchanged (DPPO, IQL).
    """
    r = np.asarray(step_rewards, dtype=np.float64)
    return float((r - 1.0).sum() if kind == "minus_one" else r.sum())


@dataclasses.dataclass
class ChunkStep:
    obs: np.ndarray  # (N, D) flat observation each env's next chunk starts from (after autoreset)
    next_obs: np.ndarray  # (N, D) observation after the chunk (the final one when the episode ended)
    reward: np.ndarray  # (N,) summed transformed reward
    terminated: np.ndarray  # (N,) no bootstrapping: solved ("success" episodes) or at the horizon ("horizon")
    truncated: np.ndarray  # (N,) horizon reached or env crashed
    steps: np.ndarray  # (N,) env steps executed
    valid: np.ndarray  # (N,) False where the env crashed: drop that transition
    finished: list[bool]  # success flags of the episodes that ended in this step (crashes excluded)


class ChunkEnv:
    """Training envs of one task stepped one chunk per env per call."""

    def __init__(self, spec: TaskSpec, num_envs: int, chunk: int, seed: int, reward: str, backend: str = "auto",
                 episode_end: str = "success"):
        self.spec, self.reward_kind = spec, reward
        self.vec = VectorEnv(spec, num_envs, seed=seed, chunk=chunk, backend=backend, episode_end=episode_end)
        self.obs = flatten_obs(self.vec.reset(), spec.obs_keys)
        self.crashes = 0

    def step(self, chunks: np.ndarray) -> ChunkStep:
        self.step_async(chunks)
        return self.step_wait()

    def step_async(self, chunks: np.ndarray) -> None:
        """Start the chunks; with worker processes the envs run them while the caller learns."""
        self.vec.step_async(np.asarray(chunks, np.float32))

    def step_wait(self) -> ChunkStep:
        obs, _, term, trunc, infos = self.vec.step_wait()
        n = len(infos)
        flat = flatten_obs(obs, self.spec.obs_keys)
        next_obs = flat.copy()
        reward = np.zeros(n, np.float32)
        steps = np.zeros(n, np.int64)
        valid = np.ones(n, bool)
        finished = []
        for i, info in enumerate(infos):
            steps[i] = int(info.get("env_steps", 0))
            if "env_error" in info:
                self.crashes += 1
                valid[i] = False
                log.warning("env %d of task %s crashed mid-episode (%s); the episode is dropped and the run goes on",
                            i, self.spec.name, info["env_error"])
                continue
            reward[i] = transform_reward(info.get("step_rewards", []), self.reward_kind)
            if "final_obs" in info:
                next_obs[i] = flatten_obs(info["final_obs"], self.spec.obs_keys)
            if "episode" in info:
                finished.append(bool(info["episode"]["success"]))
        self.obs = flat
        return ChunkStep(flat, next_obs, reward, term.astype(bool), trunc.astype(bool), steps, valid, finished)

    def close(self) -> None:
        self.vec.close()
