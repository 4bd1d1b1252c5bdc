"""DPPO: GAE and the clipped objective on hand numbers, log-prob recomputation, resume, learning on the line task.

The base policy is a tiny randomly initialized diffusion policy on the line task (no pretraining):
its actions ignore the goal, so it succeeds about half the time within the horizon.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from postbc.data import MinMaxNormalizer
from postbc.finetune.command import run
from postbc.finetune.config import DPPOConfig, FinetuneConfig
from postbc.finetune.dppo import DPPO, clip_schedule, clipped_surrogate, dppo_log_prob, gae, value_loss
from postbc.finetune.chunk_env import ChunkEnv
from postbc.io.checkpoint import load_checkpoint
from postbc.io.runs import read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy


FAST_DPPO = DPPOConfig(finetune_steps=4, ddpm_steps=4, lr=3e-3, critic_lr=1e-3, clip_ratio=0.2, clip_ratio_base=0.2,
                       rollout_steps=16, epochs=10, minibatch=128, hidden=64, gamma=0.9, critic_warmup=0)


def standin_policy(seed: int = 0) -> PretrainedPolicy:
    torch.manual_seed(seed)
    model = DiffusionPolicy(DiffusionConfig(obs_dim=2, act_dim=1, chunk=2, hidden=32, layers=2, train_steps=20,
                                            inference_steps=4))
    return PretrainedPolicy(model, MinMaxNormalizer([-1, -1], [1, 1]), MinMaxNormalizer([-1], [1]), ("pos", "goal"),
                            (1, 1), {"env_name": "line", "type": "fake", "env_kwargs": {"task": "line"}})


def _cfg(out, **kw):
    base = dict(checkpoint="standin", task="line", out=out, algo="dppo", steps=6000, num_envs=8, eval_every=3000,
                eval_episodes=64, env_backend="sync", quiet=True, dppo=FAST_DPPO)
    base.update(kw)
    return FinetuneConfig(**base)


def test_gae_terminated_vs_truncated_by_hand():
    gamma = lam = 0.5
    # env 0: success (reward 1) at t = 2; env 1: horizon at t = 1 (V(final obs) = 0.8), a new episode at t = 2.
    rewards = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    values = torch.tensor([[0.1, 0.3], [0.2, 0.5], [0.4, 0.2]])
    next_values = torch.tensor([[0.2, 0.5], [0.4, 0.8], [0.9, 0.6]])
    terminated = torch.tensor([[0, 0], [0, 0], [1, 0]]).bool()
    truncated = torch.tensor([[0, 0], [0, 1], [0, 0]]).bool()
    cut = terminated | truncated
    cut[-1] = True
    adv = gae(rewards, values, next_values, terminated, cut, gamma, lam)
    # env 0: deltas 0.1 - 0.1 = 0, 0.2 - 0.2 = 0, 1 - 0.4 = 0.6 (no bootstrap after success)
    #   A2 = 0.6, A1 = 0 + 0.25 * 0.6 = 0.15, A0 = 0.25 * 0.15 = 0.0375
    # env 1: A2 = 0.5 * 0.6 - 0.2 = 0.1 (bootstrapped at the rollout's end); A1 = 0.5 * 0.8 - 0.5 = -0.1 (bootstrapped
    #   from the final obs, not continued into the next episode); A0 = (0.25 - 0.3) + 0.25 * -0.1 = -0.075
    torch.testing.assert_close(adv, torch.tensor([[0.0375, -0.075], [0.15, -0.1], [0.6, 0.1]]))
    # Had env 1 terminated at t = 1 instead, V(final obs) would not count: A1 = -0.5, A0 = -0.05 + 0.25 * -0.5.
    term2 = terminated.clone()
    term2[1, 1] = True
    adv2 = gae(rewards, values, next_values, term2, cut, gamma, lam)
    torch.testing.assert_close(adv2[:2, 1], torch.tensor([-0.175, -0.5]))


def test_clipped_objective_by_hand():
    ratio = torch.tensor([1.5, 0.5, 1.05, 0.9])
    adv = torch.tensor([1.0, 1.0, -1.0, -2.0])
    log_ratio = ratio.log().requires_grad_(True)
    loss, clip_fraction, approx_kl = clipped_surrogate(log_ratio, adv, clip=0.2)
    # min(r A, clip(r) A): min(1.5, 1.2) = 1.2, min(0.5, 0.8) = 0.5, -1.05, -1.8 -> mean -0.2875
    torch.testing.assert_close(loss, torch.tensor(0.2875))
    assert float(clip_fraction) == 0.5
    kl = np.mean([r - 1 - math.log(r) for r in (1.5, 0.5, 1.05, 0.9)])
    assert float(approx_kl) == pytest.approx(kl, rel=1e-6)
    loss.backward()
    # d/d log r of -r A / 4 where the unclipped term is the min; 0 where the clipped constant is.
    torch.testing.assert_close(log_ratio.grad, torch.tensor([0.0, -0.125, 0.2625, 0.45]))


def test_value_loss_clip_by_hand():
    v, v_old, ret = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]), torch.tensor([2.0, 0.5])
    assert float(value_loss(v, v_old, ret, clip=0.0)) == pytest.approx(0.5 * (1 + 0.25) / 2)
    # clipped v = [0.2, 0.0]: max((1-2)^2, (0.2-2)^2) = 3.24, max(0.25, 0.25) = 0.25
    assert float(value_loss(v, v_old, ret, clip=0.2)) == pytest.approx(0.5 * (3.24 + 0.25) / 2)


def test_recomputed_log_probs_match_sampling_and_first_ratio_is_one(line_spec):
    cfg = dataclasses.replace(FAST_DPPO, ddpm_steps=6, finetune_steps=3, rollout_steps=4, epochs=1, minibatch=10_000,
                              min_std=0.1)
    base = standin_policy()
    algo = DPPO(cfg, base, obs_dim=2, seed=0, num_envs=4)  # 6 sampling steps respace the 20 training steps
    env = ChunkEnv(line_spec, 4, base.chunk, seed=0, reward="zero_one", backend="sync")
    try:
        algo.act(env.obs, 0)
        obs_n, chain, logp = algo._pending
        for j in range(cfg.finetune_steps):
            recomputed = algo.policy.step_log_prob(obs_n, chain[:, j], chain[:, j + 1], algo.first_ft + j, cfg.min_std,
                                                   cfg.ddpm_steps, log_prob=dppo_log_prob)
            torch.testing.assert_close(recomputed, logp[:, j], rtol=1e-5, atol=1e-5)
        frozen0 = {k: v.clone() for k, v in algo.policy.denoiser.frozen.state_dict().items()}
        trainable0 = {k: v.clone() for k, v in algo.actor.state_dict().items()}
        metrics = {}
        for _ in range(cfg.rollout_steps):
            chunks = algo.act(env.obs, 0)
            algo.observe(env.step(chunks))
            metrics = algo.update(0)
    finally:
        env.close()
    # One epoch, one minibatch: the metrics are those of the weights that sampled the chains.
    assert float(metrics["approx_kl"]) == pytest.approx(0.0, abs=1e-6) and float(metrics["clip_fraction"]) == 0.0
    assert all(torch.equal(v, algo.policy.denoiser.frozen.state_dict()[k]) for k, v in frozen0.items())
    assert any(not torch.equal(v, algo.actor.state_dict()[k]) for k, v in trainable0.items())
    assert len(algo.rollout) == 0 and algo.rollouts_done == 1
    assert float(metrics["denoising_std"]) >= cfg.min_std


def test_resume_after_kill_continues_the_curve(tmp_path, line_spec):
    out = tmp_path / "run"
    cfg = _cfg(out, steps=900, eval_every=200, checkpoint_every=300, eval_episodes=16, num_envs=4,
               dppo=dataclasses.replace(FAST_DPPO, epochs=2))
    run(cfg, base=standin_policy(), spec=line_spec, stop_at=650)  # killed: rows up to 600, checkpoint at ~300 or ~600
    assert [int(r["env_steps"]) // 200 for r in read_metrics(out)] == [0, 1, 2, 3]
    _, meta = load_checkpoint(out / "checkpoints" / "last")
    assert 300 <= meta["env_steps"] < 650 and meta["updates"] >= 1
    assert meta["algo"]["rollout"]["size"] > 0  # killed mid-rollout: the partial rollout is part of the checkpoint
    updates_at_kill = meta["updates"]
    tensors, meta = load_checkpoint(out / "checkpoints" / "last")
    algo = DPPO(cfg.dppo, standin_policy(), obs_dim=2, seed=0, num_envs=4)
    algo.load_state(tensors, meta["algo"])
    n = len(algo.rollout)
    assert n % 4 == 0 and algo.rollout.data["truncated"][n - 4:n].eq(1).all()  # the lost episodes end there, bootstrapped
    run(cfg, base=standin_policy(), spec=line_spec)
    rows = read_metrics(out)
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] >= 900 and len(steps) == 6  # 0, ~200, ..., ~900, no duplicates
    _, meta = load_checkpoint(out / "checkpoints" / "last")
    assert meta["updates"] > updates_at_kill and int(rows[-1]["updates"]) == meta["updates"]
    assert all(math.isfinite(float(rows[-1][k])) for k in ("policy_loss", "value_loss", "approx_kl", "clip_fraction",
                                                           "explained_variance", "denoising_std"))
    tensors, _ = load_checkpoint(out / "finetuned")
    assert any(k.startswith("policy.denoiser.trainable.") for k in tensors)


def test_dppo_improves_success_on_the_line_task(tmp_path, line_spec):
    """The random stand-in succeeds ~50% of the time; DPPO must bring it to >= 85% within 6000 env steps."""
    run(_cfg(tmp_path / "run"), base=standin_policy(), spec=line_spec)
    rows = read_metrics(tmp_path / "run")
    assert float(rows[0]["eval_success"]) < 0.65
    assert float(rows[-1]["eval_success"]) >= 0.85
    assert int(rows[-1]["env_steps"]) >= 6000


def test_dppo_log_prob_is_the_clamped_per_dimension_mean_by_hand():
    x = torch.tensor([[0.0, 3.0]])
    mean, std = torch.zeros(1, 2), torch.full((1, 1), 0.5)
    per_dim = [-math.log(0.5) - 0.5 * math.log(2 * math.pi), -0.5 * 36 - math.log(0.5) - 0.5 * math.log(2 * math.pi)]
    expected = (min(max(per_dim[0], -5), 2) + min(max(per_dim[1], -5), 2)) / 2  # the second dim is clamped to -5
    assert float(dppo_log_prob(x, mean, std)) == pytest.approx(expected)


def test_clip_grows_from_base_at_the_first_finetuned_step_to_clip_at_the_last():
    clips = clip_schedule(10, 0.01, 0.001, 3.0)
    assert float(clips[0]) == pytest.approx(0.001) and float(clips[-1]) == pytest.approx(0.01)
    assert bool((clips[1:] > clips[:-1]).all())
    assert float(clips[5]) == pytest.approx(0.001 + 0.009 * (math.exp(3 * 5 / 9) - 1) / (math.exp(3) - 1))
    assert clip_schedule(1, 0.01, 0.001, 3.0).tolist() == pytest.approx([0.01])
