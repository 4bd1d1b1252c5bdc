import numpy as np
import pytest
import torch

from postbc.errors import PostBCError
from postbc.finetune.replay import ReplayBuffer
from postbc.io.state import flatten, rng_state, set_rng_state, unflatten
from postbc.io.checkpoint import load_checkpoint, save_checkpoint

FIELDS = {"obs": (3,), "action": (2,), "reward": (), "done": ()}


def _batch(n, start):
    ids = torch.arange(start, start + n, dtype=torch.float32)
    return dict(obs=ids[:, None].repeat(1, 3), action=ids[:, None].repeat(1, 2), reward=ids, done=ids * 0)


def test_ring_buffer_keeps_the_newest_in_order():
    buf = ReplayBuffer(5, FIELDS)
    buf.add(**_batch(3, 0))
    buf.add(**_batch(4, 3))
    assert len(buf) == 5
    assert buf.all()["reward"].tolist() == [2, 3, 4, 5, 6]
    s = buf.sample(100)
    assert s["obs"].shape == (100, 3) and set(s["reward"].tolist()) <= {2, 3, 4, 5, 6}


def test_save_load_round_trip(tmp_path):
    buf = ReplayBuffer(5, FIELDS)
    buf.add(**_batch(7, 0))
    buf.save(tmp_path / "replay")
    assert not list(tmp_path.glob("*.pkl"))
    back = ReplayBuffer.load(tmp_path / "replay")
    for k in FIELDS:
        assert torch.equal(back.all()[k], buf.all()[k])
    back.add(**_batch(1, 100))
    assert back.all()["reward"].tolist() == [3, 4, 5, 6, 100]


def test_load_refuses_other_fields():
    buf = ReplayBuffer(5, FIELDS)
    tensors, meta = buf.state()
    other = ReplayBuffer(5, {"obs": (4,), "action": (2,), "reward": (), "done": ()})
    with pytest.raises(PostBCError, match="fields"):
        other.load_state(tensors, meta)


def test_optimizer_and_rng_state_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
    rng = np.random.default_rng(5)
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    skel = {"opt": flatten(opt.state_dict(), "opt", tensors), "rng": flatten(rng_state(rng), "rng", tensors)}
    save_checkpoint(tmp_path / "ck", tensors, skel)
    expected_draw = rng.random()
    expected_torch = torch.rand(3)

    t2, meta = load_checkpoint(tmp_path / "ck")
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict({k[4:]: v for k, v in t2.items() if k.startswith("net.")})
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    opt2.load_state_dict(unflatten(meta["opt"], t2))
    rng2 = np.random.default_rng(0)
    set_rng_state(unflatten(meta["rng"], t2), rng2)
    assert rng2.random() == expected_draw and torch.equal(torch.rand(3), expected_torch)
    x = torch.randn(4, 3)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    assert torch.equal(net.weight, net2.weight)
