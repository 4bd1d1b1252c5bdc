"""Execute an action chunk: H env steps per agent step, rewards summed, stop early when done.

Diffusion policies predict H actions at a time; RL on top of them (DSRL, DPPO) treats the
whole chunk as one decision. The wrapper stops as soon as the episode ends (at success for the
registry's envs, at the horizon), so no action is applied after it and no step runs past the
horizon. Under `postbc.envs.episodes.RunToHorizon` success does not end the episode, and the
chunk runs on.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class ActionChunkWrapper(gym.Wrapper):
    """`step(actions)` with `actions` of shape (n, act_dim), 1 <= n <= chunk.

    Returns the observation after the last executed action, the summed reward, the last
    `terminated` / `truncated`, and the last step's info plus
    - `success`: whether the task was solved at any step of this chunk,
    - `env_steps`: how many actions were executed (< n when the episode ended early),
    - `step_rewards`: the reward of each executed action (for per-step reward shaping).
    """

    def __init__(self, env: gym.Env, chunk: int):
        super().__init__(env)
        if chunk < 1:
            raise ValueError(f"chunk={chunk} must be >= 1")
        self.chunk = int(chunk)
        inner = env.action_space
        self.act_dim = int(np.prod(inner.shape))
        self.action_space = gym.spaces.Box(
            low=np.broadcast_to(inner.low, (self.chunk, self.act_dim)).astype(inner.dtype),
            high=np.broadcast_to(inner.high, (self.chunk, self.act_dim)).astype(inner.dtype),
            dtype=inner.dtype,
        )

    def step(self, actions: Any):
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[1] != self.act_dim or not 1 <= actions.shape[0] <= self.chunk:
            raise ValueError(
                f"action chunk has shape {actions.shape}; expected (n, {self.act_dim}) with 1 <= n <= {self.chunk}"
            )
        rewards: list[float] = []
        success = False
        for action in actions:
            obs, reward, terminated, truncated, info = self.env.step(action)
            rewards.append(float(reward))
            success = success or bool(info.get("success", False))
            if terminated or truncated:
                break
        info = dict(info)
        info.update(success=success, env_steps=len(rewards), step_rewards=rewards)
        return obs, float(sum(rewards)), bool(terminated), bool(truncated), info
