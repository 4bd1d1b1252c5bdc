import numpy as np
import pytest

from postbc.envs.chunking import ActionChunkWrapper
from postbc.envs.testing import make_fake_env


def test_chunk_executes_all_actions_and_sums_rewards():
    env = ActionChunkWrapper(make_fake_env(horizon=50), chunk=3)
    env.reset(seed=0)
    goal = env.unwrapped.goal
    obs, reward, term, trunc, info = env.step(np.zeros((3, 1), np.float32))
    assert info["env_steps"] == 3 and env.unwrapped.t == 3
    assert reward == 0.0 and not (term or trunc or info["success"])
    assert obs["goal"][0] == pytest.approx(goal)
    assert env.action_space.shape == (3, 1)


def test_chunk_stops_at_success_and_reports_it():
    env = ActionChunkWrapper(make_fake_env(horizon=50), chunk=8)
    env.reset(seed=1)
    env.unwrapped.goal = 0.5  # two steps of +1 reach it exactly
    obs, reward, term, trunc, info = env.step(np.ones((8, 1), np.float32))
    assert info["env_steps"] == 2 and info["success"] and term
    assert reward == 1.0 and info["step_rewards"] == [0.0, 1.0]
    assert obs["pos"][0] == pytest.approx(0.5)


def test_chunk_stops_at_horizon():
    env = ActionChunkWrapper(make_fake_env(horizon=5), chunk=4)
    env.reset(seed=2)
    env.unwrapped.goal = 5.0  # unreachable
    _, _, _, trunc, info = env.step(np.zeros((4, 1), np.float32))
    assert not trunc and info["env_steps"] == 4
    _, _, _, trunc, info = env.step(np.zeros((4, 1), np.float32))
    assert trunc and info["env_steps"] == 1 and env.unwrapped.t == 5


@pytest.mark.parametrize("shape", [(5, 1), (2, 2), (1,), (0, 1)])
def test_chunk_refuses_wrong_shapes(shape):
    env = ActionChunkWrapper(make_fake_env(), chunk=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected \(n, 1\)"):
        env.step(np.zeros(shape, np.float32))
