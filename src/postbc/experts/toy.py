"""Scripted demonstrators for the `toy` task: waypoint followers with human-like variety.

Each episode the expert picks a route at `reset` (from its rng) and steers towards the route's
waypoints in turn at its operator's speed, with Gaussian action noise:
- from the common start: up the corridor and round the bar on the left or on the right (`p_left`);
- from a pocket start (rare): outwards and up through the gap by the side wall, or down and
  inwards under the inner wall (`p_outer`), then round the bar on that side.
The operators differ in speed, steadiness and side preference, like the operators of mixed skill
in robomimic's multi-human datasets.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from postbc.envs.toy import is_rare_position
from postbc.experts.registry import register_expert

SWITCH_RADIUS = 0.12  # a waypoint counts as reached this close (the goal is steered to until the end)

# Waypoints for the right-hand side (x > 0); the left-hand routes are their mirror images.
AROUND_BAR = [(0.25, -0.2), (0.52, 0.05), (0.4, 0.3)]
INNER_EXIT = [(0.65, -0.87), (0.3, -0.87)] + AROUND_BAR
OUTER_EXIT = [(0.92, -0.5), (0.92, -0.1), (0.6, 0.25)]


@dataclasses.dataclass(frozen=True)
class ToyOperator:
    name: str
    speed: float  # norm of the commanded velocity, <= 1
    noise: float  # std of the Gaussian added to each action coordinate
    p_left: float = 0.5  # from the common start: probability of passing the bar on the left
    p_outer: float = 0.5  # from a pocket: probability of leaving through the gap by the wall


OPERATORS = {
    op.name: op
    for op in (
        ToyOperator("steady", speed=0.8, noise=0.05),
        ToyOperator("fast", speed=1.0, noise=0.15),
        ToyOperator("careful", speed=0.65, noise=0.02),
        ToyOperator("lefty", speed=0.8, noise=0.05, p_left=0.8, p_outer=0.3),
    )
}


class ToyExpert:
    def __init__(self, op: ToyOperator):
        self.op = op
        self.operator = op.name
        self.route = ""
        self._waypoints: list[np.ndarray] = []
        self._rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None:
        self._rng = rng
        pos = np.asarray(obs["agent_pos"], dtype=np.float64)
        if is_rare_position(pos):
            side = 1.0 if pos[0] > 0 else -1.0
            outer = rng.random() < self.op.p_outer
            self.route = "outer" if outer else "inner"
            points = OUTER_EXIT if outer else INNER_EXIT
        else:
            side = -1.0 if rng.random() < self.op.p_left else 1.0
            self.route = "left" if side < 0 else "right"
            points = AROUND_BAR
        self._waypoints = [np.array([side * x, y]) for x, y in points]
        self._waypoints.append(np.asarray(obs["goal_pos"], dtype=np.float64))

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        pos = np.asarray(obs["agent_pos"], dtype=np.float64)
        while len(self._waypoints) > 1 and np.linalg.norm(self._waypoints[0] - pos) < SWITCH_RADIUS:
            self._waypoints.pop(0)
        direction = self._waypoints[0] - pos
        action = self.op.speed * direction / max(float(np.linalg.norm(direction)), 1e-6)
        action = action + self.op.noise * self._rng.standard_normal(2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


register_expert("toy", list(OPERATORS), lambda name: ToyExpert(OPERATORS[name]))
