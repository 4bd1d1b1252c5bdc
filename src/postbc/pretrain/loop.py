"""A resumable epoch loop: weights, optimizer state, RNG state and epoch in one checkpoint.

Used by both training loops of pretraining (the ensemble and the diffusion policy). The checkpoint
is safetensors + JSON via `postbc.io.checkpoint`; the optimizer's state_dict is split into tensors
and a JSON skeleton by `postbc.io.state`, so nothing is pickled.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from postbc.errors import PostBCError
from postbc.io.checkpoint import check_shapes, checkpoint_exists, load_checkpoint, save_checkpoint
from postbc.io.runs import MetricsLogger
from postbc.io.state import flatten, unflatten
from postbc.utils import progress, show


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


class ResumableState:
    """What a training loop needs to continue after a kill: modules, optimizer, generator, epoch.

    `identity` is JSON that must match on resume (e.g. the dataset digest); a mismatch is refused.
    """

    def __init__(
        self,
        stem: Path,
        modules: Mapping[str, nn.Module],
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        identity: Mapping[str, Any],
    ):
        self.stem, self.modules, self.optimizer, self.generator = Path(stem), dict(modules), optimizer, generator
        self.identity = dict(identity)
        self.epoch = 0
        self.wall_time = 0.0

    def save(self) -> None:
        tensors = {f"{name}.{k}": v for name, m in self.modules.items() for k, v in m.state_dict().items()}
        optim_record = flatten(self.optimizer.state_dict(), "optim", tensors)
        tensors["rng.torch"] = self.generator.get_state()
        meta = {"epoch": self.epoch, "wall_time": self.wall_time, "identity": self.identity, "optimizer": optim_record}
        save_checkpoint(self.stem, tensors, meta)

    def restore(self) -> bool:
        """Load the checkpoint if there is one; True when something was restored."""
        if not checkpoint_exists(self.stem):
            return False
        tensors, meta = load_checkpoint(self.stem)
        source = f"resume checkpoint {self.stem}"
        if meta.get("identity") != self.identity:
            changed = changed_keys(meta.get("identity", {}), self.identity)
            raise PostBCError(
                f"{source} was written for different inputs (differs in: {', '.join(changed)}); "
                "the dataset or model changed since the run started: use a new --out or delete the directory"
            )
        for name, module in self.modules.items():
            sub = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            check_shapes(sub, {k: v.shape for k, v in module.state_dict().items()}, source)
            module.load_state_dict(sub)
        self.optimizer.load_state_dict(unflatten(meta["optimizer"], tensors))
        self.generator.set_state(tensors["rng.torch"])
        self.epoch, self.wall_time = int(meta["epoch"]), float(meta["wall_time"])
        return True


def run_epochs(
    state: ResumableState,
    epochs: int,
    train_epoch: Callable[[int], Mapping[str, float]],
    *,
    log_dir: Path | None,
    checkpoint_every: int,
    desc: str,
    quiet: bool = False,
    tensorboard: bool = True,
) -> None:
    """Restore `state` if a checkpoint exists, then call `train_epoch(epoch)` up to `epochs`.

    Each epoch's metrics are logged to `log_dir`/metrics.csv as (epoch, metrics..., wall_time), where
    epoch counts finished epochs (1-based) and wall_time the training seconds so far; rows a killed
    run wrote after its last checkpoint are dropped. A checkpoint is written every
    `checkpoint_every` epochs and after the last one.
    """
    state.restore()
    if state.epoch >= epochs:
        return
    logger = MetricsLogger(log_dir, step_key="epoch", resume_step=state.epoch, tensorboard=tensorboard) if log_dir else None
    try:
        bar = progress(range(state.epoch, epochs), desc=desc, total=epochs - state.epoch, quiet=quiet)
        for epoch in bar:
            start = time.perf_counter()
            metrics = train_epoch(epoch)
            show(bar, loss=metrics.get("loss"))
            state.wall_time += time.perf_counter() - start
            state.epoch = epoch + 1
            if logger is not None:
                logger.log({"epoch": state.epoch, **metrics, "wall_time": state.wall_time})
            if state.epoch % checkpoint_every == 0 or state.epoch == epochs:
                state.save()
    finally:
        if logger is not None:
            logger.close()
