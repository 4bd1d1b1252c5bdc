"""A tiny env with known dynamics and injectable faults, for testing wrappers, vector envs and evaluation.

Not registered: tests build a `TaskSpec` with `fake_task_spec(...)` and pass it where a task
name is accepted. Its `make` is a `functools.partial` of a module-level function, so it can be
sent to worker processes.

Dynamics: a point on a line, `pos += 0.25 * action`, goal drawn from the reset seed in
[-1, 1], start at 0; solved when |pos - goal| < 0.1. Obs keys `pos` (1,) and `goal` (1,);
`fake_image_task_spec` shows the goal only as a picture, `view_image` (S, S, 3) uint8 with a bright
column where the goal is (`line_image`), for tests of policies and finetuning that act from images.
`NoisePuppet` stands in for a pretrained policy on it (its chunk is tanh of the noise it is given), so
finetuning can be tested and benchmarked without pretraining.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import gymnasium as gym
import numpy as np

from postbc.envs.registry import TaskSpec


class FakeCrash(RuntimeError):
    """Raised by the fake env to imitate an unstable simulation."""


class FakeLineEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 20, crash_prob: float = 0.0, crash_step: int = 3, die_prob: float = 0.0,
                 reset_crash: bool = False, tasks: tuple[str, ...] = (), image_side: int = 0):
        self.horizon = horizon
        self.image_side = image_side  # > 0: also observe `view_image`
        self.tasks = tuple(tasks)  # a multi-task stand-in: each episode names one (info["task"]); the line is the same
        self.task = None
        self.crash_prob = crash_prob  # per episode: raise FakeCrash at `crash_step`
        self.crash_step = crash_step
        self.die_prob = die_prob  # per episode: kill the process at `crash_step` (only use in worker processes)
        self.reset_crash = reset_crash
        self.observation_space = gym.spaces.Dict(
            {k: gym.spaces.Box(-np.inf, np.inf, (1,), np.float32) for k in ("pos", "goal")}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._rng = np.random.default_rng()
        self.resets = 0

    def _obs(self):
        obs = {"pos": np.array([self.pos], np.float32), "goal": np.array([self.goal], np.float32)}
        if self.image_side:
            obs["view_image"] = line_image(self.goal, self.image_side)
        return obs

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if self.reset_crash:
            raise FakeCrash("reset failed")
        self.resets += 1
        self.goal = float(self._rng.uniform(-1, 1))
        self.pos = 0.0
        self.t = 0
        self._crash = self._rng.random() < self.crash_prob
        self._die = self._rng.random() < self.die_prob
        if self.tasks:
            self.task = self.tasks[int(self._rng.integers(len(self.tasks)))]
        return self._obs(), self._info(False)

    def _info(self, success: bool) -> dict:
        return {"success": success, **({"task": self.task} if self.tasks else {})}

    def step(self, action):
        self.t += 1
        if self.t == self.crash_step and self._crash:
            raise FakeCrash(f"simulation unstable at step {self.t}")
        if self.t == self.crash_step and self._die:
            os._exit(3)
        self.pos += 0.25 * float(np.clip(np.asarray(action).reshape(-1)[0], -1, 1))
        success = abs(self.pos - self.goal) < 0.1
        return self._obs(), float(success), success, (not success) and self.t >= self.horizon, self._info(success)


class ThresholdEnv(gym.Env):
    """Solved on the first step whose action's first coordinate exceeds `threshold`; nothing else matters.

    Obs `phase` (1,): the fraction of the horizon elapsed. With a wide noise action, a policy that
    samples it at random succeeds within a few steps: the task only tests whether RL is drawn
    towards success or away from it (the entropy trap of `postbc.envs.episodes`).
    """

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 40, act_dim: int = 7, threshold: float = 0.29):
        self.horizon, self.threshold = horizon, threshold
        self.observation_space = gym.spaces.Dict({"phase": gym.spaces.Box(0.0, 1.0, (1,), np.float32)})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
        self.t = 0

    def _obs(self):
        return {"phase": np.array([self.t / self.horizon], np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {"success": False}

    def step(self, action):
        self.t += 1
        success = bool(np.asarray(action).reshape(-1)[0] > self.threshold)
        return self._obs(), float(success), success, (not success) and self.t >= self.horizon, {"success": success}


def make_threshold_env(seed: int | None = None, **kwargs) -> ThresholdEnv:
    env = ThresholdEnv(**kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def threshold_task_spec(horizon: int = 40, act_dim: int = 7, threshold: float = 0.29) -> TaskSpec:
    return TaskSpec(
        name="threshold", family="fake", obs_keys=("phase",), obs_dims=(1,), act_dim=act_dim, horizon=horizon,
        make=functools.partial(make_threshold_env, horizon=horizon, act_dim=act_dim, threshold=threshold),
        env_args={"env_name": "threshold", "type": "fake", "env_kwargs": {"task": "threshold"}},
        description="solved when the first action coordinate exceeds a threshold (tests only)", in_process=True,
    )


def line_image(goal: float, side: int) -> np.ndarray:
    """(side, side, 3) uint8: dark, with a two-pixel bright column at the goal's place on [-1, 1]."""
    image = np.full((side, side, 3), 20, np.uint8)
    column = int(round((np.clip(goal, -1, 1) + 1) / 2 * (side - 2)))
    image[:, column: column + 2] = 235
    return image


def make_fake_env(seed: int | None = None, **kwargs) -> FakeLineEnv:
    env = FakeLineEnv(**kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def fake_task_spec(name: str = "fake", horizon: int = 20, **kwargs) -> TaskSpec:
    return TaskSpec(
        name=name,
        family="fake",
        obs_keys=("pos", "goal"),
        obs_dims=(1, 1),
        act_dim=1,
        horizon=horizon,
        make=functools.partial(make_fake_env, horizon=horizon, **kwargs),
        env_args={"env_name": name, "type": "fake", "env_kwargs": {"task": name}},
        description="point on a line moving to a goal (tests only)",
        tasks=tuple(kwargs.get("tasks", ())),
    )


def fake_image_task_spec(name: str = "line-image", horizon: int = 20, side: int = 32) -> TaskSpec:
    """The line task seen as `pos` and a picture of the goal (`view_image`, `line_image`): no `goal` key."""
    spec = fake_task_spec(name, horizon, image_side=side)
    return dataclasses.replace(spec, obs_keys=("pos", "view_image"), obs_dims=(1, side * side * 3),
                               description="point on a line moving to a goal shown only in an image (tests only)")


class GreedyLinePolicy:
    """Moves toward the goal, with Gaussian noise of scale `noise_std` taken from the `noise` argument.

    Follows the policy interface evaluation uses: `chunk`, `act(obs_flat, noise=None)`.
    """

    takes_noise = True

    def __init__(self, chunk: int = 1, noise_std: float = 0.0, gain: float = 4.0):
        self.chunk = chunk
        self.act_dim = 1
        self.noise_std = noise_std
        self.gain = gain

    def act(self, obs_flat: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        obs_flat = np.asarray(obs_flat, np.float32)
        a = np.clip(self.gain * (obs_flat[:, 1:2] - obs_flat[:, 0:1]), -1, 1)
        out = np.repeat(a[:, None, :], self.chunk, axis=1)
        if noise is not None:
            out = out + self.noise_std * np.asarray(noise)
        return np.clip(out, -1, 1).astype(np.float32)


class NoisePuppet:
    """A 'diffusion policy' whose chunk is tanh(noise): the base policy (w ~ N(0, I)) is a random walk,
    so succeeding on the line task needs a noise actor that looks at the observation."""

    obs_keys = ("pos", "goal")

    def __init__(self, chunk: int = 2, obs_dim: int = 2, act_dim: int = 1):
        self.chunk, self.obs_dim, self.act_dim = chunk, obs_dim, act_dim

    def act(self, obs, noise=None):
        if noise is None:
            noise = np.random.standard_normal((len(obs), self.chunk, self.act_dim))
        return np.tanh(np.asarray(noise, np.float32)).reshape(len(obs), self.chunk, self.act_dim)
