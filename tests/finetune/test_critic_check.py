"""Best-of-N acts only with a critic that ranks held-out rollouts better than chance."""

import numpy as np
import pytest

from postbc.cli import main
from postbc.finetune.best_of_n import load_best_of_n_policy
from postbc.finetune.command import run
from postbc.finetune.config import BestOfNConfig, FinetuneConfig, IQLConfig
from postbc.finetune.critic_check import (auc, check_critic, hanley_mcneil_interval, rank_among, rollout_counts,
                                          split_episodes, unrankable_reason)
from postbc.finetune.rollouts_file import save_rollouts
from postbc.io.runs import read_metrics

from .conftest import NoisePuppet


def _episodes(successes: int, failures: int, chunks: int = 3):
    """Rows of `chunks` chunks per episode; a successful episode is rewarded in its last chunk."""
    labels = [True] * successes + [False] * failures
    episode = np.repeat(np.arange(len(labels)), chunks)
    rewards = np.zeros(len(episode), np.float32)
    for k, ok in enumerate(labels):
        if ok:
            rewards[k * chunks + chunks - 1] = 1.0
    return rewards, episode, np.array([labels[k] for k in episode])


def test_auc_and_its_interval_by_hand():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auc(np.array([1.0, 1.0, 1.0]), np.array([1, 0, 0])) == 0.5  # ties count half
    low, high = hanley_mcneil_interval(0.75, 2, 2)
    assert low < 0.5 < 0.75 < high  # two episodes per class prove nothing


def test_a_critic_that_separates_the_episodes_passes_and_a_random_one_does_not():
    rewards, episode, label = _episodes(30, 30)
    rng = np.random.default_rng(0)
    good = check_critic(label + 0.5 * rng.standard_normal(len(label)), rewards, episode)
    assert good.passed and good.auc > 0.8 and "better than chance" in good.reason
    noise = check_critic(rng.standard_normal(len(label)), rewards, episode)
    assert not noise.passed and noise.auc_low < 0.5 and "not better than chance" in noise.reason


def test_rank_among_by_hand():
    ranks = rank_among(np.array([1.0, 0.0]), np.array([[0.0, 2.0, 1.0, 0.5], [1.0, 1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(ranks, [0.625, 0.0])  # 2 below and 1 tie of 4; none below


def test_a_critic_that_ranks_states_but_not_actions_does_not_pass():
    """The pick-place failure: Q tells successful episodes' states apart, but its argmax over actions is noise."""
    rewards, episode, label = _episodes(30, 30)
    rng = np.random.default_rng(0)
    q = label + 0.5 * rng.standard_normal(len(label))  # ranks the states well
    knows_actions = np.clip(np.where(label, 0.7, 0.4) + 0.1 * rng.standard_normal(len(label)), 0, 1)
    good = check_critic(q, rewards, episode, knows_actions, episode)
    assert good.passed and good.action_auc > 0.9
    blind = check_critic(q, rewards, episode, rng.uniform(0, 1, len(label)), episode)
    assert not blind.passed and blind.auc_low > 0.5 and blind.action_auc_low < 0.5
    assert "cannot tell good actions from bad ones" in blind.reason
    unchecked = check_critic(q, rewards, episode)
    assert unchecked.passed and "not checked" in unchecked.reason


@pytest.mark.parametrize("successes,failures,words", [(20, 0, "all 20 rollout episodes succeeded"),
                                                      (0, 20, "all 20 rollout episodes failed"),
                                                      (1, 20, "at least 2 of each")])
def test_rollouts_without_both_outcomes_cannot_train_or_check_a_critic(successes, failures, words):
    rewards, episode, _ = _episodes(successes, failures)
    assert rollout_counts(rewards, episode) == (successes, failures)
    assert words in unrankable_reason(successes, failures)


def test_the_split_holds_out_episodes_of_both_outcomes_and_keeps_some_of_each_to_fit():
    rewards, episode, label = _episodes(10, 5)
    held = split_episodes(rewards, episode, 0.2, seed=0)
    held_eps = set(episode[held])
    assert {bool(label[episode == k][0]) for k in held_eps} == {True, False}
    assert len(held_eps) == 3  # 2 of 10 successes, 1 of 5 failures
    assert all(len(set(held[episode == k])) == 1 for k in set(episode))  # whole episodes, never part of one


def test_finetune_best_of_n_with_only_successful_rollouts_acts_as_the_pretrained_policy(tmp_path, line_spec, capsys,
                                                                                         monkeypatch):
    """Every rollout succeeded (as with a drawer-open policy at 1.00): the critic must not act."""
    cfg = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "run", algo="best_of_n", steps=40,
                         eval_every=40, eval_episodes=8, num_envs=2, env_backend="sync", quiet=True,
                         best_of_n=BestOfNConfig(rollouts=6, candidates=8, workers=1, iql=IQLConfig(hidden=16)))
    import postbc.finetune.best_of_n as bon

    monkeypatch.setattr(bon, "collect_rollouts", lambda *a, **k: _fake_rollouts(6, success=True))
    run(cfg, base=NoisePuppet(), spec=line_spec)
    out = capsys.readouterr().out
    assert "6 successful and 0 failed episodes" in out and "acts as the pretrained policy" in out
    rows = read_metrics(cfg.out)
    assert float(rows[-1]["acts_best_of_n"]) == 0.0
    assert load_best_of_n_policy(cfg.out, NoisePuppet()).candidates == 1  # served: Best-of-1, the pretrained policy


def _fake_rollouts(episodes: int, success: bool):
    n = episodes * 2
    obs = np.zeros((n, 2), np.float32)
    return {"obs": obs, "actions": np.zeros((n, 2, 1), np.float32),
            "rewards": np.tile([0.0, float(success)], episodes).astype(np.float32), "next_obs": obs.copy(),
            "dones": np.tile([0.0, float(success)], episodes).astype(np.float32),
            "episode": np.repeat(np.arange(episodes), 2).astype(np.int64)}


def test_best_of_n_fit_refuses_rollouts_without_a_failure_and_writes_nothing(tmp_path, capsys):
    save_rollouts(tmp_path / "r.h5", _fake_rollouts(10, success=True), obs_keys=("pos", "goal"), chunk=2, act_dim=1,
                  task="line")
    assert main(["best-of-n-fit", "--rollouts", str(tmp_path / "r.h5"), "--out", str(tmp_path / "fit"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "10 episodes, 10 successful and 0 failed" in captured.out
    assert "all 10 rollout episodes succeeded" in captured.err and "nothing was written" in captured.err
    assert not (tmp_path / "fit").exists()


def test_inspect_describes_a_rollouts_file(tmp_path, capsys):
    rewards, episode, _ = _episodes(3, 2)
    n = len(episode)
    data = {"obs": np.zeros((n, 2), np.float32), "actions": np.zeros((n, 2, 1), np.float32), "rewards": rewards,
            "next_obs": np.zeros((n, 2), np.float32), "dones": np.zeros(n, np.float32), "episode": episode}
    save_rollouts(tmp_path / "rollouts.h5", data, obs_keys=("pos", "goal"), chunk=2, act_dim=1, task="line")
    assert main(["inspect", str(tmp_path / "rollouts.h5")]) == 0
    out = capsys.readouterr().out
    assert "Best-of-N rollouts" in out and "episodes: 5 (3 successful, 2 failed), chunks: 15" in out


def test_a_foreign_hdf5_file_is_described_by_what_it_holds(tmp_path, capsys):
    import h5py

    with h5py.File(tmp_path / "foo.h5", "w") as f:
        f["foo"] = np.zeros(3)
    assert main(["inspect", str(tmp_path / "foo.h5")]) == 2
    assert "top-level entries: foo (dataset)" in capsys.readouterr().err
    assert main(["best-of-n-fit", "--rollouts", str(tmp_path / "foo.h5"), "--out", str(tmp_path / "fit")]) == 2
    err = capsys.readouterr().err
    assert "is not a rollouts file" in err and err.count("next_obs") == 1  # the needed names, once
