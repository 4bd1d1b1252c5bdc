"""What a scripted demonstrator ("operator") is: something that acts in an env like a human would."""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Expert(Protocol):
    """A scripted demonstrator for one task.

    `reset` is called after every `env.reset` with a generator the expert must draw all of its
    randomness from (so a collection is reproducible from its seed); `act` maps the env's dict
    observation to an action in [-1, 1]^act_dim. `operator` names who is demonstrating; for a
    mixture of operators it names the one chosen at the last `reset`.
    """

    operator: str

    def reset(self, rng: np.random.Generator, obs: Mapping[str, np.ndarray]) -> None: ...

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray: ...
