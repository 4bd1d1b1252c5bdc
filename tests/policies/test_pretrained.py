"""PretrainedPolicy: raw in / raw out, deterministic from noise, save/load round trip, refusals."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from postbc.data import MinMaxNormalizer
from postbc.envs.registry import get_task
from postbc.errors import PostBCError
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy

TOY_KEYS, TOY_DIMS = ("agent_pos", "agent_vel", "goal_pos"), (2, 2, 2)


def make_policy(hidden=16) -> PretrainedPolicy:
    torch.manual_seed(0)
    model = DiffusionPolicy(DiffusionConfig(obs_dim=6, act_dim=2, chunk=3, hidden=hidden, layers=2))
    return PretrainedPolicy(
        model,
        MinMaxNormalizer(-np.ones(6), np.ones(6)),
        MinMaxNormalizer([-0.5, 0.0], [0.5, 2.0]),
        TOY_KEYS, TOY_DIMS, {"env_name": "toy", "type": "toy", "env_kwargs": {"task": "toy"}},
    )


def test_act_is_raw_ddim_from_the_given_noise():
    policy = make_policy()
    obs = np.random.default_rng(0).uniform(-1, 1, (4, 6)).astype(np.float32)
    noise = np.random.default_rng(1).standard_normal((4, 3, 2)).astype(np.float32)
    out = policy.act(obs, noise=noise)
    assert out.shape == (4, 3, 2) and out.dtype == np.float32
    normalized = policy.model.sample_ddim(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(out, normalized * np.array([0.5, 1.0]) + np.array([0.0, 1.0]), rtol=1e-6, atol=1e-6)
    assert (out[..., 0] >= -0.5).all() and (out[..., 0] <= 0.5).all() and (out[..., 1] >= 0).all()
    np.testing.assert_array_equal(policy.act(obs, noise=noise.reshape(4, 6)), out)  # flat noise is accepted
    g = torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(policy.act(obs, generator=g), policy.act(obs, noise=torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(3))))


def test_save_load_round_trip(tmp_path):
    policy = make_policy()
    policy.save(tmp_path / "policy")
    loaded = PretrainedPolicy.load(tmp_path)  # a run directory
    assert (loaded.chunk, loaded.act_dim, loaded.obs_dim, loaded.obs_keys) == (3, 2, 6, TOY_KEYS)
    assert loaded.env_args == policy.env_args
    obs, noise = np.zeros((2, 6), np.float32), np.ones((2, 3, 2), np.float32)
    np.testing.assert_array_equal(loaded.act(obs, noise=noise), policy.act(obs, noise=noise))
    assert PretrainedPolicy.load(tmp_path / "policy.json").chunk == 3  # or the file itself


def test_load_refuses_unfinished_foreign_and_misshapen_checkpoints(tmp_path):
    with pytest.raises(PostBCError, match="has not finished"):
        PretrainedPolicy.load(tmp_path)
    make_policy().save(tmp_path / "policy")
    meta_path = tmp_path / "policy.json"
    record = json.loads(meta_path.read_text())

    def write(change):
        r = json.loads(json.dumps(record))
        change(r["meta"])
        meta_path.write_text(json.dumps(r))

    write(lambda m: m.update(kind="postbc.critic"))
    with pytest.raises(PostBCError, match="not a pretrained policy"):
        PretrainedPolicy.load(tmp_path)
    write(lambda m: m["diffusion"].update(hidden=32))
    with pytest.raises(PostBCError, match="shape"):
        PretrainedPolicy.load(tmp_path)
    write(lambda m: m.update(policy_format=99))
    with pytest.raises(PostBCError, match="policy format 99"):
        PretrainedPolicy.load(tmp_path)
    write(lambda m: m["action_normalizer"].update(low=[0.0], high=[1.0]))
    with pytest.raises(PostBCError, match="action normalizer has size 1"):
        PretrainedPolicy.load(tmp_path)


def test_check_task_names_both_sides():
    policy = make_policy()
    toy = get_task("toy")
    policy.check_task(toy)
    with pytest.raises(PostBCError, match=r"obs keys: policy \['agent_pos', 'agent_vel', 'goal_pos'\], task \['agent_pos'\]"):
        policy.check_task(dataclasses.replace(toy, obs_keys=("agent_pos",), obs_dims=(2,)))
    with pytest.raises(PostBCError, match="action dim: policy 2, task 3"):
        policy.check_task(dataclasses.replace(toy, act_dim=3))
    with pytest.raises(PostBCError, match="obs dims"):
        policy.check_task(dataclasses.replace(toy, obs_dims=(2, 2, 3)))


def test_act_refuses_wrong_obs_shape():
    with pytest.raises(PostBCError, match=r"\(B, 6\)"):
        make_policy().act(np.zeros((2, 5), np.float32))
