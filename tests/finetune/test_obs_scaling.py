"""What DSRL's networks see: observations scaled by the warm-up rollouts' range (default) or the demos'."""

import dataclasses

import numpy as np
import pytest
import torch

from postbc.data.normalizer import MinMaxNormalizer
from postbc.finetune.dsrl import DSRL, load_scaler, load_steered_policy
from postbc.finetune.dsrl_na import DSRLNA
from postbc.finetune.obs_scaling import ObsScaler

from .conftest import NoisePuppet
from .test_training import FAST_SAC


class NarrowDemosPuppet(NoisePuppet):
    """A base policy whose demos spanned [-0.01, 0.01] in each dimension: rollouts go far beyond."""

    obs_normalizer = MinMaxNormalizer(-0.01 * np.ones(2), 0.01 * np.ones(2))


def test_fit_maps_the_data_onto_minus_one_one_and_shifts_constant_dims():
    scaler = ObsScaler(3).fit(torch.tensor([[0.0, 5.0, 2.0], [4.0, 5.0, 3.0], [2.0, 5.0, 2.5]]))
    out = scaler(torch.tensor([[0.0, 5.0, 2.0], [4.0, 5.0, 3.0]]))
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, -1.0], [1.0, 0.0, 1.0]]))
    assert scaler.is_fitted


def fill(algo, n=300):
    obs = torch.tensor(np.random.default_rng(0).uniform(-3, 3, (n, 2)), dtype=torch.float32)
    algo.replay.add(obs=obs, action=torch.zeros(n, algo.replay.fields["action"][0]), reward=-torch.ones(n),
                    next_obs=obs.flip(0), done=torch.zeros(n))
    return obs


@pytest.mark.parametrize("cls", [DSRL, DSRLNA])
def test_warmup_range_is_fitted_once_when_learning_starts(cls):
    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, utd=1, noise_critic_steps=1)
    algo = cls(cfg, NarrowDemosPuppet(), 2, seed=0)
    obs = fill(algo)
    assert algo.scale_obs(obs).abs().max() > 100  # the demos' range: rollouts land at |x| up to 300
    algo.update(env_steps=0)
    assert algo.scale_obs(obs).abs().max() <= 1.0 + 1e-5
    center = algo.scale_obs.center.clone()
    fill(algo, 10)
    algo.replay.add(obs=torch.full((1, 2), 50.0), action=torch.zeros(1, algo.replay.fields["action"][0]),
                    reward=-torch.ones(1), next_obs=torch.zeros(1, 2), done=torch.zeros(1))
    algo.update(env_steps=0)
    assert torch.equal(algo.scale_obs.center, center)  # fixed once fitted: the networks were trained on it


def test_demos_range_keeps_the_policy_normalizer():
    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, utd=1, obs_range="demos")
    algo = DSRL(cfg, NarrowDemosPuppet(), 2, seed=0)
    fill(algo)
    algo.update(env_steps=0)
    torch.testing.assert_close(algo.scale_obs.scale, torch.full((2,), 0.01))


def test_served_actor_scales_as_the_run_did_and_old_exports_use_the_demos_range():
    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, utd=1)
    algo = DSRL(cfg, NarrowDemosPuppet(), 2, seed=0)
    obs = fill(algo)
    algo.update(env_steps=0)
    exported = algo.export()
    served = load_steered_policy(exported, cfg, NarrowDemosPuppet(), "test")
    np.testing.assert_allclose(served.act(obs[:8].numpy()), algo.eval_policy().act(obs[:8].numpy()), atol=1e-6)
    old = {k: v for k, v in exported.items() if not k.startswith("obs_scaler.")}  # a run from before the scaler
    torch.testing.assert_close(load_scaler(old, NarrowDemosPuppet(), cfg, 2).scale, torch.full((2,), 0.01))
    load_steered_policy(old, cfg, NarrowDemosPuppet(), "test").act(obs[:2].numpy())  # still serves


@pytest.mark.parametrize("cls, key", [(DSRL, "obs_scaler."), (DSRLNA, "na.scale_obs.")])
def test_a_checkpoint_from_before_the_scaler_resumes_with_the_demos_range(cls, key):
    cfg = dataclasses.replace(FAST_SAC, warmup_steps=0, utd=1, noise_critic_steps=1)
    algo = cls(cfg, NarrowDemosPuppet(), 2, seed=0)
    fill(algo)
    algo.update(env_steps=0)
    tensors, meta = algo.state()
    old = {k: v for k, v in tensors.items() if not k.startswith(key)}
    resumed = cls(cfg, NarrowDemosPuppet(), 2, seed=1)
    resumed.load_state(old, meta)
    assert resumed.scale_obs.is_fitted
    torch.testing.assert_close(resumed.scale_obs.scale, torch.full((2,), 0.01))
