"""Labelled rollouts on disk (HDF5): what Best-of-N's critic learns from, from a simulator or a real robot.

One row per executed action chunk:
  obs (N, obs_dim) float32      flat observation the chunk started from
  actions (N, chunk, act_dim)   the chunk the policy chose (normalized env actions in [-1, 1])
  rewards (N,)                  1.0 if the task was solved during this chunk, else 0.0
  next_obs (N, obs_dim)         observation after the chunk
  dones (N,)                    1.0 where the episode ended in success (no bootstrapping)
  episode (N,) int64            episode number
Root attributes: obs_keys (JSON list), chunk, act_dim, obs_dim, task (free text); optional
base_weights: the hash (`finetune.base.base_fingerprint`) of the policy that collected them; optional
obs_encoded (true): obs / next_obs hold that image policy's encoder features of each observation
(`postbc.finetune.features`), obs_dim their width, so only that policy can use the critic fitted on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from postbc.data.robomimic import hdf5_entries
from postbc.errors import PostBCError
from postbc.io.atomic import atomic_write

KEYS = ("obs", "actions", "rewards", "next_obs", "dones", "episode")


def save_rollouts(path: Path, data: dict[str, np.ndarray], *, obs_keys, chunk: int, act_dim: int, task: str,
                  base_weights: str | None = None, encoded: bool = False) -> None:
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for k in KEYS:
                f.create_dataset(k, data=data[k])
            f.attrs.update(obs_keys=json.dumps(list(obs_keys)), chunk=chunk, act_dim=act_dim,
                           obs_dim=int(data["obs"].shape[1]), task=task)
            if base_weights is not None:  # the hash of the policy that collected them (finetune.base.base_fingerprint)
                f.attrs["base_weights"] = base_weights
            if encoded:
                f.attrs["obs_encoded"] = True

    atomic_write(Path(path), write)


def is_rollouts_file(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return all(k in f for k in KEYS)
    except OSError:
        return False


def describe_rollouts(path: Path) -> str:
    """What `postbc inspect` prints for a rollouts file: episodes, outcomes, chunks, sizes."""
    from postbc.finetune.critic_check import rollout_counts

    data, meta = load_rollouts(path)
    successes, failures = rollout_counts(data["rewards"], data["episode"])
    lengths = np.unique(data["episode"], return_counts=True)[1]
    return "\n".join([
        f"file: {path} (Best-of-N rollouts, postbc.finetune.rollouts_file format)",
        f"task: {meta['task'] or '(not recorded)'}; collected by weights {meta['base_weights'] or '(not recorded)'}",
        f"episodes: {successes + failures} ({successes} successful, {failures} failed), chunks: {len(data['obs'])}, "
        f"chunks per episode min / mean / max: {lengths.min()} / {lengths.mean():.1f} / {lengths.max()}",
        f"obs: {meta['obs_dim']} dims{' (encoder features of the collecting policy)' if meta['encoded'] else ''}, "
        f"keys {meta['obs_keys']}; actions: chunks of {meta['chunk']} x {meta['act_dim']}",
    ])


def load_rollouts(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and validate a rollouts file; every problem names the file, the key and the fix."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise PostBCError(f"rollouts file {path} does not exist; collect rollouts with `postbc finetune --algo best_of_n` or write one in the format of postbc.finetune.rollouts_file")
    with h5py.File(path, "r") as f:
        missing = [k for k in KEYS if k not in f]
        if len(missing) == len(KEYS):
            raise PostBCError(f"{path} is not a rollouts file: it holds none of the datasets {', '.join(KEYS)} (it holds "
                              f"{hdf5_entries(f)}); see postbc.finetune.rollouts_file for the format")
        if missing:
            raise PostBCError(f"rollouts file {path} lacks dataset(s) {', '.join(missing)} (see postbc.finetune.rollouts_file)")
        data = {k: f[k][()] for k in KEYS}
        try:
            meta = {"obs_keys": json.loads(f.attrs["obs_keys"]), "chunk": int(f.attrs["chunk"]),
                    "act_dim": int(f.attrs["act_dim"]), "obs_dim": int(f.attrs["obs_dim"]), "task": str(f.attrs.get("task", "")),
                    "base_weights": str(f.attrs["base_weights"]) if "base_weights" in f.attrs else None,
                    "encoded": bool(f.attrs.get("obs_encoded", False))}
        except KeyError as e:
            raise PostBCError(f"rollouts file {path} lacks root attribute {e}; it needs obs_keys, chunk, act_dim, obs_dim") from e
    n = len(data["obs"])
    expect = {"obs": (n, meta["obs_dim"]), "actions": (n, meta["chunk"], meta["act_dim"]), "rewards": (n,),
              "next_obs": (n, meta["obs_dim"]), "dones": (n,), "episode": (n,)}
    for k, shape in expect.items():
        if data[k].shape != shape:
            raise PostBCError(f"rollouts file {path}: '{k}' has shape {data[k].shape}, expected {shape} from the file's attributes")
    if n == 0:
        raise PostBCError(f"rollouts file {path} holds no transitions")
    for k in ("obs", "actions", "rewards", "next_obs"):
        if not np.isfinite(data[k]).all():
            raise PostBCError(f"rollouts file {path}: '{k}' holds NaN or inf values; clean the data")
    return data, meta
