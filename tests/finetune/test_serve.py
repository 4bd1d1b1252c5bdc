"""Serving finetune runs: `load_finetuned_policy` for every algorithm, its refusals, and `postbc eval` on a run."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from postbc.cli import main
from postbc.data import MinMaxNormalizer
from postbc.envs.registry import get_task
from postbc.envs.vector import episode_seed
from postbc.errors import PostBCError
from postbc.evaluation.episodes import evaluate
from postbc.finetune.command import run
from postbc.finetune.config import ALGO_SECTION, BestOfNConfig, DPPOConfig, FinetuneConfig, IQLConfig, SACConfig
from postbc.finetune.dppo import DPPO
from postbc.finetune.dsrl import DSRL
from postbc.finetune.dsrl_na import DSRLNA
from postbc.finetune.loop import EVAL_SEED_STREAM
from postbc.finetune.serve import FinetunedPolicy, load_finetuned_policy
from postbc.io.checkpoint import save_checkpoint
from postbc.io.runs import prepare_run_dir, read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy

from .conftest import NoisePuppet
from .test_dppo import standin_policy
from .test_training import FAST_SAC

SAC = SACConfig(hidden=32, layers=2, activation="relu", batch_size=32, utd=1, warmup_steps=100, lr=1e-3,
                replay_size=2_000, noise_critic_steps=1)
DPPO_CFG = DPPOConfig(finetune_steps=2, ddpm_steps=4, lr=3e-3, clip_ratio=0.2, clip_ratio_base=0.2, critic_warmup=0,
                      rollout_steps=8, epochs=1, minibatch=64,
                      hidden=16)
OBS = np.stack([np.zeros(6), np.linspace(-0.9, 0.9, 6)], 1).astype(np.float32)


def _own_sections(**kw) -> FinetuneConfig:
    """A FinetuneConfig from options for every algorithm, keeping only the chosen algorithm's section."""
    foreign = set(ALGO_SECTION.values()) - {ALGO_SECTION[kw.get("algo", "dsrl")]}
    return FinetuneConfig(**{k: v for k, v in kw.items() if k not in foreign})


def _cfg(out, **kw):
    base = dict(checkpoint="puppet", task="line", out=out, steps=300, num_envs=4, eval_every=300, eval_episodes=12,
                env_backend="sync", quiet=True, sac=SAC, dppo=DPPO_CFG)
    base.update(kw)
    return _own_sections(**base)


@pytest.fixture
def line_base_dir(tmp_path):
    """A pretraining run directory holding the DPPO tests' stand-in diffusion policy for the line task."""
    standin_policy().save(tmp_path / "base" / "policy")
    return tmp_path / "base"


def _write_run(out, cfg, algo, base):
    """What `postbc finetune` leaves behind for `algo`, without training: config.json and finetuned.*."""
    prepare_run_dir(out, cfg, command="finetune")
    compat = {"task": "line", "obs_dim": 2, "act_dim": 1, "chunk": int(base.chunk), "algo": cfg.algo}
    save_checkpoint(out / "finetuned", algo.export(), {"compat": compat, "env_steps": 0})


def _final_eval(cfg, policy, spec):
    """The run's own last evaluation, repeated: same episodes, same envs."""
    return evaluate(policy, spec, cfg.eval_episodes, seed=episode_seed(cfg.seed, 0, EVAL_SEED_STREAM),
                    num_envs=cfg.num_envs, backend="sync", quiet=True)


# -- each algorithm serves what its run evaluated ---------------------------------------------------------------------
@pytest.mark.parametrize("cls,algo", [(DSRL, "dsrl"), (DSRLNA, "dsrl_na")])
def test_served_noise_actor_acts_as_the_runs_evaluation_policy(tmp_path, cls, algo):
    cfg = _cfg(tmp_path / "run", algo=algo)
    learner = cls(SAC, NoisePuppet(), obs_dim=2, seed=3)
    _write_run(cfg.out, cfg, learner, NoisePuppet())
    served = load_finetuned_policy(cfg.out, base=NoisePuppet())
    assert isinstance(served, FinetunedPolicy) and served.algo == algo and served.task == "line"
    assert (served.chunk, served.act_dim, served.obs_keys) == (2, 1, ("pos", "goal"))
    expected = learner.eval_policy().act(OBS)
    np.testing.assert_array_equal(served.act(OBS), expected)
    assert np.abs(expected - expected.mean(0)).max() > 1e-3  # the actor looks at the goal: not a constant chunk


def test_served_dsrl_repeats_the_runs_final_evaluation(tmp_path, line_spec):
    cfg = _cfg(tmp_path / "run", steps=1500, eval_every=1500, eval_episodes=16, sac=FAST_SAC)
    run(cfg, base=NoisePuppet(), spec=line_spec)
    first, last = read_metrics(cfg.out)
    assert float(last["eval_success"]) >= 0.6 > float(first["eval_success"])  # it learned: the check is not trivial
    result = _final_eval(cfg, load_finetuned_policy(cfg.out, base=NoisePuppet()), line_spec)
    assert result.success_rate == pytest.approx(float(last["eval_success"]), abs=1e-6)
    assert result.mean_length == pytest.approx(float(last["eval_length"]), rel=1e-5)
    # The stochastic actor, served with actor="stochastic", repeats the run's eval_stochastic_ columns: evaluation's
    # per-episode seeded noise is its eps.
    stochastic = load_finetuned_policy(cfg.out, base=NoisePuppet(), actor="stochastic")
    assert stochastic.takes_noise
    result = _final_eval(cfg, stochastic, line_spec)
    assert result.success_rate == pytest.approx(float(last["eval_stochastic_success"]), abs=1e-6)


def test_served_dppo_matches_the_dppo_evaluation_policy(tmp_path, line_base_dir):
    base = PretrainedPolicy.load(line_base_dir)
    cfg = _cfg(tmp_path / "run", algo="dppo", checkpoint=line_base_dir)
    learner = DPPO(DPPO_CFG, base, obs_dim=2, seed=0, num_envs=4)
    with torch.no_grad():  # a finetuned denoiser that differs from the frozen one
        for p in learner.actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    _write_run(cfg.out, cfg, learner, base)
    served = load_finetuned_policy(cfg.out)  # the base comes from config.json's checkpoint
    reference = learner.eval_policy()
    for _ in range(2):  # the same noise stream, call after call
        np.testing.assert_array_equal(served.act(OBS), reference.act(OBS))
    unfinetuned = DPPO(DPPO_CFG, base, obs_dim=2, seed=0, num_envs=4).eval_policy()
    assert not np.allclose(load_finetuned_policy(cfg.out).act(OBS), unfinetuned.act(OBS))
    other_seed = load_finetuned_policy(cfg.out, seed=1)
    assert not np.allclose(other_seed.act(OBS), load_finetuned_policy(cfg.out).act(OBS))


def test_served_dppo_repeats_the_runs_final_evaluation(tmp_path, line_spec, line_base_dir):
    cfg = _cfg(tmp_path / "run", algo="dppo", checkpoint=line_base_dir, steps=200, eval_every=200)
    run(cfg, base=PretrainedPolicy.load(line_base_dir), spec=line_spec)
    last = read_metrics(cfg.out)[-1]
    assert int(last["updates"]) >= 1
    result = _final_eval(cfg, load_finetuned_policy(cfg.out), line_spec)
    assert result.success_rate == pytest.approx(float(last["eval_success"]), abs=1e-6)
    assert result.mean_length == pytest.approx(float(last["eval_length"]), rel=1e-5)


def test_served_best_of_n_is_the_best_of_n_policy(tmp_path, line_spec):
    from postbc.finetune.best_of_n import load_best_of_n_policy

    cfg = _cfg(tmp_path / "run", algo="best_of_n", steps=20, eval_every=20, eval_episodes=4, num_envs=2,
               best_of_n=BestOfNConfig(rollouts=6, candidates=4, workers=1, force=True,
                                       iql=IQLConfig(hidden=16, batch_size=16)))
    run(cfg, base=NoisePuppet(), spec=line_spec)
    served = load_finetuned_policy(cfg.out, base=NoisePuppet())
    assert served.algo == "best_of_n" and served.inner.candidates == 4
    np.testing.assert_array_equal(served.act(OBS), load_best_of_n_policy(cfg.out, NoisePuppet(), seed=cfg.seed).act(OBS))
    assert load_finetuned_policy(cfg.out, base=NoisePuppet(), candidates=2).inner.candidates == 2


# -- refusals ---------------------------------------------------------------------------------------------------------
def test_refuses_an_unfinished_run_and_says_how_to_finish_it(tmp_path, line_spec):
    cfg = _cfg(tmp_path / "run", steps=400, eval_every=100)
    run(cfg, base=NoisePuppet(), spec=line_spec, stop_at=250)  # killed: checkpoints/last, no finetuned.*
    with pytest.raises(PostBCError, match=r"holds no finetuned.json / finetuned.safetensors: the finetune run has not "
                                          r"finished; start the same `postbc finetune \.\.\. --out .*run` command "
                                          r"again to resume it from checkpoints/last \(env step 2\d\d\) and finish it"):
        load_finetuned_policy(cfg.out, base=NoisePuppet())


def test_refuses_a_missing_base_checkpoint_and_says_to_pass_it(tmp_path):
    cfg = _cfg(tmp_path / "run", checkpoint=tmp_path / "deleted_pretrain_run")
    _write_run(cfg.out, cfg, DSRL(SAC, NoisePuppet(), obs_dim=2, seed=0), NoisePuppet())
    with pytest.raises(PostBCError, match=r"pretrained checkpoint .*deleted_pretrain_run named in .*config.json "
                                          r"\('checkpoint'\) is missing.*pass the pretrained policy explicitly.*base="):
        load_finetuned_policy(cfg.out)
    assert load_finetuned_policy(cfg.out, base=NoisePuppet()).act(OBS).shape == (6, 2, 1)


def test_a_relative_base_path_is_found_from_an_ancestor_of_the_run(tmp_path, line_base_dir, monkeypatch):
    """A sweep records `runs/SWEEP/pretrain/...` relative to where it ran; serving works from elsewhere too."""
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(Path("sweep/finetune/run"), checkpoint=Path("base"))
    base = PretrainedPolicy.load(line_base_dir)
    _write_run(cfg.out, cfg, DSRL(SAC, base, obs_dim=2, seed=0), base)
    monkeypatch.chdir(tmp_path / "sweep")
    served = load_finetuned_policy(Path("finetune/run"))
    assert served.base.chunk == 2 and served.act(OBS).shape == (6, 2, 1)
    (tmp_path / "base").rename(tmp_path / "moved")
    with pytest.raises(PostBCError, match=r"pretrained checkpoint base named in .*\('checkpoint'\) is missing"):
        load_finetuned_policy(Path("finetune/run"))


def test_refuses_a_base_that_does_not_fit(tmp_path, line_base_dir):
    cfg = _cfg(tmp_path / "run")
    _write_run(cfg.out, cfg, DSRL(SAC, NoisePuppet(), obs_dim=2, seed=0), NoisePuppet())
    with pytest.raises(PostBCError, match=r"uses action chunks of 2, the pretrained policy predicts chunks of 3"):
        load_finetuned_policy(cfg.out, base=NoisePuppet(chunk=3))
    with pytest.raises(PostBCError, match=r"finetuned with obs dim 2, the base policy has obs dim 3"):
        load_finetuned_policy(cfg.out, base=NoisePuppet(obs_dim=3))
    # Same sizes, other widths: the DPPO weights do not fit the base's denoiser.
    cfg = _cfg(tmp_path / "dppo", algo="dppo", checkpoint=line_base_dir)
    base = PretrainedPolicy.load(line_base_dir)
    _write_run(cfg.out, cfg, DPPO(DPPO_CFG, base, obs_dim=2, seed=0, num_envs=4), base)
    narrow = PretrainedPolicy(DiffusionPolicy(DiffusionConfig(obs_dim=2, act_dim=1, chunk=2, hidden=16, layers=2,
                                                              train_steps=20, inference_steps=4)),
                              base.obs_normalizer, base.action_normalizer, base.obs_keys, base.obs_dims, base.env_args)
    with pytest.raises(PostBCError, match=r"finetuned weights .*finetuned.safetensors: tensor .* has shape"):
        load_finetuned_policy(cfg.out, base=narrow)


def test_refuses_a_directory_that_is_not_a_finetune_run(line_base_dir):
    with pytest.raises(PostBCError, match="is not a finetune run directory"):
        load_finetuned_policy(line_base_dir, base=NoisePuppet())


# -- postbc eval on a finetune run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_base_dir(tmp_path_factory):
    """An untrained but complete pretraining run directory for the toy task."""
    spec = get_task("toy")
    torch.manual_seed(0)
    cfg = DiffusionConfig(obs_dim=spec.obs_dim, act_dim=spec.act_dim, chunk=4, hidden=16, layers=1, train_steps=10,
                          inference_steps=2)
    policy = PretrainedPolicy(DiffusionPolicy(cfg), MinMaxNormalizer(-np.ones(spec.obs_dim), np.ones(spec.obs_dim)),
                              MinMaxNormalizer(-np.ones(spec.act_dim), np.ones(spec.act_dim)), spec.obs_keys,
                              spec.obs_dims, spec.env_args)
    run_dir = tmp_path_factory.mktemp("toy_base")
    policy.save(run_dir / "policy")
    return run_dir


@pytest.mark.parametrize("algo", ["dsrl", "dsrl_na", "dppo", "best_of_n"])
def test_postbc_eval_on_a_finetune_run(tmp_path, toy_base_dir, capsys, algo):
    cfg = _own_sections(checkpoint=toy_base_dir, task="toy", out=tmp_path / "run", algo=algo, steps=60, num_envs=2,
                         eval_every=60, eval_episodes=2, env_backend="sync", quiet=True,
                         sac=dataclasses.replace(SAC, warmup_steps=20),
                         dppo=dataclasses.replace(DPPO_CFG, ddpm_steps=2, finetune_steps=1),
                         best_of_n=BestOfNConfig(rollouts=2, candidates=2, workers=1, iql=IQLConfig(hidden=16, batch_size=8)))
    run(cfg)
    out = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(cfg.out), "--episodes", "2", "--num-envs", "2", "--backend", "sync",
                 "--out", str(out), "--quiet"]) == 0
    assert "toy: success" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["algo"] == algo and result["task"] == "toy" and result["episodes"] == 2
    # the command reports what evaluating the served policy computes (same seed for episodes and noise)
    direct = evaluate(load_finetuned_policy(cfg.out, seed=0), "toy", 2, seed=0, num_envs=2, backend="sync", quiet=True)
    assert result["episode_length"] == direct.episode_length and result["episode_success"] == direct.episode_success
    stochastic = ["eval", "--checkpoint", str(cfg.out), "--episodes", "2", "--backend", "sync", "--actor", "stochastic",
                  "--out", str(out), "--quiet"]
    if algo.startswith("dsrl"):
        assert main(stochastic) == 0 and json.loads(out.read_text())["actor"] == "stochastic"
    else:  # DPPO and Best-of-N sample already: there is no actor to choose
        assert main(stochastic) == 2 and f"is a {algo} run" in capsys.readouterr().err


def test_postbc_eval_refusals_on_finetune_runs(tmp_path, toy_base_dir, capsys):
    cfg = FinetuneConfig(checkpoint=toy_base_dir, task="toy", out=tmp_path / "run", steps=120, num_envs=2,
                         eval_every=60, eval_episodes=2, env_backend="sync", quiet=True, sac=SAC)
    run(cfg, stop_at=60)
    assert main(["eval", "--checkpoint", str(cfg.out), "--quiet"]) == 2
    assert "the finetune run has not finished" in capsys.readouterr().err
    run(cfg)
    assert main(["eval", "--checkpoint", str(cfg.out), "--task", "lift", "--quiet"]) == 2
    assert "does not fit task 'lift'" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(toy_base_dir), "--base", str(toy_base_dir), "--quiet"]) == 2
    assert "--base applies to finetune run directories" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(toy_base_dir), "--actor", "stochastic", "--quiet"]) == 2
    assert "--actor stochastic applies to DSRL / DSRL-NA finetune runs" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(cfg.out), "--base", str(toy_base_dir), "--episodes", "2", "--backend",
                 "sync", "--quiet"]) == 0
    assert "toy: success" in capsys.readouterr().out


def test_a_base_of_the_same_sizes_but_other_weights_is_refused(tmp_path, toy_base_dir):
    """The run records a hash of its base's weights: serving or resuming it on another pretrained policy is refused."""
    cfg = FinetuneConfig(checkpoint=toy_base_dir, task="toy", out=tmp_path / "run", steps=120, num_envs=2,
                         eval_every=60, eval_episodes=2, env_backend="sync", quiet=True, sac=SAC)
    other = PretrainedPolicy.load(toy_base_dir)
    with torch.no_grad():
        next(other.model.parameters()).add_(0.01)
    run(cfg, stop_at=100)  # killed after the checkpoint at env step 60
    with pytest.raises(PostBCError, match=r"checkpoint .*last was written for .*base_weights"):
        run(cfg, base=other)
    run(cfg)
    with pytest.raises(PostBCError, match=r"finetuned from a pretrained policy with weights \w+, the given base policy "
                                          r"has weights \w+ \(same sizes, other weights\)"):
        load_finetuned_policy(cfg.out, base=other)
    assert load_finetuned_policy(cfg.out).act(np.zeros((1, get_task("toy").obs_dim), np.float32)).shape == (1, 4, 2)


def test_best_of_n_resume_refuses_rollouts_of_other_base_weights(tmp_path, toy_base_dir):
    """Rerunning a Best-of-N run reuses its rollouts.h5: only with the base policy that collected them."""
    cfg = FinetuneConfig(checkpoint=toy_base_dir, task="toy", out=tmp_path / "run", algo="best_of_n", steps=20,
                         num_envs=2, eval_every=20, eval_episodes=2, env_backend="sync", quiet=True,
                         best_of_n=BestOfNConfig(rollouts=2, candidates=2, workers=1, iql=IQLConfig(hidden=16, batch_size=8)))
    other = PretrainedPolicy.load(toy_base_dir)
    with torch.no_grad():
        next(other.model.parameters()).add_(0.01)
    run(cfg)
    with pytest.raises(PostBCError, match=r"rollouts file .*rollouts.h5 was collected by a pretrained policy with "
                                          r"weights \w+, the given base policy has weights \w+.*or finetune the new policy into a new "
                                          r"--out directory"):
        run(cfg, base=other)
    run(cfg)  # the base that collected them resumes the finished run: nothing left to do
    assert load_finetuned_policy(cfg.out).algo == "best_of_n"
