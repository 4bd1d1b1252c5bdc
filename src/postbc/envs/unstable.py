"""The error a simulator wrapper raises when its state blows up (vector envs replace such an env)."""

from __future__ import annotations

from typing import Mapping

import numpy as np


class SimulationUnstable(RuntimeError):
    """The simulation produced non-finite or flagged-unstable state; the episode cannot go on."""


def check_finite(obs: Mapping[str, np.ndarray], where: str) -> None:
    bad = [k for k, v in obs.items() if not np.isfinite(v).all()]
    if bad:
        raise SimulationUnstable(f"{where}: non-finite values in observation key(s) {bad}")


def mujoco_instability_count(data) -> int:
    """How often MuJoCo found NaN/Inf/huge values in qpos, qvel or qacc of this `MjData` (it then resets
    the state silently and goes on, so this counter is the only trace)."""
    import mujoco

    bad = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)
    return sum(int(data.warning[int(w)].number) for w in bad)
