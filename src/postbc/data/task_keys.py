"""Per-task conditioning keys of multi-task data: what each task's demos were conditioned on.

A multi-task dataset (demos with a `task` attribute, e.g. `postbc collect --task mt10`) conditions
its policy through observation keys that are one vector per task: the env's `task_onehot`, or an
embedding made elsewhere (say, of each demo's `instruction`) and added with `add_task_key`. The
env cannot compute the latter, so a policy records them as a table (`task_table`): key -> task ->
vector, and evaluation hands the env that table (`postbc.envs.conditioning`). A task missing from
the table is a task the policy never saw, and is refused by name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from postbc.envs.cameras import is_image_key
from postbc.envs.registry import key_slices
from postbc.errors import PostBCError

TaskTable = dict[str, dict[str, list[float]]]  # key -> task -> vector


def task_table(dataset) -> TaskTable:
    """Every low-dim key of a `DemoDataset` that holds one vector per task (the same on every step of every
    demo of that task); {} for single-task data. A key that varies within a task is state, not conditioning."""
    tasks = dataset.demo_tasks
    if not tasks or any(t is None for t in tasks):
        return {}
    table: TaskTable = {}
    for key, part in key_slices(dataset.obs_keys, dataset.obs_dims):
        if is_image_key(key):
            continue
        values: dict[str, np.ndarray] = {}
        constant = True
        for task, first, length in zip(tasks, dataset.episode_starts, dataset.episode_lengths):
            rows = dataset.obs[first: first + length, part]
            if not np.all(rows == rows[0]) or (task in values and not np.array_equal(values[task], rows[0])):
                constant = False
                break
            values[task] = rows[0]
        if constant and len({v.tobytes() for v in values.values()}) == len(values):  # tells the tasks apart
            table[key] = {task: v.astype(float).tolist() for task, v in values.items()}
    return table


def add_task_key(path: Path, key: str, vectors: Mapping[str, Sequence[float]]) -> int:
    """Write `obs/<key>` and `next_obs/<key>` into every demo of `path`: its task's vector on every step
    (e.g. a language embedding of the task's instruction). Returns the number of demos written.

    Refused, with nothing written, when a demo records no task, a task has no vector, the vectors differ
    in size, or the key exists already."""
    import h5py

    from postbc.data.robomimic import DEMO_NAME, attr_value, read_env_args

    sizes = {len(v) for v in vectors.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise PostBCError(f"task key '{key}': every task needs a vector of one common, non-zero size; got sizes {sorted(sizes)}")
    read_env_args(path)  # refuses a missing file or one that is not a robomimic dataset, by name
    with h5py.File(path, "a") as f:
        demos = [name for name in f["data"] if DEMO_NAME.match(name)]
        for name in demos:  # check everything before writing anything
            group = f["data"][name]
            task = attr_value(group.attrs.get("task"))
            if task is None:
                raise PostBCError(f"{path}: demo '{name}' records no task (attribute 'task'); a task key needs multi-task "
                                  "demos such as those of `postbc collect --task mt10`")
            if task not in vectors:
                raise PostBCError(f"{path}: demo '{name}' is of task '{task}', which has no vector for '{key}' "
                                  f"(vectors given for: {', '.join(sorted(vectors))})")
            if key in group["obs"]:
                raise PostBCError(f"{path}: demo '{name}' already has obs/{key}; choose another key name")
        for name in demos:
            group = f["data"][name]
            rows = np.tile(np.asarray(vectors[attr_value(group.attrs["task"])], np.float32), (int(group["actions"].shape[0]), 1))
            for sub in ("obs", "next_obs"):
                group[sub].create_dataset(key, data=rows)
        if "obs_keys" in f["data"].attrs:
            import json

            keys = json.loads(f["data"].attrs["obs_keys"])
            f["data"].attrs["obs_keys"] = json.dumps(keys + [key])
    return len(demos)


@dataclasses.dataclass
class TaskKeyConfig:
    """Add a per-task conditioning key (e.g. language embeddings of each task's instruction) to a multi-task dataset."""

    dataset: Path
    """Multi-task robomimic HDF5 (demos with a `task` attribute, e.g. from `postbc collect --task mt10`); changed in place."""
    key: str
    """Observation key to write (e.g. lang_emb); refused if a demo has it already."""
    vectors: Path
    """JSON file {task name: [floats]}: one vector per task, all of one size."""


def run(cfg: TaskKeyConfig) -> None:
    import json

    try:
        vectors = json.loads(Path(cfg.vectors).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PostBCError(f"cannot read the vectors file {cfg.vectors} ({e}); it must be JSON {{task: [floats]}}") from e
    if not isinstance(vectors, dict) or not all(isinstance(v, list) for v in vectors.values()):
        raise PostBCError(f"{cfg.vectors} must be a JSON object mapping each task name to a list of numbers")
    n = add_task_key(cfg.dataset, cfg.key, vectors)
    print(f"wrote obs/{cfg.key} ({len(next(iter(vectors.values())))} values) into {n} demos of {cfg.dataset}; "
          f"pretrain with --obs-keys ... {cfg.key} to condition on it")
