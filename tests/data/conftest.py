"""Small synthetic robomimic files for the data tests."""

import numpy as np
import pytest

from postbc.data.robomimic import Demo, write_demos

ENV_ARGS = {"env_name": "toy", "type": "toy", "env_kwargs": {"task": "toy"}}
OBS_DIMS = {"pos": 2, "vel": 3}


def make_demo(length: int, seed: int, name: str = "", act_dim: int = 2) -> Demo:
    rng = np.random.default_rng(seed)
    obs = {k: rng.normal(size=(length + 1, d)).astype(np.float32) for k, d in OBS_DIMS.items()}
    rewards = np.zeros(length, np.float32)
    rewards[-1] = 1.0
    return Demo(
        obs={k: v[:-1] for k, v in obs.items()},
        next_obs={k: v[1:] for k, v in obs.items()},
        actions=rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32),
        rewards=rewards,
        dones=(np.arange(length) == length - 1).astype(np.int64),
        attrs={"operator": f"op{seed % 2}", "seed": seed},
        name=name,
    )


@pytest.fixture
def demo_file(tmp_path):
    """Five demos of lengths 3..7 named demo_0..demo_4, a mask 'odd' with demo_1 and demo_3."""
    path = tmp_path / "demos.hdf5"
    demos = [make_demo(3 + i, seed=i) for i in range(5)]
    write_demos(path, demos, ENV_ARGS, masks={"odd": ["demo_1", "demo_3"]})
    return path, demos
