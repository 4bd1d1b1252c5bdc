"""Small shared helpers: seeding, thread count, progress bars, CPU time."""

from __future__ import annotations

import os
import random
from typing import Iterable, TypeVar

import numpy as np

T = TypeVar("T")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; return a NumPy generator for the caller's own draws."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def is_quiet(quiet: bool = False) -> bool:
    """Progress bars are off when asked, under CI, or when POSTBC_QUIET is set."""
    return quiet or bool(os.environ.get("CI")) or bool(os.environ.get("POSTBC_QUIET"))


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, quiet: bool = False) -> Iterable[T]:
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=is_quiet(quiet), leave=False, dynamic_ncols=True)


def show(bar, **values) -> None:
    """Put the latest values (loss, success, ...) beside a progress bar; NaN and None are left out."""
    shown = {k: f"{float(v):.3g}" for k, v in values.items() if v is not None and float(v) == float(v)}
    if shown and hasattr(bar, "set_postfix"):
        bar.set_postfix(shown, refresh=False)


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (a stage's env workers, which
    are joined when their vector env closes); a stage's or a run's cost is the difference across it."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
