"""`postbc collect`: scripted demonstrations of a registered task into a robomimic-style HDF5 file."""

from __future__ import annotations

import dataclasses
import signal
import sys
from pathlib import Path

from postbc.io.config import require_positive


@dataclasses.dataclass
class CollectConfig:
    task: str
    """registered task name (e.g. toy, lift, can, square)."""
    episodes: int
    """number of successful demos to write (failed episodes are dropped)."""
    out: Path
    """output .hdf5 file; refused if it exists, unless --overwrite."""
    seed: int = 0
    """seed for env resets and the expert's randomness (same seed, same file)."""
    operator: str = "mixed"
    """scripted operator; "mixed" draws one of the task's operators per episode."""
    overwrite: bool = False
    """replace an existing output file."""
    max_attempts: int | None = None
    """stop with an error after this many episodes (default: 2 * episodes + 10)."""
    camera: tuple[str, ...] = ()
    """also store this camera's view as uint8 images under `<camera>_image` (robomimic's key names); repeat for
    several. robosuite: agentview, robot0_eye_in_hand, ...; Meta-World and mt10: corner, topview, gripperPOV, ...
    Rendered headless (MUJOCO_GL=egl unless set)."""
    image_size: int = 84
    """side of the stored square images in pixels (robomimic: 84)."""
    hold_steps: int = 0
    """after the first solved step, the expert keeps the task solved (finishes the phase under way, then holds still)
    until it has stayed solved this many more steps (robosuite's demo collection, which robomimic's datasets come
    from, records 10); 0: demos end at the first solved step. robosuite tasks."""
    quiet: bool = False
    """no progress bar."""

    def __post_init__(self) -> None:
        require_positive("episodes", self.episodes)
        if self.max_attempts is not None:
            require_positive("max_attempts", self.max_attempts)
        require_positive("image_size", self.image_size)
        require_positive("hold_steps", self.hold_steps, allow_zero=True)
        self.camera = tuple(self.camera)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(cfg: CollectConfig) -> None:
    from postbc.experts.collect import collect

    # `kill` (SIGTERM) stops collection like Ctrl-C does: the demo being written is dropped cleanly
    # and every finished demo stays in the file.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        result = collect(cfg.task, cfg.episodes, cfg.out, cfg.seed, operator=cfg.operator, overwrite=cfg.overwrite,
                         max_attempts=cfg.max_attempts, cameras=cfg.camera, image_size=cfg.image_size,
                         hold_steps=cfg.hold_steps, quiet=cfg.quiet)
    except KeyboardInterrupt:
        print(f"collection stopped; {cfg.out} keeps the demos finished so far "
              f"(`postbc inspect {cfg.out}` lists them)", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    per_operator = ", ".join(f"{k} {v}" for k, v in sorted(result.operators.items()))
    print(f"wrote {result.demos} demos of '{cfg.task}' to {result.path} "
          f"({result.attempts} episodes, expert success {result.expert_success_rate:.0%}; {per_operator})")
