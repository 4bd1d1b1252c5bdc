"""Operators: the styles in which scripted demonstrators act, so that data looks multi-human.

robomimic's multi-human datasets come from six operators of mixed skill; their demos differ in
speed, approach, grasp point, pauses, hesitation and corrections. An `Operator` holds the
ranges such a style draws from; `Operator.sample(rng)` fixes one episode's concrete `Style`
(so even one operator's demos differ from each other). The same operators drive the robosuite
waypoint experts and the Meta-World experts.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Operator:
    name: str
    speed: tuple[float, float]  # max translation action magnitude (fraction of full scale)
    noise: float  # std of the temporally correlated action noise
    noise_corr: float  # AR(1) coefficient of that noise (0 white, close to 1 slow drift)
    pause_prob: float  # probability of stopping for a while when a new phase starts
    pause_steps: tuple[int, int]
    hesitate_prob: float  # probability, per descent, of stopping short and backing off first
    approach_height: tuple[float, float]  # m above the grasp point before descending
    grasp_offset: float  # max horizontal offset of the grasp point from the nominal one (m)
    yaw_jitter: float  # std of the grasp yaw error (rad)
    blunder_prob: float  # per episode: a sloppy grasp (offset x3) that often needs a retry or fails

    def sample(self, rng: np.random.Generator) -> "Style":
        blunder = bool(rng.random() < self.blunder_prob)
        offset = rng.uniform(-1, 1, 2) * self.grasp_offset * (3.0 if blunder else 1.0)
        return Style(
            operator=self.name,
            speed=float(rng.uniform(*self.speed)),
            noise=self.noise,
            noise_corr=self.noise_corr,
            pause_prob=self.pause_prob,
            pause_steps=self.pause_steps,
            hesitate_prob=self.hesitate_prob,
            approach_height=float(rng.uniform(*self.approach_height)),
            grasp_offset=offset,
            yaw_error=float(rng.normal(0.0, self.yaw_jitter)),
            blunder=blunder,
        )


@dataclasses.dataclass(frozen=True)
class Style:
    """One episode's concrete style, drawn from an `Operator`."""

    operator: str
    speed: float
    noise: float
    noise_corr: float
    pause_prob: float
    pause_steps: tuple[int, int]
    hesitate_prob: float
    approach_height: float
    grasp_offset: np.ndarray  # (2,) xy
    yaw_error: float
    blunder: bool


OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in (
        Operator("precise", speed=(0.8, 1.0), noise=0.02, noise_corr=0.5, pause_prob=0.05, pause_steps=(2, 5),
                 hesitate_prob=0.0, approach_height=(0.05, 0.08), grasp_offset=0.003, yaw_jitter=0.03,
                 blunder_prob=0.0),
        Operator("quick", speed=(0.9, 1.0), noise=0.08, noise_corr=0.7, pause_prob=0.0, pause_steps=(1, 3),
                 hesitate_prob=0.05, approach_height=(0.03, 0.06), grasp_offset=0.006, yaw_jitter=0.06,
                 blunder_prob=0.1),
        Operator("careful", speed=(0.55, 0.7), noise=0.02, noise_corr=0.5, pause_prob=0.3, pause_steps=(3, 12),
                 hesitate_prob=0.2, approach_height=(0.10, 0.15), grasp_offset=0.004, yaw_jitter=0.03,
                 blunder_prob=0.0),
        Operator("hesitant", speed=(0.6, 0.85), noise=0.05, noise_corr=0.7, pause_prob=0.4, pause_steps=(4, 15),
                 hesitate_prob=0.6, approach_height=(0.06, 0.12), grasp_offset=0.006, yaw_jitter=0.05,
                 blunder_prob=0.05),
        Operator("shaky", speed=(0.7, 0.95), noise=0.1, noise_corr=0.6, pause_prob=0.1, pause_steps=(2, 8),
                 hesitate_prob=0.1, approach_height=(0.05, 0.10), grasp_offset=0.008, yaw_jitter=0.08,
                 blunder_prob=0.1),
    )
}


class CorrelatedNoise:
    """AR(1) Gaussian noise with stationary std `std`: smooth drifts rather than jitter."""

    def __init__(self, rng: np.random.Generator, dim: int, std: float, corr: float):
        self.rng, self.std, self.corr = rng, std, corr
        self.value = rng.normal(0.0, std, dim) if std > 0 else np.zeros(dim)

    def __call__(self) -> np.ndarray:
        if self.std > 0:
            fresh = self.rng.normal(0.0, self.std * np.sqrt(1 - self.corr**2), self.value.shape)
            self.value = self.corr * self.value + fresh
        return self.value
