"""Finetuning a policy that acts from images: DSRL and Best-of-N see it through its frozen encoder.

The line task here shows the goal only as a picture (`fake_image_task_spec`), so a noise actor or
critic that ignored the image could not tell where to go: DSRL must still lift a noisy image BC
policy to near-perfect success, and its replay must hold the encoder's features, not pixels.
"""

import numpy as np
import pytest
import torch

from postbc.data.normalizer import MinMaxNormalizer
from postbc.envs.testing import fake_image_task_spec, line_image
from postbc.errors import PostBCError
from postbc.finetune.command import run
from postbc.finetune.config import BestOfNConfig, FinetuneConfig, IQLConfig, SACConfig
from postbc.finetune.features import PolicyFeatures
from postbc.io.runs import read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy

SIDE = 32  # keypoint maps of 5 x 5 (at 24 pixels, 3 x 3 maps locate the goal too coarsely for DSRL to reach 0.9)
HORIZON = 8
TRAIN_STEPS = 400


@pytest.fixture(scope="module")
def image_bc_policy() -> PretrainedPolicy:
    """BC of a greedy operator with N(0, 1.5^2) action noise that sees the goal only in `view_image`."""
    rng = np.random.default_rng(0)
    n = 2000
    pos, goal = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    pixels = np.stack([line_image(g, SIDE) for g in goal]).reshape(n, -1).astype(np.float32)
    obs = np.concatenate([pos[:, None].astype(np.float32), pixels], 1)
    actions = np.clip(4 * (goal - pos)[:, None] + 1.5 * rng.standard_normal((n, 2)), -1, 1)[..., None]
    torch.manual_seed(0)
    model = DiffusionPolicy(DiffusionConfig(obs_dim=obs.shape[1], act_dim=1, chunk=2, hidden=64, layers=2,
                                            train_steps=20, inference_steps=4, images=((1, SIDE),), image_features=8))
    normalizer = MinMaxNormalizer(np.r_[-1.0, np.zeros(pixels.shape[1])], np.r_[1.0, np.full(pixels.shape[1], 255.0)])
    x, y = torch.as_tensor(normalizer.normalize(obs)), torch.as_tensor(actions, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(TRAIN_STEPS):
        idx = torch.randint(0, n, (128,))
        loss = model.loss(x[idx], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return PretrainedPolicy(model.eval(), normalizer, MinMaxNormalizer([-1], [1]), ("pos", "view_image"),
                            (1, SIDE * SIDE * 3), {"env_name": "line-image", "type": "fake", "env_kwargs": {"task": "line-image"}})


def test_features_are_the_frozen_encoder_of_the_normalized_observation(image_bc_policy):
    features = PolicyFeatures(image_bc_policy, image_bc_policy.obs_dim)
    assert features.encodes and features.dim == 1 + 8
    obs = np.concatenate([[[0.3]], line_image(0.5, SIDE).reshape(1, -1)], 1).astype(np.float32)
    obs = np.repeat(obs, 3, 0)
    seen = features(obs)
    assert seen.shape == (3, 9)
    torch.testing.assert_close(seen[:, 0], torch.full((3,), 0.3))  # the low-dim entry, normalized on [-1, 1]
    assert torch.equal(seen[0], seen[1])  # no random shift: the same frame, the same features
    other = np.concatenate([[[0.3]], line_image(-0.5, SIDE).reshape(1, -1)], 1).astype(np.float32)
    assert not torch.allclose(features(other)[0, 1:], seen[0, 1:])  # the features see where the goal is


def test_dsrl_improves_an_image_policy_through_its_encoder(image_bc_policy, tmp_path):
    sac = SACConfig(hidden=64, layers=2, batch_size=64, utd=4, warmup_steps=400, lr=1e-3, replay_size=10_000)
    cfg = FinetuneConfig(checkpoint="image-bc", task="line-image", out=tmp_path / "run", steps=3000, num_envs=4,
                         eval_every=1500, eval_episodes=64, env_backend="sync", quiet=True, sac=sac)
    run(cfg, base=image_bc_policy, spec=fake_image_task_spec("line-image", HORIZON, SIDE))
    rows = read_metrics(cfg.out)
    assert 0.3 <= float(rows[0]["pretrained_success"]) <= 0.9  # room to improve
    assert float(rows[-1]["eval_success"]) >= 0.9 and float(rows[-1]["eval_stochastic_success"]) >= 0.9

    from postbc.finetune.serve import load_finetuned_policy
    from postbc.io.checkpoint import load_checkpoint

    replay = load_checkpoint(cfg.out / "checkpoints" / "last")[0]
    assert replay["replay.obs"].shape[1] == 9  # features, not 3073 pixels and a position
    served = load_finetuned_policy(cfg.out, base=image_bc_policy)
    obs = np.concatenate([[[0.0]], line_image(0.75, SIDE).reshape(1, -1)], 1).astype(np.float32)
    assert served.act(obs).shape == (1, 2, 1)


def test_best_of_n_on_an_image_policy_stores_features_and_serves_them(image_bc_policy, tmp_path, capsys):
    from postbc.finetune.best_of_n_fit import BestOfNFitConfig, run as fit
    from postbc.finetune.rollouts_file import load_rollouts

    bon = BestOfNConfig(rollouts=24, candidates=4, workers=1, heldout=0.25, iql=IQLConfig(hidden=32, batch_size=64))
    cfg = FinetuneConfig(checkpoint="image-bc", task="line-image", out=tmp_path / "bon", algo="best_of_n", steps=200,
                         eval_every=200, eval_episodes=16, env_backend="sync", quiet=True, best_of_n=bon)
    run(cfg, base=image_bc_policy, spec=fake_image_task_spec("line-image", HORIZON, SIDE))
    data, meta = load_rollouts(cfg.out / "rollouts.h5")
    assert meta["encoded"] and data["obs"].shape[1] == 9 and meta["obs_dim"] == 9
    assert "encoder features, from which no candidates can be drawn" in capsys.readouterr().out
    assert np.isfinite(float(read_metrics(cfg.out)[-1]["eval_success"]))

    # offline: such features mean nothing without the policy that made them
    with pytest.raises(PostBCError, match="encoder features.*--checkpoint"):
        fit(BestOfNFitConfig(rollouts=cfg.out / "rollouts.h5", out=tmp_path / "fit", steps=10, quiet=True))
    assert not (tmp_path / "fit").exists()
