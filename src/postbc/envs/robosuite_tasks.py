"""robosuite Lift, Can (PickPlaceCan) and Square (NutAssemblySquare) as registered tasks.

Setup as in robomimic's low-dim benchmarks: Panda arm, OSC_POSE arm controller (7-d delta
action: position, axis-angle rotation, gripper; all in [-1, 1]), 20 Hz control, no rendering,
object observations on, `hard_reset=False` (a reset takes milliseconds instead of ~1 s).
Observation keys are robomimic's low-dim keys; `object` is robosuite's `object-state`:

| task   | robosuite env     | horizon | object (dims), in robosuite 1.5's order                             |
|--------|-------------------|---------|---------------------------------------------------------------------|
| lift   | Lift              | 300     | cube pos 3, cube quat 4, gripper-to-cube pos 3 (10)                 |
| can    | PickPlaceCan      | 300     | can pose in gripper frame: pos 3, quat 4; can pos 3, quat 4 (14)    |
| square | NutAssemblySquare | 400     | nut pose in gripper frame: pos 3, quat 4; nut pos 3, quat 4 (14)    |

Quaternions are xyzw (robosuite's convention). `OBJECT_POSE[task]` gives the slices of the
object's world position and orientation inside `object`.
Horizons follow the DSRL setup. Success comes from the env's own `_check_success()`.
Episode k's initial state is a function of its reset seed only: robosuite's generator is
seeded at construction with `MODEL_SEED` (models sample e.g. Lift's cube size there, once) and
re-seeded in place at each reset, so the placement samplers that share it follow.

This module imports robosuite only when an env is built, so registering the tasks is free.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import gymnasium as gym
import numpy as np

from postbc.envs.cameras import image_key, without_shadows
from postbc.envs.registry import TaskSpec, register
from postbc.envs.unstable import SimulationUnstable, check_finite, mujoco_instability_count
from postbc.errors import PostBCError

OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")
PROPRIO_DIMS = (3, 4, 2)

# registry name -> (robosuite env name, horizon, object-state dims)
TASKS: dict[str, tuple[str, int, int]] = {
    "lift": ("Lift", 300, 10),
    "can": ("PickPlaceCan", 300, 14),
    "square": ("NutAssemblySquare", 400, 14),
}
# registry name -> (world position slice, xyzw quaternion slice) within the `object` observation
OBJECT_POSE: dict[str, tuple[slice, slice]] = {
    "lift": (slice(0, 3), slice(3, 7)),
    "can": (slice(7, 10), slice(10, 14)),
    "square": (slice(7, 10), slice(10, 14)),
}

# robosuite 1.5's BASIC composite controller with only the Panda's arm part (its default JSON also
# configures torso, head, base and legs, and robosuite warns once per env about each). Written out
# here so that a change of robosuite's defaults cannot silently change the task.
CONTROLLER_CONFIG: dict[str, Any] = {
    "type": "BASIC",
    "body_parts": {
        "right": {
            "type": "OSC_POSE",
            "input_max": 1,
            "input_min": -1,
            "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5],
            "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5],
            "kp": 150,
            "damping_ratio": 1,
            "impedance_mode": "fixed",
            "kp_limits": [0, 300],
            "damping_ratio_limits": [0, 10],
            "position_limits": None,
            "orientation_limits": None,
            "uncouple_pos_ori": True,
            "input_type": "delta",
            "input_ref_frame": "base",
            "interpolation": None,
            "ramp_ratio": 0.2,
            "gripper": {"type": "GRIP"},
        }
    },
}

# Messages robosuite logs on every import / env build that say nothing about our setup.
_BENIGN_LOG_PREFIXES = (
    "No private macro file found",
    "It is recommended to use a private macro file",
    "To setup, run:",
    "Could not import robosuite_models",
    "Could not load the mink-based whole-body IK",
    "Loading controller configuration from",
)


def _drop_benign_robosuite_logs() -> None:
    """Filter robosuite's known import-time chatter; every other warning and error still shows."""
    logger = logging.getLogger("robosuite_logs")
    if not any(getattr(f, "_postbc", False) for f in logger.filters):
        def keep(record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith(_BENIGN_LOG_PREFIXES)

        keep._postbc = True  # type: ignore[attr-defined]
        logger.addFilter(keep)


MODEL_SEED = 0


def robosuite_env_kwargs(task: str, horizon: int | None = None) -> dict[str, Any]:
    """The keyword arguments given to `robosuite.make` (also written into datasets as env_args)."""
    env_name, default_horizon, _ = TASKS[task]
    return {
        "robots": ["Panda"],
        "controller_configs": copy.deepcopy(CONTROLLER_CONFIG),
        "control_freq": 20,
        "horizon": int(horizon or default_horizon),
        "has_renderer": False,
        "has_offscreen_renderer": False,
        "use_camera_obs": False,
        "use_object_obs": True,
        "reward_shaping": False,
        "ignore_done": True,  # we end episodes ourselves: at success or at the horizon
        "hard_reset": False,
        # Seeds robosuite's generator at construction, where models draw what resets keep (Lift's
        # cube size): without it the cube differs between processes and evaluations are not
        # reproducible. Resets re-seed the same generator for the placements.
        "seed": MODEL_SEED,
    }


class RobosuiteEnv(gym.Env):
    """gymnasium view of one robosuite manipulation env (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, horizon: int | None = None, render: bool = False, camera: str = "agentview",
                 image_size: int = 256, cameras: tuple[str, ...] = ()):
        """`render`: `render()` returns `camera`'s view at `image_size` (videos); `cameras`: observations also
        hold each camera's view at `image_size`, under `<camera>_image` (uint8, postbc.envs.cameras)."""
        _drop_benign_robosuite_logs()
        import robosuite

        self.task = task
        env_name, _, object_dim = TASKS[task]
        kwargs = robosuite_env_kwargs(task, horizon)
        self.horizon = kwargs["horizon"]
        if render or cameras:
            kwargs.update(has_offscreen_renderer=True)
        self.raw = robosuite.make(env_name, **kwargs)
        unknown = [c for c in cameras if c not in self.raw.sim.model.camera_names]
        if unknown:
            raise PostBCError(f"robosuite {env_name} has no camera(s) {unknown}; its cameras: "
                              f"{', '.join(self.raw.sim.model.camera_names)}")
        self._camera, self._image_size, self.cameras = camera, image_size, tuple(cameras)
        self.render_mode = "rgb_array" if render else None
        dims = PROPRIO_DIMS + (object_dim,)
        spaces = {k: gym.spaces.Box(-np.inf, np.inf, (d,), np.float32) for k, d in zip(OBS_KEYS, dims)}
        spaces |= {image_key(c): gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8) for c in self.cameras}
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (7,), np.float32)
        self._t = 0

    def _obs(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs = {k: np.asarray(raw["object-state" if k == "object" else k], np.float32) for k in OBS_KEYS}
        check_finite(obs, f"robosuite {self.task} at step {self._t}")
        for camera in self.cameras:
            obs[image_key(camera)] = self._view(camera, self._image_size)
        return obs

    def _view(self, camera: str, size: int) -> np.ndarray:
        """(size, size, 3) uint8, upright, without shadows and reflections (`cameras.without_shadows`)."""
        image = self.raw.sim.render(camera_name=camera, width=size, height=size)
        if without_shadows(self.raw.sim._render_context_offscreen.scn):  # the context exists after the first render
            image = self.raw.sim.render(camera_name=camera, width=size, height=size)
        return np.ascontiguousarray(image[::-1])  # MuJoCo's offscreen buffer is upside down

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # The placement samplers hold a reference to this generator: re-seed it in place.
            self.raw.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        self.raw.reset()
        self._t = 0
        # robosuite 1.5 computes object-relative sensors from a cache that its reset has just emptied,
        # so they read zero in the first observation; a second forced update fills them in.
        return self._obs(self.raw._get_observations(force_update=True)), {"success": False}

    def step(self, action):
        action = np.clip(np.asarray(action, np.float64).reshape(7), -1.0, 1.0)
        before = mujoco_instability_count(self.raw.sim.data._data)
        raw, _, _, _ = self.raw.step(action)
        self._t += 1
        if mujoco_instability_count(self.raw.sim.data._data) > before:
            raise SimulationUnstable(f"robosuite {self.task}: MuJoCo reported an unstable simulation at step {self._t}")
        success = bool(self.raw._check_success())
        obs = self._obs(raw)
        return obs, float(success), success, (not success) and self._t >= self.horizon, {"success": success}

    def render(self):
        if self.render_mode != "rgb_array":
            raise RuntimeError("build the env with render=True to render images")
        return self._view(self._camera, self._image_size)

    def close(self):
        self.raw.close()


def make_robosuite_env(task: str, seed: int | None = None, **kwargs: Any) -> RobosuiteEnv:
    env = RobosuiteEnv(task, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def register_robosuite_tasks() -> None:
    for name, (env_name, horizon, object_dim) in TASKS.items():
        register(
            TaskSpec(
                name=name,
                family="robosuite",
                obs_keys=OBS_KEYS,
                obs_dims=PROPRIO_DIMS + (object_dim,),
                act_dim=7,
                horizon=horizon,
                make=functools.partial(make_robosuite_env, name),
                env_args={
                    "env_name": env_name,
                    "type": "robosuite",
                    "env_kwargs": {"task": name, **robosuite_env_kwargs(name)},
                },
                description=f"robosuite {env_name}, Panda, OSC_POSE, horizon {horizon}",
            )
        )
