"""The pretraining trainer: learns, resumes bit-exactly after a kill, refuses changed inputs."""

import json

import pytest
import torch

from postbc.errors import PostBCError
from postbc.io.runs import read_metrics
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.io.state import flatten, unflatten
from postbc.pretrain.target_noise import IsotropicTargetNoise, NoTargetNoise
from postbc.pretrain.trainer import PolicyTraining, cosine_lr, train_policy

CFG = DiffusionConfig(obs_dim=2, act_dim=1, chunk=2, hidden=16, layers=2, train_steps=20, inference_steps=4)


def toy_data(n=40):
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(n, 2, generator=g) * 2 - 1
    actions = torch.stack([obs[:, :1] * 0.5, -obs[:, 1:] * 0.5], dim=1)  # (n, 2, 1)
    return obs, actions


class KillAfter:
    """Target noise that raises after `calls` batches, like a run killed mid-epoch."""

    def __init__(self, inner, calls):
        self.inner, self.left = inner, calls

    def __call__(self, actions, idx, generator=None):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner(actions, idx, generator)


def train(tmp_path, noise, epochs=4, seed=0, checkpoint_every=2):
    torch.manual_seed(seed)
    policy = DiffusionPolicy(CFG)
    obs, actions = toy_data()
    settings = PolicyTraining(epochs=epochs, batch_size=16, lr=3e-3, checkpoint_every=checkpoint_every)
    ema = train_policy(policy, obs, actions, noise, settings, generator=torch.Generator().manual_seed(seed),
                       checkpoint=tmp_path / "checkpoints" / "last", log_dir=tmp_path, identity={"data": "x"},
                       quiet=True, tensorboard=False)
    return policy, ema


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    noise = IsotropicTargetNoise(0.1)
    straight, straight_ema = train(tmp_path / "a", noise)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "b", KillAfter(noise, calls=3 * 3 + 1))  # 3 batches per epoch: dies in epoch 4
    assert [r["epoch"] for r in read_metrics(tmp_path / "b")] == ["1", "2", "3"]
    resumed, resumed_ema = train(tmp_path / "b", noise, seed=1)  # a different init is overwritten by the checkpoint
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(straight_ema.model.state_dict().values(), resumed_ema.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [r["epoch"] for r in read_metrics(tmp_path / "b")] == ["1", "2", "3", "4"]  # epoch 3's row was rewritten


def test_finished_checkpoint_means_nothing_to_do(tmp_path):
    train(tmp_path, NoTargetNoise(), epochs=2)
    policy, _ = train(tmp_path, KillAfter(NoTargetNoise(), calls=0), epochs=2)  # would raise if it trained
    assert len(read_metrics(tmp_path)) == 2


def test_changed_inputs_are_refused_on_resume(tmp_path):
    train(tmp_path, NoTargetNoise(), epochs=2)
    obs, actions = toy_data()
    with pytest.raises(PostBCError, match="differs in: data"):
        train_policy(DiffusionPolicy(CFG), obs, actions, NoTargetNoise(), PolicyTraining(epochs=2, batch_size=16),
                     generator=torch.Generator(), checkpoint=tmp_path / "checkpoints" / "last", identity={"data": "y"},
                     quiet=True)


def test_training_reduces_the_denoising_loss(tmp_path):
    train(tmp_path, NoTargetNoise(), epochs=100, checkpoint_every=100)
    losses = [float(r["loss"]) for r in read_metrics(tmp_path)]
    assert sum(losses[-5:]) / 5 < 0.3 * sum(losses[:3]) / 3


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3)).square().sum().backward()
        opt.step()
    tensors = {}
    record = json.loads(json.dumps(flatten(opt.state_dict(), "optim", tensors)))
    fresh = torch.optim.AdamW(model.parameters(), lr=5.0)
    fresh.load_state_dict(unflatten(record, tensors))
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for k, v in a["state"][pid].items():
            torch.testing.assert_close(b["state"][pid][k], v)


def test_cosine_lr_closed_form():
    assert cosine_lr(1.0, 0, 10) == 1.0
    assert cosine_lr(1.0, 5, 10) == pytest.approx(0.5)
    assert cosine_lr(1.0, 10, 10) == pytest.approx(0.0)
