import json

import pytest
import torch

from postbc.errors import PostBCError
from postbc.io.checkpoint import check_shapes, checkpoint_paths, load_checkpoint, save_checkpoint


def test_round_trip_keeps_tensors_and_meta(tmp_path):
    tensors = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    save_checkpoint(tmp_path / "ckpt", tensors, {"epoch": 7, "keys": ["a", "b"]})
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta == {"epoch": 7, "keys": ["a", "b"]}
    assert torch.equal(loaded["w"], tensors["w"]) and torch.equal(loaded["b"], tensors["b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.safetensors"]


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(PostBCError, match="ckpt.json does not exist"):
        load_checkpoint(tmp_path / "ckpt")


def test_torn_write_is_detected_by_hash(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(2)}, {})
    first_meta = checkpoint_paths(tmp_path / "ckpt")[1].read_text()
    # A writer killed after replacing the weights but before the JSON leaves new weights + old JSON.
    save_checkpoint(tmp_path / "ckpt", {"w": torch.ones(2)}, {})
    checkpoint_paths(tmp_path / "ckpt")[1].write_text(first_meta)
    with pytest.raises(PostBCError, match="do not match the hash"):
        load_checkpoint(tmp_path / "ckpt")


def test_other_format_version_is_refused(tmp_path):
    save_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(2)}, {})
    meta_path = checkpoint_paths(tmp_path / "ckpt")[1]
    record = json.loads(meta_path.read_text())
    record["versions"]["format"] = "99"
    meta_path.write_text(json.dumps(record))
    with pytest.raises(PostBCError, match="format version 99"):
        load_checkpoint(tmp_path / "ckpt")


def test_check_shapes_names_the_tensor():
    with pytest.raises(PostBCError, match="'w' has shape \\(2, 3\\), the model expects \\(2, 4\\)"):
        check_shapes({"w": torch.zeros(2, 3)}, {"w": (2, 4)}, "ckpt")
    with pytest.raises(PostBCError, match="missing keys \\['b'\\]"):
        check_shapes({"w": torch.zeros(2)}, {"w": (2,), "b": (1,)}, "ckpt")
