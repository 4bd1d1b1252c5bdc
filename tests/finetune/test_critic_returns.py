"""critic_returns: real returns rebuilt from a replay, against a critic's values."""

import json

import numpy as np
import pytest
import torch

from postbc.errors import PostBCError
from postbc.finetune.critic_returns import discounted_returns, positions, returns_by_position
from postbc.finetune.dsrl import DSRL

from .conftest import NoisePuppet
from .test_serve import SAC as SERVE_SAC
from .test_serve import toy_base_dir  # noqa: F401 (a fixture)
from .test_training import FAST_SAC


def test_returns_are_cut_at_each_terminal_transition():
    reward = np.array([-1.0, -1.0, 0.0, -2.0, -1.0])
    done = np.array([0, 0, 1, 0, 1.0])
    np.testing.assert_allclose(discounted_returns(reward, done, 0.5), [-1.5, -1.0, 0.0, -2.5, -1.0])
    assert positions(done).tolist() == [0, 1, 2, 0, 1]


def test_rebuilds_two_interleaved_envs_and_leaves_out_an_episode_a_resume_cut():
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
    assert out["complete"].all() and out["cuts"] == 0
    add(*rows[4])  # env 0: 5 -> 6, not terminal
    add(*rows[5])
    add(0, 1, -1.0, 0)  # env 0 goes on from s0 instead of s6 (a resume restarted it): that episode was cut
    out = returns_by_position(algo, num_envs=2, gamma=0.9)
    assert out["complete"].tolist() == [True, True, True, True, False, True, False] and out["cuts"] == 1
    np.testing.assert_allclose(out["mc"][:4], [-1.9, -2.0, -1.0, 0.0])
    assert out["position"].tolist() == [0, 0, 1, 1, 0, 0, 0]


def test_a_replay_without_one_whole_episode_is_refused():
    algo = DSRL(FAST_SAC, NoisePuppet(), 2, seed=0)
    for i in range(3):  # one env whose stream breaks off at every step: no terminal transition anywhere
        algo.replay.add(obs=torch.tensor([[float(i), 0.0]]), action=torch.zeros(1, 2), reward=torch.tensor([-1.0]),
                        next_obs=torch.tensor([[float(i), 5.0]]), done=torch.tensor([0.0]))
    with pytest.raises(PostBCError, match="no training episode can be rebuilt whole"):
        returns_by_position(algo, num_envs=1, gamma=0.9)


def test_solved_after_success_counts_the_steps_a_solved_task_is_lost_again():
    from postbc.finetune.critic_returns import solved_after_success

    # one env, chunks of 2 steps; episode 1: unsolved, solved, half lost, lost (done); episode 2: never solved;
    # episode 3: solved at once and held
    reward = np.array([-2, 0, -1, -2, -2, -2, 0, 0], float)
    done = np.array([0, 0, 0, 1, 0, 1, 0, 1], float)
    out = solved_after_success(reward, done, num_envs=1, chunk=2)
    assert out == {"episodes": 3, "succeeded": 2, "unsolved_after_success": 3 / 6, "held_to_horizon": 1}
    # leave out the first episode (a resume cut it): the others are counted as before
    keep = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    out = solved_after_success(reward, done, num_envs=1, chunk=2, keep=keep)
    assert out == {"episodes": 2, "succeeded": 1, "unsolved_after_success": 0.0, "held_to_horizon": 1}


@pytest.mark.parametrize("algo", ["dsrl", "dsrl_na"])
def test_critic_summary_of_a_resumed_toy_run_counts_its_whole_episodes(tmp_path, toy_base_dir, algo):
    """A real DSRL run on the toy task (60-step horizon, chunks of 4: 15 chunks an episode), stopped mid-episode and
    resumed: the episodes in flight at the stop and at the end are left out, the rest are compared."""
    import dataclasses

    from postbc.finetune.command import run
    from postbc.finetune.config import FinetuneConfig
    from postbc.finetune.critic_returns import SUMMARY_FILE, critic_summary, load_dsrl_run

    cfg = FinetuneConfig(checkpoint=toy_base_dir, task="toy", out=tmp_path / "run", algo=algo, steps=400, num_envs=2,
                         checkpoint_every=104, eval_every=400, eval_episodes=2, env_backend="sync", quiet=True,
                         sac=dataclasses.replace(SERVE_SAC, warmup_steps=40, replay_size=1000))
    run(cfg, stop_at=110)  # checkpointed at 104 env steps: 52 steps into each env's first episode
    run(cfg)  # resumed: both envs restart; 148 more steps each: two whole episodes and a partial one
    _, _, algo, _ = load_dsrl_run(cfg.out)
    out = returns_by_position(algo, num_envs=2, gamma=cfg.sac.gamma)
    assert out["cuts"] == 2 and out["complete"].sum() == 4 * 15
    summary = critic_summary(cfg.out)
    assert summary["episodes"] == 4 and summary["env_steps"] == 400
    # the finished run kept the same summary beside it (what a report reads from a sweep record)
    assert json.loads((cfg.out / SUMMARY_FILE).read_text()) == pytest.approx(summary, nan_ok=True)
    assert summary["overestimate"] == pytest.approx(summary["q_data"] - summary["mc"])
    assert summary["solved"] == 0  # the untrained base never reaches the goal: every chunk earned -4, so the mean
    gamma = cfg.sac.gamma  # return over the 15 positions is known
    assert summary["mc"] == pytest.approx(np.mean([-4 * (1 - gamma ** (15 - p)) / (1 - gamma) for p in range(15)]))
    assert np.isfinite(summary["q_data"])
    torch.manual_seed(0)  # the summary's own draws of the actor's noise: the gap is over the 4 last chunks alone
    _, _, algo, _ = load_dsrl_run(cfg.out)
    out = returns_by_position(algo, num_envs=2, gamma=cfg.sac.gamma)
    last = (algo.replay.all()["done"].numpy() > 0.5) & out["complete"]
    assert last.sum() == 4
    assert summary["last_chunk_gap"] == pytest.approx(float(np.mean((out["q_actor"] - out["q_data"])[last])))
    assert summary["last_chunk_gap"] != pytest.approx(summary["actor_gap"])


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
