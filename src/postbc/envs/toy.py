"""`toy`: a 2-D point-mass navigation task in pure numpy where coverage of rare states matters.

The arena is [-1, 1]^2 (y up); walls are axis-aligned boxes the agent slides along:

                        goal: x ~ U(-0.3, 0.3), y = 0.75, radius 0.1
                  ==================               bar: x in [-0.35, 0.35], y in [-0.05, 0.1]
     ________                             ________   shelves: |x| in [0.45, 0.85], y in [-0.35, -0.28]
       pocket |         start          | pocket     inner walls: |x| in [0.45, 0.52], y in [-0.75, -0.28]
              |                        |            (gaps: 0.15 by each side wall, 0.25 under each inner wall)

- Common start (probability 1 - rare_start_prob): bottom centre. Heading straight for the goal
  gets stuck under the bar: the demonstrator goes round it on the left or on the right (two modes,
  equally often), up the corridor between the pockets.
- Pocket start (probability rare_start_prob, default 0.15, either side): inside a pocket. Heading
  up or towards the goal gets stuck under the shelf; the demonstrator leaves either outwards and
  up through the gap by the side wall, or down and inwards under the inner wall (two modes).
  These states are *rare*: with a handful of demos few or none start there, so BC has seen one
  exit or none while the demonstrator uses both. `toy_state_region` labels states rare / common.

Dynamics: the action (in [-1, 1]^2) is a target velocity; the velocity follows it with lag
(v <- v + 0.5 (a - v)) and the agent moves 0.1 * v per step. Motion into a wall stops at the wall
(the velocity component into it is zeroed; the agent slides along it).
Reward 1.0 on the step the goal disc is reached (`terminated`), else 0; `truncated` at 60 steps.
Observation: {"agent_pos", "agent_vel", "goal_pos"}, each (2,) float32.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from postbc.envs.registry import TaskSpec, register

OBS_KEYS = ("agent_pos", "agent_vel", "goal_pos")
HORIZON = 60
MAX_STEP = 0.1  # distance per step at full speed
VELOCITY_LAG = 0.5  # fraction of the gap to the target velocity closed per step
GOAL_Y, GOAL_X_RANGE, GOAL_RADIUS = 0.75, 0.3, 0.1
COMMON_START_X, COMMON_START_Y = 0.15, (-0.85, -0.7)
POCKET_START_X, POCKET_START_Y = (0.6, 0.78), (-0.65, -0.45)  # mirrored on the left
DEFAULT_RARE_START_PROB = 0.15


def _mirrored(x0: float, x1: float, y0: float, y1: float) -> list[tuple[float, float, float, float]]:
    return [(x0, x1, y0, y1), (-x1, -x0, y0, y1)]


# Walls as boxes (x0, x1, y0, y1).
WALLS: list[tuple[float, float, float, float]] = [
    (-0.35, 0.35, -0.05, 0.1),  # bar
    *_mirrored(0.45, 0.85, -0.35, -0.28),  # shelves
    *_mirrored(0.45, 0.52, -0.75, -0.28),  # inner walls (overlap the shelves: no seam)
]


def is_rare_position(pos: np.ndarray) -> np.ndarray:
    """(...,) bool: in a pocket or its exits (|x| > 0.32 below the shelves) or in an outer lane (|x| > 0.75).

    Only episodes that start in a pocket pass through these states; trajectories from the common
    start stay in the corridor |x| < 0.32 until they are above the shelves, and within |x| < 0.7.
    """
    pos = np.asarray(pos)
    ax = np.abs(pos[..., 0])
    return (ax > 0.75) | ((ax > 0.32) & (pos[..., 1] < -0.28))


def toy_state_region(obs_flat: np.ndarray) -> np.ndarray:
    """(...,) array of "rare" / "common" for flat toy observations (agent_pos first, as in OBS_KEYS)."""
    return np.where(is_rare_position(np.asarray(obs_flat)[..., :2]), "rare", "common")


def move(pos: np.ndarray, vel: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step of the dynamics: new (pos, vel). Walls stop the motion into them (no tunnelling)."""
    vel = vel + VELOCITY_LAG * (action - vel)
    x, y = float(pos[0]), float(pos[1])
    dx, dy = MAX_STEP * float(vel[0]), MAX_STEP * float(vel[1])
    vx, vy = float(vel[0]), float(vel[1])
    for box in WALLS:
        hit = _entry_axis(x, y, dx, dy, box)
        if hit == 0:
            dx, vx = (box[0] if dx > 0 else box[1]) - x, 0.0
        elif hit == 1:
            dy, vy = (box[2] if dy > 0 else box[3]) - y, 0.0
    nx, ny = x + dx, y + dy
    if abs(nx) > 1.0:
        nx, vx = max(-1.0, min(1.0, nx)), 0.0
    if abs(ny) > 1.0:
        ny, vy = max(-1.0, min(1.0, ny)), 0.0
    return np.array([nx, ny]), np.array([vx, vy])


def _entry_axis(x: float, y: float, dx: float, dy: float, box: tuple[float, float, float, float]) -> int:
    """Axis (0 = x, 1 = y) through whose face the move (x, y) -> (x + dx, y + dy) enters `box`, or -1.

    Slab test: the move enters when the intervals of t in [0, 1] spent inside the box's x range
    and inside its y range overlap; it enters through the face of the later of the two.
    """
    t_in, t_out, axis = -np.inf, np.inf, -1
    for i, (p, d, lo, hi) in enumerate(((x, dx, box[0], box[1]), (y, dy, box[2], box[3]))):
        if d == 0.0:
            if not lo < p < hi:
                return -1
            continue
        t0, t1 = (lo - p) / d, (hi - p) / d
        if t0 > t1:
            t0, t1 = t1, t0
        if t0 > t_in:
            t_in, axis = t0, i
        t_out = min(t_out, t1)
    return axis if 0.0 <= t_in < t_out and t_in <= 1.0 else -1


class ToyNavEnv(gym.Env):
    """The `toy` task (see the module docstring). Deterministic given `reset(seed=...)`."""

    metadata = {"render_modes": []}

    def __init__(self, rare_start_prob: float = DEFAULT_RARE_START_PROB, seed: int | None = None):
        if not 0.0 <= rare_start_prob <= 1.0:
            raise ValueError(f"rare_start_prob={rare_start_prob} must lie in [0, 1]")
        self.rare_start_prob = float(rare_start_prob)
        box = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = gym.spaces.Dict({k: box for k in OBS_KEYS})
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._first_seed = seed
        self._pos = np.zeros(2)
        self._vel = np.zeros(2)
        self._goal = np.zeros(2)
        self._t = 0
        self.pocket_start = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self._first_seed is not None:
            seed = self._first_seed
            self.action_space.seed(seed)
        self._first_seed = None
        super().reset(seed=seed)
        rng = self.np_random
        self.pocket_start = bool(rng.random() < self.rare_start_prob)
        if self.pocket_start:
            side = 1.0 if rng.random() < 0.5 else -1.0
            self._pos = np.array([side * rng.uniform(*POCKET_START_X), rng.uniform(*POCKET_START_Y)])
        else:
            self._pos = np.array([rng.uniform(-COMMON_START_X, COMMON_START_X), rng.uniform(*COMMON_START_Y)])
        self._vel = np.zeros(2)
        self._goal = np.array([rng.uniform(-GOAL_X_RANGE, GOAL_X_RANGE), GOAL_Y])
        self._t = 0
        return self._obs(), {"success": False, "pocket_start": self.pocket_start}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"toy env got a non-finite action {action.tolist()}")
        action = np.clip(action, -1.0, 1.0)
        self._pos, self._vel = move(self._pos, self._vel, action)
        self._t += 1
        d = self._pos - self._goal
        success = bool(d[0] * d[0] + d[1] * d[1] < GOAL_RADIUS * GOAL_RADIUS)
        truncated = not success and self._t >= HORIZON
        return self._obs(), float(success), success, truncated, {"success": success}

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "agent_pos": self._pos.astype(np.float32),
            "agent_vel": self._vel.astype(np.float32),
            "goal_pos": self._goal.astype(np.float32),
        }


def make_toy(seed: int | None = None, **kwargs: Any) -> ToyNavEnv:
    return ToyNavEnv(seed=seed, **kwargs)


TOY = register(
    TaskSpec(
        name="toy",
        family="toy",
        in_process=True,
        obs_keys=OBS_KEYS,
        obs_dims=(2, 2, 2),
        act_dim=2,
        horizon=HORIZON,
        make=make_toy,
        env_args={"env_name": "toy", "type": "toy", "env_kwargs": {"task": "toy"}},
        description="2-D point mass round a bar (two modes) with rare pocket starts (two exits); pure numpy, fast",
    )
)
