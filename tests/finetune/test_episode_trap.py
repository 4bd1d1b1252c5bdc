"""The entropy trap: SAC over a wide noise action must be drawn towards success, not away from it.

`ThresholdEnv` is solved on any step whose first action coordinate exceeds 0.29; the base
policy's chunk is tanh(w) with w of 4 x 7 = 28 dimensions, as on robosuite. Under w ~ N(0, I) an
episode succeeds within a few chunks. With SAC's default temperature (1.0) the per-chunk entropy
bonus (about 17) dwarfs the step cost (-4): if success ended the training episode, every chunk
that avoids it would earn one more bonus, and SAC learns to avoid success. Run to the horizon, as
the DSRL reference does, it learns to succeed; so it does when episodes end at success but the TD
target carries no entropy bonus (`--sac.episode-end success --sac.no-backup-entropy`).
"""

import dataclasses

import numpy as np
import pytest
import torch

from postbc.envs.testing import threshold_task_spec
from postbc.finetune.command import run
from postbc.finetune.config import FinetuneConfig, SACConfig
from postbc.finetune.dsrl import DSRL
from postbc.io.runs import read_metrics

from .conftest import NoisePuppet

# SAC's defaults where they matter (temperature from 1.0, target entropy 0, magnitude 1.5); small networks.
TRAP_SAC = SACConfig(hidden=64, layers=2, batch_size=64, utd=4, warmup_steps=400, replay_size=20_000)


def _puppet() -> NoisePuppet:
    puppet = NoisePuppet(chunk=4, obs_dim=1, act_dim=7)
    puppet.obs_keys = ("phase",)
    return puppet


def _run(out, steps: int, sac: SACConfig = TRAP_SAC, **kw):
    cfg = FinetuneConfig(checkpoint="puppet", task="threshold", out=out, steps=steps, num_envs=4, eval_every=steps,
                         eval_episodes=32, env_backend="sync", quiet=True, sac=sac, **kw)
    run(cfg, base=_puppet(), spec=threshold_task_spec())
    return read_metrics(out)


def test_dsrl_learns_to_succeed_with_28_dimensional_noise(tmp_path):
    first, last = _run(tmp_path / "run", 12_000)
    assert float(first["eval_success"]) == 0.0  # the untrained actor's fixed noise misses the threshold
    assert float(first["pretrained_success"]) == 1.0  # the base policy's own sampler solves it
    assert float(last["eval_success"]) >= 0.9
    assert float(last["eval_stochastic_success"]) >= 0.9


def test_ending_training_episodes_at_success_teaches_sac_to_avoid_it(tmp_path):
    """The old semantics, kept here to show the test above can fail: success collapses.

    The config refuses this combination, so it is set after validation."""
    sac = dataclasses.replace(TRAP_SAC)
    sac.episode_end = "success"
    first, last = _run(tmp_path / "run", 6_000, sac)
    assert float(first["eval_stochastic_success"]) >= 0.9
    assert float(last["eval_stochastic_success"]) <= 0.3


def test_ending_at_success_without_the_entropy_backup_learns_to_succeed(tmp_path):
    first, last = _run(tmp_path / "run", 4_000, dataclasses.replace(TRAP_SAC, episode_end="success",
                                                                     backup_entropy=False))
    assert float(first["eval_success"]) == 0.0
    assert float(last["eval_success"]) >= 0.9
    assert float(last["eval_stochastic_success"]) >= 0.9
    assert float(last["q_mean"]) <= 0.5  # a plain return of rewards <= 0, whatever the temperature


def test_bf16_updates_learn_to_succeed(tmp_path):
    """The hidden layers in bfloat16 (`--sac.precision bf16`) learn the 28-dim task as fp32 does."""
    first, last = _run(tmp_path / "run", 2_000, dataclasses.replace(TRAP_SAC, episode_end="success",
                                                                     backup_entropy=False, precision="bf16"))
    assert float(first["eval_success"]) == 0.0
    assert float(last["eval_success"]) >= 0.9
    assert float(last["eval_stochastic_success"]) >= 0.9


def test_q_stays_within_the_returns_the_task_allows(tmp_path, line_spec, monkeypatch):
    """Line task, horizon 16 in chunks of 2, reward -1 per unsolved step: every return lies in [-16, 0].

    A negligible temperature makes soft and plain returns equal, so Q must stay inside those bounds
    (up to fitting error), on the replay's own transitions.
    """
    sac = SACConfig(hidden=64, layers=2, activation="relu", batch_size=64, utd=4, warmup_steps=200, init_alpha=1e-4,
                    lr=1e-3, replay_size=10_000)
    learners = []
    real_init = DSRL.__init__

    def keep(self, *a, **kw):
        real_init(self, *a, **kw)
        learners.append(self)

    monkeypatch.setattr(DSRL, "__init__", keep)
    cfg = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "run", steps=3000, num_envs=4,
                         eval_every=3000, eval_episodes=16, env_backend="sync", quiet=True, sac=sac)
    run(cfg, base=NoisePuppet(), spec=line_spec)
    learner = learners[0]
    batch = learner.replay.all()
    with torch.no_grad():
        q = learner.sac.critic(learner.scale_obs(batch["obs"]), batch["action"])
    assert float(q.max()) <= 1.0 and float(q.min()) >= -17.0
    assert set(np.unique(batch["done"].numpy())) <= {0.0, 1.0}
    assert float(batch["reward"].max()) <= 0.0 and float(batch["reward"].min()) >= -2.0
