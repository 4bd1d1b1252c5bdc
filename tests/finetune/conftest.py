"""Stand-ins for the pretrained policy: tiny, fast, and with known behaviour."""

from __future__ import annotations

import pytest

from postbc.envs.testing import NoisePuppet, fake_task_spec  # noqa: F401 (the tests import it from here)


@pytest.fixture
def puppet():
    return NoisePuppet()


@pytest.fixture
def line_spec():
    return fake_task_spec("line", horizon=16)
