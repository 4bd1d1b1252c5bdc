"""`postbc inspect FILE`: what a dataset holds (demos, lengths, keys, shapes, ranges); writes nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from postbc.data.robomimic import DemoFile, read_demos
from postbc.envs.cameras import is_image_key
from postbc.io.config import require_positive


@dataclasses.dataclass
class InspectConfig:
    file: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="FILE")]
    """robomimic-style HDF5 dataset, or a Best-of-N rollouts file."""
    filter_key: str | None = None
    """describe only the demos listed under mask/<filter_key>."""
    obs_keys: tuple[str, ...] | None = None
    """observation keys to read (default: the order recorded in the file, else all keys sorted)."""
    max_rows: int = 20
    """demos listed one per line (the first ones in numeric order); 0 lists all."""

    def __post_init__(self) -> None:
        require_positive("max_rows", self.max_rows, allow_zero=True)


def describe(f: DemoFile, max_rows: int = 20) -> str:
    demos = f.demos
    lengths = np.array([d.num_samples for d in demos])
    lines = [
        f"file: {f.path}",
        f"env: {f.env_args['env_name']} (type {f.env_args['type']}), "
        f"env_kwargs {json.dumps(f.env_args['env_kwargs'], sort_keys=True)[:300]}",
        "attrs: " + (", ".join(f"{k}={v}" for k, v in sorted(f.attrs.items())) or "none"),
        f"demos: {len(demos)}, samples: {int(lengths.sum())}, length min / mean / max: "
        f"{lengths.min()} / {lengths.mean():.1f} / {lengths.max()}",
        "filter keys: " + (", ".join(f"{k} ({n})" for k, n in sorted(f.filter_keys.items())) or "none"),
        "",
        "key (shape per step): per-dimension min .. max",
    ]
    arrays = {f"obs/{k}": [d.obs[k] for d in demos] for k in f.obs_keys} | {"actions": [d.actions for d in demos]}
    for name, parts in arrays.items():
        stacked = np.concatenate(parts)
        if name.startswith("obs/") and is_image_key(name[4:]):
            lines.append(f"  {name} {stacked.shape[1:]}: image, pixel values {stacked.min():.0f} .. {stacked.max():.0f}, "
                         f"mean {stacked.mean():.1f}")
            continue
        low, high = stacked.min(axis=0).reshape(-1), stacked.max(axis=0).reshape(-1)
        dims = ", ".join(f"{lo:.3g} .. {hi:.3g}" for lo, hi in zip(low, high))
        lines.append(f"  {name} {stacked.shape[1:]}: {dims}")

    lines += per_task_table(demos)
    extra = sorted({k for d in demos for k in d.attrs})
    shown = demos if max_rows == 0 else demos[:max_rows]
    rows = [["demo", "length", "return", *extra]]
    for d in shown:
        ret = f"{float(d.rewards.sum()):.2f}" if d.rewards is not None else "-"
        rows.append([d.name, str(d.num_samples), ret, *(str(d.attrs.get(k, "-")) for k in extra)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    if len(shown) < len(demos):
        lines.append(f"... {len(demos) - len(shown)} more (--max-rows 0 lists all)")
    return "\n".join(lines)


def per_task_table(demos) -> list[str]:
    """A multi-task dataset (demos with a `task` attribute, e.g. `postbc collect --task mt10`): demos and
    lengths per task; nothing for a single-task one."""
    tasks: dict[str, list[int]] = {}
    for d in demos:
        if "task" in d.attrs:
            tasks.setdefault(str(d.attrs["task"]), []).append(d.num_samples)
    if not tasks:
        return []
    lines = ["", "task                      demos  samples  mean length"]
    for name, lengths in tasks.items():
        lines.append(f"  {name:<24}{len(lengths):>5}  {sum(lengths):>7}  {np.mean(lengths):>11.1f}")
    untagged = sum("task" not in d.attrs for d in demos)
    if untagged:
        lines.append(f"  ({untagged} demos record no task)")
    return lines


def run(cfg: InspectConfig) -> None:
    from postbc.finetune.rollouts_file import describe_rollouts, is_rollouts_file

    if is_rollouts_file(cfg.file):  # what `postbc finetune --algo best_of_n` writes (rollouts.h5)
        print(describe_rollouts(cfg.file))
        return
    f = read_demos(cfg.file, obs_keys=cfg.obs_keys, filter_key=cfg.filter_key)
    print(describe(f, cfg.max_rows))
