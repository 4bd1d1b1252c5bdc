"""Meta-World 3.1.1 MT1 tasks as registered tasks: `mw-<name>` for every V3 env `<name>-v3`.

An MT1 benchmark is one Meta-World env with 50 fixed variations (object and goal positions),
generated from a benchmark seed (`mt1_seed`, 0 here, recorded in env_args); the goal is
visible in the observation. Each episode draws one of the 50 variations from its reset seed.
Actions: 4-d (hand xyz delta, gripper effort) in [-1, 1]. Horizon 300 (Meta-World's own limit is
500; its shipped scripted experts finish in 20-240 steps, most under 130).

The 39-d Meta-World observation is split into named parts; flattening them in `OBS_KEYS` order
gives back Meta-World's vector exactly (so its scripted policies can read it):

| key        | dims | content                                                        |
|------------|------|----------------------------------------------------------------|
| hand_pos   | 3    | end-effector position                                          |
| gripper    | 1    | finger distance, normalized to [0, 1]                          |
| obj1_pos   | 3    | first object position                                          |
| obj1_quat  | 4    | first object orientation (wxyz)                               |
| obj2_pos   | 3    | second object position (zeros when the task has one object)    |
| obj2_quat  | 4    | second object orientation                                      |
| prev_frame | 18   | the previous step's hand_pos..obj2_quat (Meta-World frame stack) |
| goal_pos   | 3    | goal position                                                  |

Meta-World reports instability by returning its last stable observation forever; we raise
`SimulationUnstable` instead, so vector envs end the episode as a failure and rebuild the env.
Meta-World is imported only when an env is built.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from postbc.envs.cameras import image_key, without_shadows
from postbc.envs.registry import TaskSpec, register
from postbc.errors import PostBCError
from postbc.envs.unstable import SimulationUnstable, check_finite

OBS_KEYS = ("hand_pos", "gripper", "obj1_pos", "obj1_quat", "obj2_pos", "obj2_quat", "prev_frame", "goal_pos")
OBS_DIMS = (3, 1, 3, 4, 3, 4, 18, 3)
DEFAULT_HORIZON = 300
MT1_SEED = 0
PREFIX = "mw-"

# metaworld.ALL_V3_ENVIRONMENTS in 3.1.1, written out so that registering needs no import
# (tests check it against the installed package).
V3_ENV_NAMES = (
    "assembly", "basketball", "bin-picking", "box-close", "button-press-topdown", "button-press-topdown-wall",
    "button-press", "button-press-wall", "coffee-button", "coffee-pull", "coffee-push", "dial-turn", "disassemble",
    "door-close", "door-lock", "door-open", "door-unlock", "hand-insert", "drawer-close", "drawer-open",
    "faucet-open", "faucet-close", "hammer", "handle-press-side", "handle-press", "handle-pull-side", "handle-pull",
    "lever-pull", "pick-place-wall", "pick-out-of-hole", "pick-place", "plate-slide", "plate-slide-side",
    "plate-slide-back", "plate-slide-back-side", "peg-insert-side", "peg-unplug-side", "soccer", "stick-push",
    "stick-pull", "push", "push-wall", "push-back", "reach", "reach-wall", "shelf-place", "sweep-into", "sweep",
    "window-open", "window-close",
)


def split_obs(flat: np.ndarray) -> dict[str, np.ndarray]:
    parts = np.split(np.asarray(flat, np.float32), np.cumsum(OBS_DIMS)[:-1])
    return dict(zip(OBS_KEYS, parts))


class MetaWorldEnv(gym.Env):
    """One MT1 benchmark (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, env_name: str, horizon: int = DEFAULT_HORIZON, mt1_seed: int = MT1_SEED, render: bool = False,
                 image_size: int = 256, cameras: tuple[str, ...] = ()):
        """`render`: `render()` returns the corner camera's view (videos); `cameras`: observations also hold each
        named camera's view at `image_size` under `<camera>_image` (uint8, postbc.envs.cameras)."""
        import metaworld

        if not 1 <= horizon <= 500:
            raise ValueError(f"horizon={horizon} must lie in [1, 500] (Meta-World's path-length limit)")
        self.env_name, self.horizon = env_name, int(horizon)
        self._tasks = metaworld.MT1(env_name, seed=mt1_seed).train_tasks
        kwargs = dict(render_mode="rgb_array", camera_name="corner", width=image_size, height=image_size) if render else {}
        self.raw = metaworld.ALL_V3_ENVIRONMENTS[env_name](**kwargs)
        self.raw.set_task(self._tasks[0])
        self.render_mode = "rgb_array" if render else None
        self.cameras, self._renderer = tuple(cameras), None
        names = [self.raw.model.camera(i).name for i in range(self.raw.model.ncam)]
        unknown = [c for c in self.cameras if c not in names]
        if unknown:
            raise PostBCError(f"Meta-World {env_name} has no camera(s) {unknown}; its cameras: {', '.join(names)}")
        self._image_size = image_size
        self.observation_space = gym.spaces.Dict(
            {k: gym.spaces.Box(-np.inf, np.inf, (d,), np.float32) for k, d in zip(OBS_KEYS, OBS_DIMS)}
            | {image_key(c): gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8) for c in self.cameras}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.variation = 0
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.variation = int(self.np_random.integers(len(self._tasks)))
        self.raw.set_task(self._tasks[self.variation])
        flat, _ = self.raw.reset()
        self._t = 0
        obs = split_obs(flat)
        check_finite(obs, f"metaworld {self.env_name} at reset")
        return self._with_views(obs), {"success": False, "variation": self.variation}

    def _with_views(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each camera's (S, S, 3) uint8 view, without shadows and reflections (`cameras.without_shadows`)."""
        if not self.cameras:
            return obs
        import mujoco

        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.raw.model, self._image_size, self._image_size)
            without_shadows(self._renderer.scene)  # the scene keeps its flags across update_scene calls
        for camera in self.cameras:
            self._renderer.update_scene(self.raw.data, camera=camera)
            view = self._renderer.render()
            obs[image_key(camera)] = np.ascontiguousarray(view[::-1] if camera.startswith("corner") else view)  # as render()
        return obs

    def step(self, action):
        action = np.clip(np.asarray(action, np.float32).reshape(4), -1.0, 1.0)
        flat, _, _, _, info = self.raw.step(action)
        self._t += 1
        if self.raw._did_see_sim_exception:
            raise SimulationUnstable(f"metaworld {self.env_name}: MuJoCo reported an unstable simulation at step {self._t}")
        obs = split_obs(flat)
        check_finite(obs, f"metaworld {self.env_name} at step {self._t}")
        success = bool(info["success"])
        return self._with_views(obs), float(success), success, (not success) and self._t >= self.horizon, {"success": success}

    def render(self):
        if self.render_mode != "rgb_array":
            raise RuntimeError("build the env with render=True to render images")
        return self.raw.render()[::-1]  # Meta-World's corner camera renders upside down

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
        self.raw.close()


def make_metaworld_env(env_name: str, seed: int | None = None, **kwargs: Any) -> MetaWorldEnv:
    env = MetaWorldEnv(env_name, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
    return env


def register_metaworld_tasks() -> None:
    for short in V3_ENV_NAMES:
        name, env_name = PREFIX + short, f"{short}-v3"
        register(
            TaskSpec(
                name=name,
                family="metaworld",
                obs_keys=OBS_KEYS,
                obs_dims=OBS_DIMS,
                act_dim=4,
                horizon=DEFAULT_HORIZON,
                make=functools.partial(make_metaworld_env, env_name),
                env_args={
                    "env_name": env_name,
                    "type": "metaworld",
                    "env_kwargs": {"task": name, "horizon": DEFAULT_HORIZON, "mt1_seed": MT1_SEED},
                },
                description=f"Meta-World MT1 {env_name}, horizon {DEFAULT_HORIZON}",
            )
        )
