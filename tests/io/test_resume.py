"""RunCheckpoint: the checkpoint of every training loop (pretraining, finetuning, IQL)."""

import numpy as np
import pytest
import torch

from postbc.errors import NonFiniteLoss, PostBCError
from postbc.io.checkpoint import load_checkpoint, save_checkpoint
from postbc.io.resume import RunCheckpoint


def test_round_trip_restores_tensors_counters_and_every_rng(tmp_path):
    np_rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(1)
    ckpt = RunCheckpoint(tmp_path / "last", {"task": "toy"}, np_rng=np_rng, generator=gen)
    torch.manual_seed(2)
    ckpt.save({"w": torch.ones(3)}, {"step": 7})
    expected = (torch.rand(2), np_rng.random(), torch.rand(2, generator=gen))
    torch.manual_seed(99), np_rng.random(), torch.rand(5, generator=gen)  # the RNGs move on, as a run would
    tensors, meta = ckpt.load()
    assert meta["step"] == 7 and torch.equal(tensors["w"], torch.ones(3))
    got = (torch.rand(2), np_rng.random(), torch.rand(2, generator=gen))
    assert torch.equal(got[0], expected[0]) and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_non_finite_weights_keep_the_last_good_checkpoint(tmp_path):
    ckpt = RunCheckpoint(tmp_path / "last", {})
    ckpt.save({"w": torch.ones(2)}, {"step": 1})
    with pytest.raises(NonFiniteLoss, match=r"at env step 5.*last good one is .*last"):
        ckpt.save({"w": torch.tensor([1.0, float("nan")])}, {"step": 5}, where="env step 5")
    assert ckpt.load()[1]["step"] == 1


def test_other_inputs_are_refused_naming_what_differs(tmp_path):
    RunCheckpoint(tmp_path / "last", {"task": "lift", "obs_dim": 19, "digest": "a" * 64}).save({}, {})
    with pytest.raises(PostBCError, match=r"differs in: digest, task 'lift' then, 'can' now\); use a new --out"):
        RunCheckpoint(tmp_path / "last", {"task": "can", "obs_dim": 19, "digest": "b" * 64}).load()
    # a key one side does not record (an older or newer version) is not compared
    RunCheckpoint(tmp_path / "last", {"task": "lift", "obs_dim": 19, "digest": "a" * 64, "new": 1}).load()


def test_checkpoints_of_the_loops_before_it_still_load(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    draw = torch.rand(3, generator=gen)
    save_checkpoint(tmp_path / "pretrain", {"rng.torch": state, "m.w": torch.zeros(1)},  # pretraining's old layout
                    {"epoch": 3, "identity": {"dataset_sha256": "x"}})
    gen2 = torch.Generator().manual_seed(5)
    _, meta = RunCheckpoint(tmp_path / "pretrain", {"dataset_sha256": "x"}, generator=gen2).load()
    assert meta["epoch"] == 3 and torch.equal(torch.rand(3, generator=gen2), draw)
    save_checkpoint(tmp_path / "finetune", {}, {"compat": {"task": "toy"}})  # finetuning's old identity key
    with pytest.raises(PostBCError, match="task 'toy' then, 'lift' now"):
        RunCheckpoint(tmp_path / "finetune", {"task": "lift"}).load()
    assert load_checkpoint(tmp_path / "finetune")[1]["compat"] == {"task": "toy"}
