"""critic_returns: real returns rebuilt from a replay, against a critic's values."""

import numpy as np
import pytest
import torch

from postbc.errors import PostBCError
from postbc.finetune.critic_returns import discounted_returns, positions, returns_by_position
from postbc.finetune.dsrl import DSRL

from .conftest import NoisePuppet
from .test_training import FAST_SAC


def test_returns_are_cut_at_each_terminal_transition():
    reward = np.array([-1.0, -1.0, 0.0, -2.0, -1.0])
    done = np.array([0, 0, 1, 0, 1.0])
    np.testing.assert_allclose(discounted_returns(reward, done, 0.5), [-1.5, -1.0, 0.0, -2.5, -1.0])
    assert positions(done).tolist() == [0, 1, 2, 0, 1]


def test_rebuilds_two_interleaved_envs_and_refuses_a_broken_stream():
    algo = DSRL(FAST_SAC, NoisePuppet(), 2, seed=0)
    # env 0: s0 -> s1 -> s2 (terminal); env 1: t0 -> t1 (terminal) -> t2 -> t3 (terminal)
    s = torch.tensor([[0.0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2], [1, 3]])
    rows = [(0, 1, -1.0, 0), (3, 4, -2.0, 0), (1, 2, -1.0, 1), (4, 5, 0.0, 1), (5, 6, -1.0, 0), (6, 3, -3.0, 1)]
    add = lambda i, j, r, d: algo.replay.add(obs=s[i:i + 1], action=torch.zeros(1, 2), reward=torch.tensor([r]),
                                             next_obs=s[j:j + 1], done=torch.tensor([float(d)]))
    for row in rows[:4]:
        add(*row)
    out = returns_by_position(algo, num_envs=2, gamma=0.9)
    np.testing.assert_allclose(out["mc"], [-1.9, -2.0, -1.0, 0.0])
    assert out["position"].tolist() == [0, 0, 1, 1] and out["q_data"].shape == (4,) == out["q_actor"].shape
    add(*rows[4])  # env 0: 5 -> 6, not terminal
    add(*rows[5])
    add(0, 1, -1.0, 0)  # env 0 goes on from s0 instead of s6: not continuous
    with pytest.raises(PostBCError, match="not continuous"):
        returns_by_position(algo, num_envs=2, gamma=0.9)


def test_solved_after_success_counts_the_steps_a_solved_task_is_lost_again():
    from postbc.finetune.critic_returns import solved_after_success

    # one env, chunks of 2 steps; episode 1: unsolved, solved, half lost, lost (done); episode 2: never solved;
    # episode 3: solved at once and held
    reward = np.array([-2, 0, -1, -2, -2, -2, 0, 0], float)
    done = np.array([0, 0, 0, 1, 0, 1, 0, 1], float)
    out = solved_after_success(reward, done, num_envs=1, chunk=2)
    assert out == {"episodes": 3, "succeeded": 2, "unsolved_after_success": 3 / 6, "held_to_horizon": 1}


def test_a_run_whose_episodes_end_at_success_is_refused():
    import dataclasses

    algo = DSRL(dataclasses.replace(FAST_SAC, episode_end="success", backup_entropy=False), NoisePuppet(), 2, seed=0)
    with pytest.raises(PostBCError, match="end at success"):
        returns_by_position(algo, num_envs=2, gamma=0.9)


def test_a_run_that_bootstraps_at_the_horizon_is_refused():
    import dataclasses

    algo = DSRL(dataclasses.replace(FAST_SAC, horizon_bootstrap=True), NoisePuppet(), 2, seed=0)
    with pytest.raises(PostBCError, match="horizon-bootstrap"):
        returns_by_position(algo, num_envs=2, gamma=0.9)


def test_episode_index_cuts_at_terminals_and_at_horizon_resets():
    from postbc.finetune.critic_returns import episode_index

    # env 0: a -> b (terminal), c -> d, then the horizon: the env resets to e -> f; env 1: g -> h -> i
    s = {k: [float(i), 0.0] for i, k in enumerate("abcdefghi")}
    rows = [("a", "b", 1, "g", "h", 0), ("c", "d", 0, "h", "i", 0), ("e", "f", 0, "i", "g", 1)]
    obs, next_obs, done = [], [], []
    for o0, n0, d0, o1, n1, d1 in rows:  # vector order: env 0, env 1
        obs += [s[o0], s[o1]]
        next_obs += [s[n0], s[n1]]
        done += [d0, d1]
    got = episode_index(np.array(obs), np.array(next_obs), np.array(done, float), num_envs=2)
    assert got.tolist() == [0, 3, 1, 3, 2, 3]
