"""Training episodes that run to the horizon (`RunToHorizon`), alone and inside vector envs."""

import numpy as np
import pytest

from postbc.envs.episodes import RunToHorizon
from postbc.envs.testing import fake_task_spec, make_fake_env
from postbc.envs.vector import VectorEnv
from postbc.errors import PostBCError


def test_success_does_not_end_the_episode_and_reward_says_whether_solved_now():
    env = RunToHorizon(make_fake_env(horizon=50), horizon=8)
    env.reset(seed=0)
    goal = env.unwrapped.goal
    towards = np.sign(goal)
    rewards, ends = [], []
    for t in range(8):
        # walk to the goal, then away from it
        near = abs(env.unwrapped.pos - goal) < 0.1
        action = [0.0] if near and t < 6 else ([towards] if t < 6 else [-towards])
        _, r, term, trunc, info = env.step(action)
        rewards.append(r)
        ends.append((term, trunc))
        assert r == float(info["success"])
    assert ends[:-1] == [(False, False)] * 7 and ends[-1] == (True, False)  # the horizon is terminal
    assert 1.0 in rewards  # solved on some step and the episode went on


def _goal(env):
    return env.unwrapped.goal


def _pos(env):
    return env.unwrapped.pos


def test_vector_env_counts_an_episode_solved_at_any_step_as_a_success():
    spec = fake_task_spec(horizon=12)
    with VectorEnv(spec, 2, seed=3, chunk=4, backend="sync", episode_end="horizon") as vec:
        vec.reset()
        lengths = []
        for _ in range(3):  # 12 steps = 3 chunks of 4: every episode runs its full horizon
            goal = vec.call(_goal)
            pos = vec.call(_pos)
            a = np.clip(np.asarray(goal) - np.asarray(pos), -1, 1)  # 4 steps of 0.25 a land on the goal
            _, _, term, trunc, infos = vec.step(np.repeat(a[:, None, None], 4, axis=1).astype(np.float32))
            assert all(i["env_steps"] == 4 for i in infos)
            lengths += [i["episode"]["length"] for i in infos if "episode" in i]
        assert lengths == [12, 12] and term.all() and not trunc.any()
        assert all(i["episode"]["success"] for i in infos)


def test_an_unknown_episode_end_is_refused():
    with pytest.raises(PostBCError, match="episode_end='never' is not allowed; choose one of 'success', 'horizon'|"
                                          "choose one of success, horizon"):
        VectorEnv(fake_task_spec(), 1, backend="sync", episode_end="never")
