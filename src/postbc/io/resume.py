"""The one resumable-run checkpoint every training loop uses: pretraining epochs, online finetuning, IQL fitting.

A loop hands `save` what it owns (networks, optimizers and buffers as tensors, see `postbc.io.state`)
and its counters as JSON; `RunCheckpoint` adds the random states it was given, refuses to overwrite
the last good checkpoint with non-finite weights, and on `load` refuses a checkpoint written for
other inputs (another dataset, task or base policy), naming what differs. Everything is
safetensors + JSON (`postbc.io.checkpoint`): nothing is pickled.

Random states: the global torch RNG always (replay sampling, SAC noise), plus a numpy Generator and
a torch Generator when the loop has them. Checkpoints written before this module (pretraining:
`identity` and the generator's state as `rng.torch`; finetuning: `compat`; IQL: the global torch
state as `rng.torch`) still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from postbc.errors import NonFiniteLoss, PostBCError
from postbc.io.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from postbc.io.state import flatten, unflatten

LEGACY_IDENTITY_KEYS = ("identity", "compat")


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Keys whose values differ; a key only one side records (an older or newer version) is not compared."""
    return sorted(k for k in set(old) & set(new) if old[k] != new[k])


def _difference(key: str, then: Any, now: Any) -> str:
    """`key` and both values when they are short (a task name, a size), else just `key` (a digest)."""
    return f"{key} {then!r} then, {now!r} now" if len(repr(then)) + len(repr(now)) <= 60 else key


def _all_finite(tensors: Mapping[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


class RunCheckpoint:
    """`stem`.safetensors / `stem`.json holding a loop's state, its counters, its inputs' identity and its RNGs."""

    def __init__(self, stem: Path, identity: Mapping[str, Any], *, refuse: str = "use a new --out",
                 np_rng: np.random.Generator | None = None, generator: torch.Generator | None = None):
        self.stem, self.identity = Path(stem), dict(identity)
        self.refuse = refuse
        self.np_rng, self.generator = np_rng, generator

    def exists(self) -> bool:
        return checkpoint_exists(self.stem)

    def save(self, tensors: dict[str, torch.Tensor], meta: Mapping[str, Any], where: str = "") -> None:
        """Write the checkpoint; non-finite weights are refused and the previous checkpoint is kept."""
        if not _all_finite(tensors):
            raise NonFiniteLoss(f"the networks hold non-finite values{' at ' + where if where else ''}; the checkpoint "
                                f"was not overwritten, the last good one is {self.stem}")
        rng_tensors: dict[str, torch.Tensor] = {}
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.np_rng is not None:
            state["numpy"] = self.np_rng.bit_generator.state
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        skeleton = flatten(state, "rng", rng_tensors)
        save_checkpoint(self.stem, {**tensors, **rng_tensors},
                        {**meta, "identity": self.identity, "rng": skeleton})

    def load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, meta) of the checkpoint with the RNGs restored; refused when written for other inputs."""
        tensors, meta = load_checkpoint(self.stem)
        old = next((meta[k] for k in LEGACY_IDENTITY_KEYS if k in meta), {})
        changed = changed_keys(old, self.identity)
        if changed:
            raise PostBCError(f"resume checkpoint {self.stem} was written for different inputs (differs in: "
                              f"{', '.join(_difference(k, old[k], self.identity[k]) for k in changed)}); {self.refuse}")
        self._restore_rng(tensors, meta)
        return tensors, meta

    def _restore_rng(self, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
        if "rng" not in meta:  # pretraining before this module: `rng.torch` is its generator; IQL: the global RNG
            if self.generator is not None:
                self.generator.set_state(tensors["rng.torch"])
            elif "rng.torch" in tensors:
                torch.set_rng_state(tensors["rng.torch"])
            return
        state = unflatten(meta["rng"], tensors)
        torch.set_rng_state(state["torch"])
        if self.np_rng is not None and "numpy" in state:
            self.np_rng.bit_generator.state = state["numpy"]
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])
