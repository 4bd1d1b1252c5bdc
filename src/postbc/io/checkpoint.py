"""Checkpoints: tensors in safetensors, everything else in a JSON file beside them.

A checkpoint named `STEM` is two files, `STEM.safetensors` and `STEM.json`. The weights are
written first and the JSON last; the JSON records the weights' SHA-256, so a checkpoint whose
writer was killed between the two renames is detected on load instead of silently mixed.
Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

import postbc
from postbc.errors import PostBCError
from postbc.io.atomic import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    return {
        "postbc": postbc.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "format": str(FORMAT_VERSION),
    }


def checkpoint_paths(stem: Path) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_checkpoint(stem: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Atomically write `tensors` and JSON-able `meta` under `stem` (no extension)."""
    weights_path, meta_path = checkpoint_paths(stem)
    blob = save_safetensors_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(weights_path, blob)
    record = {
        "meta": dict(meta),
        "versions": versions(),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
    }
    atomic_write_json(meta_path, record)


def checkpoint_exists(stem: Path) -> bool:
    return all(p.exists() for p in checkpoint_paths(stem))


def load_checkpoint(stem: Path, map_location: torch.device | str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by `save_checkpoint`; return (tensors, meta), the tensors on `map_location`
    (default: the CPU, where they were written from)."""
    weights_path, meta_path = checkpoint_paths(stem)
    for p in (meta_path, weights_path):
        if not p.exists():
            raise PostBCError(f"checkpoint file {p} does not exist; point to a run directory that holds a finished checkpoint")
    try:
        record = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise PostBCError(f"checkpoint metadata {meta_path} is not valid JSON ({e}); the file is damaged, re-create the checkpoint") from e
    for key in ("meta", "versions", "weights_sha256"):
        if key not in record:
            raise PostBCError(f"checkpoint metadata {meta_path} has no '{key}' entry; it was not written by postbc")
    fmt = record["versions"].get("format")
    if fmt != str(FORMAT_VERSION):
        raise PostBCError(
            f"checkpoint {meta_path} has format version {fmt}, this postbc reads version {FORMAT_VERSION}; "
            f"re-create it with postbc {postbc.__version__}"
        )
    blob = weights_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != record["weights_sha256"]:
        raise PostBCError(
            f"checkpoint weights {weights_path} do not match the hash recorded in {meta_path}: the checkpoint was "
            "only partly written or was modified; resume from an earlier checkpoint or re-create it"
        )
    tensors = load_safetensors_bytes(blob)
    if map_location is not None:
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return tensors, record["meta"]


def check_shapes(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size | tuple], source: str) -> None:
    """Refuse tensors whose keys or shapes differ from what the receiving model expects."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise PostBCError(
            f"{source}: weights do not fit this model (missing keys {missing[:5]}, unexpected keys {extra[:5]}); "
            "the checkpoint was made by a different model configuration"
        )
    for k, shape in expected.items():
        if tuple(tensors[k].shape) != tuple(shape):
            raise PostBCError(
                f"{source}: tensor '{k}' has shape {tuple(tensors[k].shape)}, the model expects {tuple(shape)}; "
                "the checkpoint was made with other widths / dimensions"
            )
