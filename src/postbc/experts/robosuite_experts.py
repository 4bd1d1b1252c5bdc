"""Scripted demonstrators for robosuite Lift, Can and Square: waypoint plans from object poses.

One controller, three plans. A plan is a list of `Phase`s (go above the object, descend, close,
lift, carry, lower, release, ...); each phase's target is recomputed from the current
observation every step, so it follows objects that move. The controller steers the gripper
site towards the target with a proportional OSC_POSE delta action (capped at the episode's
speed), keeps the gripper pointing down while turning it to the phase's yaw, and adds the
operator's correlated noise. Operator styles (`postbc.experts.operators`) set speed, approach
height, grasp point and yaw, pauses at phase changes, hesitation before descents and how
sloppy a grasp can be; when the object is lost or a plan runs out without success the
expert starts over from the object's new pose (a corrective retry, at most `MAX_RETRIES`).

The experts read only the observation (robomimic keys) plus constants of the scenes that do
not move (peg and bin positions), which tests check against the simulator.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from postbc.envs.robosuite_tasks import OBJECT_POSE
from postbc.experts.operators import OPERATORS, CorrelatedNoise, Operator, Style

TABLE_Z = 0.82  # Lift and Square table top; Can's bins sit at 0.8
PEG_XY = np.array([0.23, 0.10])  # Square's peg1, where the square nut goes
CAN_BIN_XY = np.array([0.15, 0.375])  # in Can's target quarter of bin2 (x 0.1..0.295, y 0.28..0.525),
# towards its near corner: the arm cannot reach the quarter's far side with the hand pointing down
NUT_HANDLE_X = 0.054  # the square nut's handle centre, along the nut's x axis, from its centre

OSC_MAX_DELTA = 0.05  # m per step at action 1 (OSC_POSE output_max)
OSC_MAX_ROT = 0.5  # rad per step at action 1
POS_GAIN = 1.2
MAX_RETRIES = 3
MAX_CORRECTIONS = 2  # per plan: going back a phase after a timeout
DOWN = Rotation.from_matrix(np.diag([1.0, -1.0, -1.0]))  # gripper pointing down, fingers along world y


@dataclasses.dataclass(frozen=True)
class Scene:
    """What the expert reads from one observation."""

    eef: np.ndarray  # gripper site position
    eef_rot: Rotation
    width: float  # finger opening (m)
    obj: np.ndarray  # object position
    obj_rot: Rotation

    @classmethod
    def from_obs(cls, obs: Mapping[str, np.ndarray], task: str) -> "Scene":
        pos, quat = OBJECT_POSE[task]
        obj = np.asarray(obs["object"], np.float64)
        q = np.asarray(obs["robot0_gripper_qpos"], np.float64)
        return cls(
            eef=np.asarray(obs["robot0_eef_pos"], np.float64),
            eef_rot=_rotation(obs["robot0_eef_quat"]),
            width=float(q[0] - q[1]),
            obj=obj[pos],
            obj_rot=_rotation(obj[quat]),
        )

    @property
    def eef_yaw(self) -> float:
        m = self.eef_rot.as_matrix()
        return math.atan2(m[1, 0], m[0, 0])

    @property
    def obj_yaw(self) -> float:
        m = self.obj_rot.as_matrix()
        return math.atan2(m[1, 0], m[0, 0])


def _rotation(quat_xyzw) -> Rotation:
    q = np.asarray(quat_xyzw, np.float64)
    return Rotation.from_quat(q) if np.linalg.norm(q) > 1e-6 else Rotation.identity()


def nearest_yaw(yaw: float, reference: float, period: float) -> float:
    """The angle equal to `yaw` modulo `period` that is closest to `reference`."""
    return reference + (yaw - reference + period / 2) % period - period / 2


@dataclasses.dataclass
class Phase:
    name: str
    target: Callable[[Scene], np.ndarray]  # gripper site target, recomputed every step
    grip: float = -1.0  # -1 open, +1 closed
    yaw: Callable[[Scene], float] | None = None  # gripper yaw target (None: hold the current yaw)
    tol: float = 0.01  # reached when within this distance (m)
    hold: int = 0  # steps to stay after reaching (e.g. while the fingers close)
    slow: float = 1.0  # speed factor for this phase
    timeout: int = 80  # the operator moves on after this many steps (at full speed; slower operators wait longer)
    holding: bool = False  # the object should be in the hand: losing it triggers a retry
    descent: bool = False  # a hesitant operator may stop short before this phase
    on_timeout: str | None = None  # phase to go back to when this one times out unreached (a small correction)


Plan = Callable[[Scene, Style, np.random.Generator], list[Phase]]


def _grasp_phases(grasp: Callable[[Scene], np.ndarray], yaw: Callable[[Scene], float], style: Style,
                  rng: np.random.Generator, lift_z: float) -> list[Phase]:
    """Above the grasp point, down, close, up to `lift_z`: the start of every plan."""
    up = np.array([0.0, 0.0, style.approach_height])
    return [
        Phase("approach", lambda s: grasp(s) + up, yaw=yaw, tol=0.02),
        Phase("descend", grasp, yaw=yaw, tol=0.01, slow=0.6, timeout=40, descent=True),
        Phase("close", lambda s: s.eef, grip=1.0, yaw=yaw, tol=np.inf, hold=int(rng.integers(6, 12))),
        Phase("lift", lambda s: np.r_[s.eef[:2], lift_z], grip=1.0, tol=0.02, slow=0.7, holding=True),
    ]


def lift_plan(scene: Scene, style: Style, rng: np.random.Generator) -> list[Phase]:
    offset = np.r_[style.grasp_offset, -0.005]
    return _grasp_phases(
        lambda s: s.obj + offset,
        lambda s: nearest_yaw(s.obj_yaw, s.eef_yaw, math.pi / 2) + style.yaw_error,
        style, rng, lift_z=TABLE_Z + rng.uniform(0.12, 0.2),
    )


def can_plan(scene: Scene, style: Style, rng: np.random.Generator) -> list[Phase]:
    offset = np.r_[style.grasp_offset, rng.uniform(0.0, 0.02)]
    carry_z = rng.uniform(0.96, 1.02)  # higher is out of the arm's comfortable reach above the far bin
    drop_z = rng.uniform(0.9, 0.94)
    place = CAN_BIN_XY + rng.uniform(-0.02, 0.02, 2)
    keep_yaw = scene.eef_yaw + style.yaw_error

    def over_bin(z: float) -> Callable[[Scene], np.ndarray]:
        return lambda s: np.r_[place + (s.eef - s.obj)[:2], z]

    return _grasp_phases(lambda s: s.obj + offset, lambda s: keep_yaw, style, rng, lift_z=carry_z) + [
        Phase("carry", over_bin(carry_z), grip=1.0, tol=0.02, holding=True),
        Phase("lower", over_bin(drop_z), grip=1.0, tol=0.015, slow=0.6, timeout=40, holding=True, descent=True),
        Phase("release", lambda s: s.eef, grip=-1.0, tol=np.inf, hold=int(rng.integers(4, 10))),
        Phase("retreat", lambda s: np.r_[s.eef[:2], carry_z], grip=-1.0, tol=0.02, timeout=30),
    ]


def square_plan(scene: Scene, style: Style, rng: np.random.Generator) -> list[Phase]:
    along = NUT_HANDLE_X + style.grasp_offset[0]
    carry_z = rng.uniform(1.05, 1.12)

    def handle(s: Scene) -> np.ndarray:
        return s.obj + s.obj_rot.apply([along, 0.0, 0.0]) + np.array([0.0, 0.0, -0.002])

    def grasp_yaw(s: Scene) -> float:  # fingers close across the handle bar
        return nearest_yaw(s.obj_yaw, s.eef_yaw, math.pi) + style.yaw_error

    def square_up(s: Scene) -> float:
        """Turn the hand so that the nut's sides line up with the peg's, with the handle not pointing
        away from the robot (+x): holding it there would put the hand beyond the arm's reach."""
        turns = [math.remainder(k * math.pi / 2 - s.obj_yaw, 2 * math.pi) for k in (1, 2, 3)]  # handle +y, -x, -y
        return s.eef_yaw + min(turns, key=abs)

    def over_peg(z: Callable[[Scene], float]) -> Callable[[Scene], np.ndarray]:
        return lambda s: np.r_[PEG_XY + (s.eef - s.obj)[:2], z(s)]

    return _grasp_phases(handle, grasp_yaw, style, rng, lift_z=carry_z) + [
        Phase("carry", over_peg(lambda s: carry_z), grip=1.0, yaw=square_up, tol=0.02, holding=True),
        Phase("align", over_peg(lambda s: 1.0 + s.eef[2] - s.obj[2]), grip=1.0, yaw=square_up, tol=0.004,
              hold=int(rng.integers(2, 6)), slow=0.4, holding=True),
        Phase("insert", over_peg(lambda s: TABLE_Z + 0.02 + s.eef[2] - s.obj[2]), grip=1.0, yaw=square_up,
              tol=0.01, slow=0.4, timeout=50, holding=True, descent=True, on_timeout="align"),
        Phase("release", lambda s: s.eef, grip=-1.0, tol=np.inf, hold=int(rng.integers(4, 10))),
        Phase("retreat", lambda s: np.r_[s.eef[:2], carry_z], grip=-1.0, tol=0.02, timeout=40),
    ]


PLANS: dict[str, Plan] = {"lift": lift_plan, "can": can_plan, "square": square_plan}
LOST_DISTANCE = {"lift": 0.05, "can": 0.07, "square": 0.09}  # object centre this far from the hand = dropped


class WaypointExpert:
    """A robosuite expert for one task and one operator (see module docstring)."""

    def __init__(self, task: str, operator: Operator):
        self.task, self.op = task, operator
        self.operator = operator.name
        self._plan = PLANS[task]
        self._rng = np.random.default_rng(0)

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None:
        self._rng = rng
        self.style = self.op.sample(rng)
        self.retries = 0
        self._noise = CorrelatedNoise(rng, 3, self.style.noise, self.style.noise_corr)
        self._start_plan(Scene.from_obs(obs, self.task), self.style)

    def _start_plan(self, scene: Scene, style: Style) -> None:
        phases = self._plan(scene, style, self._rng)
        self.phases = []
        for phase in phases:  # hesitation: stop short above a descent, wait, then go on
            if phase.descent and self._rng.random() < style.hesitate_prob:
                lift = np.array([0.0, 0.0, self._rng.uniform(0.03, 0.06)])
                self.phases.append(dataclasses.replace(
                    phase, name=f"hesitate-{phase.name}", target=lambda s, f=phase.target, d=lift: f(s) + d,
                    tol=0.02, hold=int(self._rng.integers(3, 12)), descent=False))
            self.phases.append(phase)
        self.corrections = 0
        self._enter(0)

    def _enter(self, index: int) -> None:
        self.index, self.steps, self.held = index, 0, 0
        self.pause = int(self._rng.integers(*self.style.pause_steps)) if self._rng.random() < self.style.pause_prob else 0

    def _retry(self, scene: Scene) -> None:
        """Start over from where the object is now, more carefully (the grasp offset shrinks)."""
        self.retries += 1
        calmer = dataclasses.replace(self.style, grasp_offset=self.style.grasp_offset * 0.3, yaw_error=0.0)
        self._start_plan(scene, calmer)

    @property
    def phase(self) -> str:
        return self.phases[self.index].name if self.index < len(self.phases) else "done"

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        scene = Scene.from_obs(obs, self.task)
        if self.index >= len(self.phases):
            if self.retries < MAX_RETRIES:
                self._retry(scene)
            else:  # out of retries: stay put with an open hand until the horizon
                return np.r_[np.zeros(6), -1.0].astype(np.float32)
        phase = self.phases[self.index]
        if phase.holding and np.linalg.norm(scene.obj - scene.eef) > LOST_DISTANCE[self.task] and self.retries < MAX_RETRIES:
            self._retry(scene)
            phase = self.phases[self.index]
        if self.pause > 0:
            self.pause -= 1
            return self._action(scene, scene.eef, None, phase.grip, 0.0, phase.slow)
        target = phase.target(scene)
        yaw = phase.yaw(scene) if phase.yaw else None
        self.steps += 1
        if np.linalg.norm(target - scene.eef) < phase.tol:
            self.held += 1
        if self.held > phase.hold:
            self._enter(self.index + 1)
        elif self.steps >= phase.timeout / self.style.speed:
            names = [p.name for p in self.phases]
            if phase.on_timeout in names and self.corrections < MAX_CORRECTIONS:
                self.corrections += 1
                self._enter(names.index(phase.on_timeout))
            else:
                self._enter(self.index + 1)
        return self._action(scene, target, yaw, phase.grip, self.style.speed * phase.slow, phase.slow)

    def hold(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Keep a solved task solved: finish the plan's phase under way (lift: on up to the lift height, as an
        operator does), then stay where the hand is with the gripper as the last phase had it."""
        if self.index < len(self.phases):
            return self.act(obs)
        scene = Scene.from_obs(obs, self.task)
        phase = self.phases[-1]
        return self._action(scene, scene.eef, None, phase.grip, 0.0, phase.slow)

    def _action(self, scene: Scene, target: np.ndarray, yaw: float | None, grip: float, speed: float,
                steadiness: float) -> np.ndarray:
        move = POS_GAIN * (target - scene.eef) / OSC_MAX_DELTA
        norm = np.linalg.norm(move)
        if norm > speed:
            move *= speed / norm
        move = move + self._noise() * steadiness  # slow, fine phases are also steadier
        desired = Rotation.from_euler("z", scene.eef_yaw if yaw is None else yaw) * DOWN
        turn = (desired * scene.eef_rot.inv()).as_rotvec() / OSC_MAX_ROT
        action = np.r_[move, np.clip(turn, -0.5, 0.5), grip]
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def make_robosuite_expert(task: str, operator: str) -> WaypointExpert:
    return WaypointExpert(task, OPERATORS[operator])
