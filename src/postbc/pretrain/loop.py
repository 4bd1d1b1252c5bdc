"""A resumable epoch loop: weights, optimizer state, RNG state and epoch in one checkpoint.

Used by both training loops of pretraining (the ensemble and the diffusion policy); the checkpoint
is `postbc.io.resume.RunCheckpoint`, the one every training loop uses.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from postbc.io.checkpoint import check_shapes
from postbc.io.resume import RunCheckpoint
from postbc.io.runs import MetricsLogger
from postbc.io.state import load_module_state, module_state
from postbc.utils import cpu_seconds, progress, show


class ResumableState:
    """What an epoch loop needs to continue after a kill: modules, optimizer, generator, epoch, wall and CPU time.

    `identity` is JSON that must match on resume (e.g. the dataset digest); a mismatch is refused.
    Stored through `postbc.io.resume.RunCheckpoint`, the checkpoint every training loop uses.
    """

    def __init__(
        self,
        stem: Path,
        modules: Mapping[str, nn.Module],
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        identity: Mapping[str, Any],
    ):
        self.modules, self.optimizer = dict(modules), optimizer
        self.checkpoint = RunCheckpoint(stem, identity, generator=generator,
                                        refuse="the dataset or model changed since the run started: use a new --out "
                                               "or delete the directory")
        self.epoch = 0
        self.wall_time = self.cpu_time = 0.0

    def save(self) -> None:
        tensors, optim = module_state(self.modules, {"optim": self.optimizer})
        self.checkpoint.save(tensors, {"epoch": self.epoch, "wall_time": self.wall_time, "cpu_time": self.cpu_time,
                                        "optimizer": optim["optim"]},
                             where=f"epoch {self.epoch}")

    def restore(self) -> bool:
        """Load the checkpoint if there is one; True when something was restored."""
        if not self.checkpoint.exists():
            return False
        tensors, meta = self.checkpoint.load()
        source = f"resume checkpoint {self.checkpoint.stem}"
        for name, module in self.modules.items():
            sub = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            check_shapes(sub, {k: v.shape for k, v in module.state_dict().items()}, source)
        load_module_state(self.modules, {"optim": self.optimizer}, tensors, {"optim": meta["optimizer"]})
        self.epoch, self.wall_time = int(meta["epoch"]), float(meta["wall_time"])
        # NaN (unknown, not 0) for a checkpoint written before the CPU time was kept
        self.cpu_time = float(meta.get("cpu_time", math.nan))
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

    Each epoch's metrics are logged to `log_dir`/metrics.csv as (epoch, metrics..., wall_time, cpu_time), where
    epoch counts finished epochs (1-based) and wall_time and cpu_time the training seconds so far, carried
    across resumes (a sweep's cost table reads them: `postbc.experiments.results.run_cpu`); rows a killed
    run wrote after its last checkpoint are dropped. A checkpoint is written every
    `checkpoint_every` epochs and after the last one.
    """
    restored = state.restore()
    if state.epoch >= epochs:
        return
    # a run resumed from an older version's metrics.csv keeps its columns (without cpu_time)
    logger = MetricsLogger(log_dir, step_key="epoch", resume_step=state.epoch, tensorboard=tensorboard,
                           keep_old_header=restored) if log_dir else None
    try:
        bar = progress(range(state.epoch, epochs), desc=desc, total=epochs - state.epoch, quiet=quiet)
        for epoch in bar:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            metrics = train_epoch(epoch)
            show(bar, loss=metrics.get("loss"))
            state.wall_time += time.perf_counter() - start
            state.cpu_time += cpu_seconds() - cpu_start
            state.epoch = epoch + 1
            if logger is not None:
                logger.log({"epoch": state.epoch, **metrics, "wall_time": state.wall_time, "cpu_time": state.cpu_time})
            if state.epoch % checkpoint_every == 0 or state.epoch == epochs:
                state.save()
    finally:
        if logger is not None:
            logger.close()
