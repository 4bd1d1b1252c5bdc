"""Stand-ins for the pretrained policy: tiny, fast, and with known behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from postbc.envs.testing import fake_task_spec


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


@pytest.fixture
def puppet():
    return NoisePuppet()


@pytest.fixture
def line_spec():
    return fake_task_spec("line", horizon=16)
