"""A finetune run from the user's side: the task check, the closing summary, extending a finished run."""

import dataclasses
import os
import stat

import numpy as np
import pytest

from postbc.data.normalizer import MinMaxNormalizer
from postbc.envs.registry import get_task
from postbc.errors import PostBCError
from postbc.finetune.command import run
from postbc.finetune.config import FinetuneConfig, SACConfig
from postbc.io.runs import read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy

from .conftest import NoisePuppet

SAC = SACConfig(hidden=32, layers=1, activation="relu", batch_size=32, utd=1, warmup_steps=100, replay_size=5000)


def _cfg(out, **kw):
    base = dict(checkpoint="puppet", task="line", out=out, steps=300, num_envs=2, eval_every=300, eval_episodes=8,
                env_backend="sync", quiet=True, sac=SAC)
    return FinetuneConfig(**{**base, **kw})


def test_a_policy_pretrained_on_another_task_with_the_same_sizes_is_refused(tmp_path):
    drawer, door = get_task("mw-drawer-open"), get_task("mw-door-open")
    assert (drawer.obs_dims, drawer.act_dim) == (door.obs_dims, door.act_dim)  # only the task tells them apart
    model = DiffusionPolicy(DiffusionConfig(obs_dim=drawer.obs_dim, act_dim=drawer.act_dim, chunk=4, hidden=8, layers=1,
                                            train_steps=4, inference_steps=2))
    policy = PretrainedPolicy(model, MinMaxNormalizer(-np.ones(drawer.obs_dim), np.ones(drawer.obs_dim)),
                              MinMaxNormalizer(-np.ones(4), np.ones(4)), drawer.obs_keys, drawer.obs_dims, drawer.env_args)
    cfg = _cfg(tmp_path / "run", checkpoint="drawer_bc", task="mw-door-open")
    with pytest.raises(PostBCError, match=r"checkpoint drawer_bc does not fit task 'mw-door-open': task: data made for "
                                          r"'mw-drawer-open'"):
        run(cfg, base=policy, spec=door)
    assert not (tmp_path / "run").exists()


def test_a_finished_run_prints_where_it_got_and_how_to_use_it(tmp_path, line_spec, capsys):
    cfg = _cfg(tmp_path / "run")
    run(cfg, base=NoisePuppet(), spec=line_spec)
    last = read_metrics(cfg.out)[-1]
    out = capsys.readouterr().out
    assert f"success {float(last['eval_success']):.2f} [" in out and "the pretrained policy:" in out
    assert f"postbc eval --checkpoint {cfg.out}" in out and "300 env steps" in out
    run(cfg, base=NoisePuppet(), spec=line_spec)  # a rerun of the finished run says the same
    assert f"postbc eval --checkpoint {cfg.out}" in capsys.readouterr().out


def test_a_larger_budget_continues_a_finished_run_and_a_smaller_one_is_refused(tmp_path, line_spec):
    cfg = _cfg(tmp_path / "run", eval_every=150)
    run(cfg, base=NoisePuppet(), spec=line_spec)
    first = read_metrics(cfg.out)
    run(dataclasses.replace(cfg, steps=600), base=NoisePuppet(), spec=line_spec)
    rows = read_metrics(cfg.out)
    assert rows[: len(first)] == first  # the curve so far is kept, not recomputed
    assert [int(r["env_steps"]) // 150 for r in rows] == [0, 1, 2, 3, 4]
    assert int(rows[-1]["updates"]) > int(first[-1]["updates"])
    with pytest.raises(PostBCError, match=r"a resume may raise the budget, not lower it to 300"):
        run(cfg, base=NoisePuppet(), spec=line_spec)
    with pytest.raises(PostBCError, match=r"differs in: seed"):
        run(dataclasses.replace(cfg, steps=600, seed=1), base=NoisePuppet(), spec=line_spec)


def test_run_files_follow_the_umask(tmp_path, line_spec):
    old = os.umask(0o022)
    try:
        run(_cfg(tmp_path / "run"), base=NoisePuppet(), spec=line_spec)
    finally:
        os.umask(old)
    for name in ("config.json", "finetuned.json", "finetuned.safetensors", "checkpoints/last.safetensors"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


def test_a_multi_task_env_gets_a_success_column_per_task(tmp_path):
    from postbc.envs.testing import fake_task_spec

    spec = fake_task_spec("line", horizon=16, tasks=("near", "far"))
    cfg = _cfg(tmp_path / "run")
    run(cfg, base=NoisePuppet(), spec=spec)
    rows = read_metrics(cfg.out)
    for prefix in ("eval", "pretrained"):
        assert {f"{prefix}_success_near", f"{prefix}_success_far"} <= set(rows[0])
        per_task = [float(rows[0][f"{prefix}_success_{t}"]) for t in ("near", "far")]
        assert all(0.0 <= r <= 1.0 for r in per_task)

    from postbc.finetune.config import BestOfNConfig

    best = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "bon", algo="best_of_n", steps=300,
                          eval_every=300, eval_episodes=8, num_envs=2, env_backend="sync", quiet=True,
                          best_of_n=BestOfNConfig(rollouts=20, candidates=4, workers=1))
    run(best, base=NoisePuppet(), spec=spec)
    assert {"eval_success_near", "eval_success_far"} <= set(read_metrics(best.out)[-1])
