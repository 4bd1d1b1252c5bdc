"""The shared loop with DSRL-SAC on the line task and a noise-puppet base policy (fast, no pretraining)."""

import dataclasses

import numpy as np

import pytest
import torch

from postbc.envs.testing import fake_task_spec
from postbc.errors import PostBCError
from postbc.finetune.command import run
from postbc.finetune.config import FinetuneConfig, SACConfig
from postbc.io.checkpoint import load_checkpoint
from postbc.io.runs import read_metrics
from postbc.utils import cpu_seconds

from .conftest import NoisePuppet

FAST_SAC = SACConfig(hidden=64, layers=2, activation="relu", batch_size=64, utd=4, warmup_steps=200,
                     init_alpha=0.05, lr=1e-3, replay_size=10_000)
# What the learning tests on the line task use. Its horizon is 8 chunks, so with a terminal horizon a state's
# value depends mostly on the chunks left, which the observation does not show: 4 of 12 seeds then end below
# 0.9, some near the random walk's success (docs/finetuning.md, "The horizon as a time limit"). As a time limit, 12 of 12
# seeds reach 1.0 by 1500 env steps.
LINE_SAC = dataclasses.replace(FAST_SAC, horizon_bootstrap=True)


def _cfg(out, **kw):
    base = dict(checkpoint="puppet", task="line", out=out, steps=1500, num_envs=4, eval_every=500,
                eval_episodes=32, env_backend="sync", quiet=True, sac=FAST_SAC)
    base.update(kw)
    return FinetuneConfig(**base)


def test_dsrl_learns_to_steer_a_random_walk(tmp_path, line_spec):
    """The base policy (w ~ N(0, I)) succeeds ~30% of the time; steering its noise must reach >= 90%."""
    run(_cfg(tmp_path / "run", sac=LINE_SAC), base=NoisePuppet(), spec=line_spec)
    rows = read_metrics(tmp_path / "run")
    assert float(rows[0]["eval_success"]) < 0.6
    assert float(rows[-1]["eval_success"]) >= 0.9
    assert int(rows[-1]["env_steps"]) >= 1500
    tensors, _ = load_checkpoint(tmp_path / "run" / "finetuned")
    assert any(k.startswith("actor.") for k in tensors)
    assert (tmp_path / "run" / "tb").is_dir()


@pytest.mark.parametrize("horizon_bootstrap", [False, True])
def test_the_horizon_is_terminal_unless_it_is_a_time_limit(horizon_bootstrap):
    """Replay keeps where an episode ended; the TD target bootstraps past the horizon only with the option."""
    from postbc.finetune.dsrl import DSRL

    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, utd=1, batch_size=4, horizon_bootstrap=horizon_bootstrap)
    algo = DSRL(cfg, NoisePuppet(), 2, seed=0)
    seen = []
    algo.sac.update = lambda **batch: seen.append(batch["done"].clone()) or {}
    algo.replay.add(obs=torch.zeros(4, 2), action=torch.zeros(4, 2), reward=-torch.ones(4), next_obs=torch.zeros(4, 2),
                    done=torch.ones(4))
    algo.update(env_steps=0)
    assert algo.replay.all()["done"].tolist() == [1.0] * 4
    assert seen[0].tolist() == [0.0 if horizon_bootstrap else 1.0] * 4


def test_dsrl_learns_while_env_worker_processes_step(tmp_path, line_spec):
    """With env worker processes, updates overlap the envs' step (they see the replay one chunk behind)."""
    run(_cfg(tmp_path / "run", env_backend="async", steps=3000, sac=LINE_SAC), base=NoisePuppet(), spec=line_spec)
    assert float(read_metrics(tmp_path / "run")[-1]["eval_success"]) >= 0.85


def test_bf16_updates_learn_as_well_with_dsrl_na(tmp_path, line_spec):
    """DSRL-SAC in bf16: tests/finetune/test_episode_trap.py."""
    sac = dataclasses.replace(LINE_SAC, precision="bf16", utd=2, noise_critic_steps=2)
    cfg = _cfg(tmp_path / "run", algo="dsrl_na", sac=sac, steps=3000)
    run(cfg, base=NoisePuppet(), spec=line_spec)
    assert float(read_metrics(tmp_path / "run")[-1]["eval_success"]) >= 0.9


def test_resume_after_kill_continues_the_curve(tmp_path, line_spec):
    out = tmp_path / "run"
    cfg = _cfg(out, steps=1200, eval_every=200, checkpoint_every=400)
    run(cfg, base=NoisePuppet(), spec=line_spec, stop_at=700)  # killed: rows up to 600 written, checkpoint at 400
    assert [int(r["env_steps"]) // 200 for r in read_metrics(out)] == [0, 1, 2, 3]
    _, meta = load_checkpoint(out / "checkpoints" / "last")
    assert 400 <= meta["env_steps"] < 600 and meta["algo"]["replay"]["size"] > 0
    replay_at_kill, cpu_at_kill = meta["algo"]["replay"]["size"], meta["cpu_time"]
    cpu0 = cpu_seconds()
    run(cfg, base=NoisePuppet(), spec=line_spec)
    resumed_segment = cpu_seconds() - cpu0
    steps = [int(r["env_steps"]) for r in read_metrics(out)]
    assert steps == sorted(set(steps)) and steps[-1] >= 1200
    assert len(steps) == 7  # 0, ~200, ..., ~1200, no duplicates
    _, meta = load_checkpoint(out / "checkpoints" / "last")
    assert meta["algo"]["replay"]["size"] > replay_at_kill  # the buffer was carried over, not restarted
    assert int(read_metrics(out)[-1]["updates"]) == meta["updates"]
    cpu = [float(r["cpu_time"]) for r in read_metrics(out)]
    assert cpu == sorted(cpu) and cpu_at_kill > 0
    assert cpu[-1] > resumed_segment and cpu[-1] >= cpu_at_kill  # the whole run's CPU, not the last segment's


def test_a_run_killed_by_an_older_version_resumes_with_its_columns_and_an_unknown_cpu_time(tmp_path, line_spec,
                                                                                           written_before_cpu_time):
    """Runs started before `cpu_time` was logged (a grid part-way) must resume: no new column, CPU time NaN."""
    out = tmp_path / "run"
    cfg = _cfg(out, steps=1200, eval_every=200, checkpoint_every=400)
    run(cfg, base=NoisePuppet(), spec=line_spec, stop_at=700)
    old_columns = written_before_cpu_time(out, out / "checkpoints" / "last.json")
    run(cfg, base=NoisePuppet(), spec=line_spec)
    rows = read_metrics(out)
    assert list(rows[0]) == old_columns and int(rows[-1]["env_steps"]) >= 1200
    assert np.isnan(load_checkpoint(out / "checkpoints" / "last")[1]["cpu_time"])


def test_nan_loss_stops_with_last_good_checkpoint(tmp_path, line_spec, monkeypatch):
    from postbc.finetune.sac import SAC

    real_update = SAC.update
    calls = {"n": 0}

    def poisoned(self, **batch):
        calls["n"] += 1
        out = real_update(self, **batch)
        if calls["n"] > 400:
            out["critic_loss"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(SAC, "update", poisoned)
    out = tmp_path / "run"
    with pytest.raises(PostBCError, match=r"non-finite critic_loss at env step \d+.*last good checkpoint"):
        run(_cfg(out, steps=3000, eval_every=300), base=NoisePuppet(), spec=line_spec)
    tensors, meta = load_checkpoint(out / "checkpoints" / "last")
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert 0 < meta["env_steps"] < 3000


def test_checkpoint_task_mismatch_names_both_sides(tmp_path):
    spec = fake_task_spec("line")
    with pytest.raises(PostBCError, match=r"checkpoint puppet has obs dim 3, task 'line' has obs dim 2"):
        run(_cfg(tmp_path / "run"), base=NoisePuppet(obs_dim=3), spec=spec)
    assert not (tmp_path / "run").exists()


def test_env_crash_is_logged_and_the_run_continues(tmp_path, caplog):
    spec = fake_task_spec("crashy", horizon=16, crash_prob=0.3, crash_step=2)
    out = tmp_path / "run"
    with caplog.at_level("WARNING", logger="postbc.finetune"):
        run(_cfg(out, steps=600, eval_every=300, sac=dataclasses.replace(FAST_SAC, warmup_steps=100)),
            base=NoisePuppet(), spec=spec)
    rows = read_metrics(out)
    assert int(rows[-1]["env_steps"]) >= 600 and int(rows[-1]["env_crashes"]) > 0
    assert "crashed mid-episode" in caplog.text


def test_dsrl_na_learns_to_steer_a_random_walk(tmp_path, line_spec):
    sac = dataclasses.replace(LINE_SAC, noise_critic_steps=2, utd=2)
    run(_cfg(tmp_path / "run", algo="dsrl_na", steps=3000, sac=sac), base=NoisePuppet(), spec=line_spec)
    rows = read_metrics(tmp_path / "run")
    assert float(rows[-1]["eval_success"]) >= 0.8


def test_dsrl_na_noise_critic_tracks_the_action_critic_through_the_policy(line_spec):
    """Q_W(s, w) is distilled toward Q_A(s, pi_dp(s, w)): after training they agree on fresh (s, w)."""
    from postbc.finetune.dsrl_na import DSRLNA

    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, noise_critic_steps=5, utd=1, batch_size=64)
    algo = DSRLNA(cfg, NoisePuppet(), 2, seed=0)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (512, 2)).astype(np.float32)
    w = rng.standard_normal((512, 2)).astype(np.float32)
    chunk = np.tanh(w)
    algo.replay.add(obs=torch.as_tensor(obs), action=torch.as_tensor(chunk), next_obs=torch.as_tensor(obs),
                    reward=torch.as_tensor(-np.abs(obs[:, 1] - chunk.sum(1) / 2)), done=torch.ones(512))
    for _ in range(300):
        algo.update(env_steps=0)
    s, fresh = torch.as_tensor(obs[:256]), torch.as_tensor(rng.uniform(-1.5, 1.5, (256, 2)).astype(np.float32))
    with torch.no_grad():
        q_w = algo.q_w(s, fresh).min(0).values
        q_a = algo.q_a(s, algo.chunk_of(s, fresh)).min(0).values
    assert np.corrcoef(q_w.numpy(), q_a.numpy())[0, 1] > 0.9
    assert float((q_w - q_a).abs().mean()) < 0.25 * float(q_a.std())


def test_dsrl_na_noise_stays_within_the_action_magnitude(line_spec):
    from postbc.finetune.dsrl_na import DSRLNA

    seen = []

    class Recorder(NoisePuppet):
        def act(self, obs, noise=None):
            seen.append(np.abs(noise).max())
            return super().act(obs, noise)

    cfg = dataclasses.replace(FAST_SAC, action_magnitude=0.5, warmup_steps=0, batch_size=8)
    algo = DSRLNA(cfg, Recorder(), 2, seed=0)
    obs = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)
    algo.act(obs, 0)
    algo.distill_step(torch.as_tensor(obs))
    assert max(seen) <= 0.5 + 1e-6
