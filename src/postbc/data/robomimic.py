"""Demonstrations in the robomimic HDF5 layout: read with validation, write, append.

    data/                    attrs: total (number of samples), env_args (JSON: env_name, type, env_kwargs),
                                    obs_keys (JSON list, optional: the order observations are flattened in)
      demo_N/                attrs: num_samples (+ per-demo extras such as operator, seed)
        actions (T, act_dim)   rewards (T,)   dones (T,)   states (T, S) optional
        obs/<key> (T, d)       next_obs/<key> (T, d)
    mask/<name>              byte strings of demo names (filter keys)

Demos are ordered by their number (demo_2 before demo_10). Every problem found while reading is
one `PostBCError` that names the file, the demo and the key, and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from postbc.envs.cameras import is_image_key
from postbc.errors import PostBCError

DEMO_NAME = re.compile(r"^demo_(\d+)$")
ENV_ARGS_FIELDS = ("env_name", "type", "env_kwargs")


@dataclasses.dataclass
class Demo:
    """One demonstration: arrays with T rows each."""

    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray | None = None
    dones: np.ndarray | None = None
    next_obs: dict[str, np.ndarray] | None = None
    states: np.ndarray | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ""

    @property
    def num_samples(self) -> int:
        return int(self.actions.shape[0])


@dataclasses.dataclass
class DemoFile:
    """What `read_demos` returns: the selected demos and the file-level metadata."""

    path: Path
    env_args: dict[str, Any]
    obs_keys: tuple[str, ...]
    demos: list[Demo]
    filter_keys: dict[str, int]  # every filter key in the file -> number of demos it names
    attrs: dict[str, Any]  # data-group attrs other than total / env_args


def demo_sort_key(name: str) -> tuple[int, str]:
    m = DEMO_NAME.match(name)
    return (int(m.group(1)), name) if m else (-1, name)


def sorted_demo_names(names: Iterable[str]) -> list[str]:
    return sorted(names, key=demo_sort_key)


# ----------------------------------------------------------------------------------------------
# Reading


def _open(path: Path):
    import h5py

    path = Path(path)
    if not path.exists():
        raise PostBCError(f"dataset file {path} does not exist; check the path or create it with `postbc collect`")
    if not path.is_file():
        raise PostBCError(f"dataset path {path} is not a file; pass the .hdf5 file itself")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if "lock" in str(e):
            raise PostBCError(f"{path} is open for writing in another process (a running `postbc collect`?); "
                              "wait until it is done and try again") from e
        raise PostBCError(f"{path} is not a readable HDF5 file ({e}); pass a robomimic-style .hdf5 dataset") from e


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_env_args(data, path: Path) -> dict[str, Any]:
    if "env_args" not in data.attrs:
        raise PostBCError(
            f"{path}: data.attrs['env_args'] is missing; robomimic datasets store the env as JSON "
            f"{{\"env_name\", \"type\", \"env_kwargs\"}} there (re-collect with `postbc collect` or add the attribute)"
        )
    raw = _attr_str(data.attrs["env_args"])
    try:
        env_args = json.loads(raw)
    except json.JSONDecodeError as e:
        raise PostBCError(
            f"{path}: data.attrs['env_args'] is not valid JSON ({e}); it must be a JSON object with {list(ENV_ARGS_FIELDS)}"
        ) from e
    if not isinstance(env_args, dict) or any(k not in env_args for k in ENV_ARGS_FIELDS):
        raise PostBCError(
            f"{path}: data.attrs['env_args'] must be a JSON object with keys {list(ENV_ARGS_FIELDS)}; it is {raw[:200]!r}"
        )
    return env_args


def _filter_keys(f) -> dict[str, list[str]]:
    if "mask" not in f:
        return {}
    return {name: [_attr_str(x) for x in np.asarray(ds[()]).reshape(-1)] for name, ds in f["mask"].items()}


def _select_demo_names(f, path: Path, filter_key: str | None, max_demos: int | None) -> list[str]:
    present = [n for n in f["data"].keys() if DEMO_NAME.match(n)]
    if not present:
        raise PostBCError(f"{path}: group 'data' holds no demos (groups named demo_N); the dataset is empty, collect demos into it first")
    names = present
    if filter_key is not None:
        masks = _filter_keys(f)
        if filter_key not in masks:
            known = ", ".join(sorted(masks)) or "none (the file has no 'mask' group)"
            raise PostBCError(f"{path}: unknown filter key '{filter_key}'; filter keys in this file: {known}")
        names = masks[filter_key]
        missing = [n for n in names if n not in f["data"]]
        if missing:
            raise PostBCError(
                f"{path}: filter key 'mask/{filter_key}' names demo(s) {missing[:5]} that are not in 'data'; rebuild the mask"
            )
        if not names:
            raise PostBCError(f"{path}: filter key '{filter_key}' names no demos; choose another filter key")
    names = sorted_demo_names(names)
    if max_demos is not None:
        if max_demos <= 0:
            raise PostBCError(f"max_demos={max_demos} must be > 0 (or left unset to use all demos)")
        if max_demos > len(names):
            where = f" under filter key '{filter_key}'" if filter_key is not None else ""
            raise PostBCError(
                f"{path}: max_demos={max_demos} but only {len(names)} demos are available{where}; "
                "lower max_demos or collect more demos"
            )
        names = names[:max_demos]
    return names


def _default_obs_keys(f, path: Path, first_demo: str) -> tuple[str, ...]:
    data = f["data"]
    if "obs_keys" in data.attrs:
        return tuple(json.loads(_attr_str(data.attrs["obs_keys"])))
    if "obs" not in data[first_demo]:
        raise PostBCError(f"{path}: demo '{first_demo}' has no 'obs' group; every demo needs obs/<key> datasets")
    return tuple(sorted(data[first_demo]["obs"].keys()))


def _read_array(group, key: str, path: Path, where: str, *, rows: int, check_finite: bool = True) -> np.ndarray:
    import h5py

    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise PostBCError(f"{path}: {where} has no dataset '{key}'")
    arr = np.asarray(group[key][()])
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] != rows:
        raise PostBCError(
            f"{path}: {where}, key '{key}' has {arr.shape[0]} rows but 'actions' has {rows}; "
            "every per-step array of a demo needs one row per action (re-export the demo)"
        )
    if check_finite and np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise PostBCError(
            f"{path}: {where}, key '{key}' contains NaN or inf (first at row {bad[0]}); "
            "repair the demo or leave it out with a filter key"
        )
    return arr


def _read_demo(f, path: Path, name: str, obs_keys: Sequence[str], with_next_obs: bool) -> Demo:
    group = f["data"][name]
    where = f"demo '{name}'"
    if "actions" not in group or not hasattr(group["actions"], "shape"):
        raise PostBCError(
            f"{path}: demo '{name}' has no 'actions' dataset; every demo needs actions (T, act_dim) "
            "(re-export it or leave it out with a filter key)"
        )
    T = int(group["actions"].shape[0]) if group["actions"].shape else 0
    if T == 0:
        raise PostBCError(f"{path}: demo '{name}' is empty (0 samples); delete it or leave it out with a filter key")
    actions = _read_array(group, "actions", path, where, rows=T)
    if "num_samples" in group.attrs and int(group.attrs["num_samples"]) != T:
        raise PostBCError(
            f"{path}: demo '{name}' has attr num_samples={int(group.attrs['num_samples'])} but 'actions' has {T} rows; "
            "the demo is damaged, re-export it"
        )

    def read_obs(group_name: str) -> dict[str, np.ndarray]:
        if group_name not in group:
            raise PostBCError(f"{path}: demo '{name}' has no '{group_name}' group; every demo needs {group_name}/<key> datasets")
        obs_group = group[group_name]
        out = {}
        for key in obs_keys:
            if key not in obs_group:
                raise PostBCError(
                    f"{path}: demo '{name}' has no observation key '{group_name}/{key}' (it has: {', '.join(sorted(obs_group.keys()))}); "
                    "ask for keys present in the file"
                )
            array = _read_array(obs_group, key, path, where, rows=T)
            out[key] = _checked_image(array, path, name, f"{group_name}/{key}") if is_image_key(key) else array.astype(np.float32)
        return out

    optional = {}
    for key in ("rewards", "dones"):
        if key in group:
            optional[key] = _read_array(group, key, path, where, rows=T).reshape(T)
    if "states" in group:
        optional["states"] = _read_array(group, "states", path, where, rows=T, check_finite=False)
    attrs = {k: attr_value(v) for k, v in group.attrs.items() if k != "num_samples"}
    return Demo(
        obs=read_obs("obs"),
        next_obs=read_obs("next_obs") if with_next_obs else None,
        actions=actions.astype(np.float32),
        attrs=attrs,
        name=name,
        **optional,
    )


def _checked_image(array: np.ndarray, path: Path, demo: str, key: str) -> np.ndarray:
    """An image key (`<camera>_image`) must hold uint8 (T, S, S, 3) frames, as `postbc collect --camera` writes."""
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[3] != 3 or array.shape[1] != array.shape[2]:
        raise PostBCError(
            f"{path}: demo '{demo}', image key '{key}' holds {array.dtype} of shape {array.shape[1:]} per step; "
            "image keys (named <camera>_image) must be uint8 (S, S, 3) RGB frames. Store them so, or rename a key "
            "that is not an image"
        )
    return array


def attr_value(v: Any) -> Any:
    """An HDF5 attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _check_consistent(demos: list[Demo], obs_keys: Sequence[str], path: Path) -> None:
    first = demos[0]
    for demo in demos[1:]:
        if demo.actions.shape[1:] != first.actions.shape[1:]:
            raise PostBCError(
                f"{path}: demo '{demo.name}', key 'actions' has shape {demo.actions.shape[1:]} per step but "
                f"demo '{first.name}' has {first.actions.shape[1:]}; all demos must come from the same task"
            )
        for key in obs_keys:
            if demo.obs[key].shape[1:] != first.obs[key].shape[1:]:
                raise PostBCError(
                    f"{path}: demo '{demo.name}', key 'obs/{key}' has shape {demo.obs[key].shape[1:]} per step but "
                    f"demo '{first.name}' has {first.obs[key].shape[1:]}; all demos must come from the same task"
                )


def hdf5_entries(f) -> str:
    """The top-level entries of an open HDF5 file, each with its kind: 'foo (dataset), data (group)'."""
    import h5py

    kinds = [f"{k} ({'group' if isinstance(f[k], h5py.Group) else 'dataset'})" for k in sorted(f.keys())]
    return ", ".join(kinds) or "nothing"


def read_demos(
    path: Path,
    obs_keys: Sequence[str] | None = None,
    filter_key: str | None = None,
    max_demos: int | None = None,
    *,
    with_next_obs: bool = False,
) -> DemoFile:
    """Read and validate demos: the first `max_demos` (in numeric order) of `filter_key`, or all.

    `obs_keys` picks observation keys by name, in the order given; by default the order recorded
    in `data.attrs["obs_keys"]`, else all keys of the first demo in sorted order.
    """
    path = Path(path)
    with _open(path) as f:
        if "data" not in f:
            raise PostBCError(f"{path}: no 'data' group (top-level entries: {hdf5_entries(f)}); this is not a "
                              "robomimic-style dataset")
        data = f["data"]
        env_args = _read_env_args(data, path)
        names = _select_demo_names(f, path, filter_key, max_demos)
        keys = tuple(obs_keys) if obs_keys is not None else _default_obs_keys(f, path, names[0])
        if not keys:
            raise PostBCError(f"{path}: no observation keys selected; pass at least one obs key")
        if len(set(keys)) != len(keys):
            raise PostBCError(f"observation keys {list(keys)} name a key twice; list each key once")
        demos = [_read_demo(f, path, name, keys, with_next_obs) for name in names]
        _check_consistent(demos, keys, path)
        filter_keys = {k: len(v) for k, v in _filter_keys(f).items()}
        attrs = {k: attr_value(v) for k, v in data.attrs.items() if k not in ("total", "env_args")}
    return DemoFile(path=path, env_args=env_args, obs_keys=keys, demos=demos, filter_keys=filter_keys, attrs=attrs)


def read_env_args(path: Path) -> dict[str, Any]:
    path = Path(path)
    with _open(path) as f:
        if "data" not in f:
            raise PostBCError(f"{path}: no 'data' group; this is not a robomimic-style dataset")
        return _read_env_args(f["data"], path)


# ----------------------------------------------------------------------------------------------
# Writing


def _check_env_args(env_args: Mapping[str, Any]) -> str:
    missing = [k for k in ENV_ARGS_FIELDS if k not in env_args]
    if missing:
        raise ValueError(f"env_args lacks {missing}; it needs {list(ENV_ARGS_FIELDS)}")
    return json.dumps(dict(env_args), sort_keys=True)


def _check_demo(demo: Demo) -> None:
    """Everything the reader checks, before anything is written."""
    T = demo.num_samples
    if demo.actions.ndim != 2 or T == 0:
        raise ValueError(f"demo actions must have shape (T>0, act_dim), got {demo.actions.shape}")
    if demo.rewards is None or demo.dones is None or demo.next_obs is None:
        raise ValueError("a demo to write needs rewards, dones and next_obs")
    if set(demo.next_obs) != set(demo.obs):
        raise ValueError(f"next_obs keys {sorted(demo.next_obs)} differ from obs keys {sorted(demo.obs)}")
    arrays = {"actions": demo.actions, "rewards": demo.rewards, "dones": demo.dones}
    arrays |= {f"obs/{k}": v for k, v in demo.obs.items()} | {f"next_obs/{k}": v for k, v in demo.next_obs.items()}
    if demo.states is not None:
        arrays["states"] = demo.states
    for key, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.shape[0] != T:
            raise ValueError(f"demo key '{key}' has {arr.shape[0]} rows, actions has {T}")
        if key != "states" and np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
            raise ValueError(f"demo key '{key}' contains NaN or inf")


class DemoWriter:
    """Append demos to a robomimic file; the file is a valid dataset after every `add`.

    Each `add` opens the file, writes the demo under a temporary name, renames it to demo_N
    once complete, updates the filter keys and `data.attrs["total"]`, and closes (flushes) the
    file. A process killed between demos leaves every finished demo readable; one interrupted
    inside `add` (Ctrl-C) removes its half-written demo. The file is created by the first `add`,
    so a run that stops before its first demo leaves nothing behind.
    """

    def __init__(self, path: Path, env_args: Mapping[str, Any], *, obs_keys: Sequence[str] | None = None,
                 attrs: Mapping[str, Any] | None = None, overwrite: bool = False):
        self.path = Path(path)
        self._env_args_json = _check_env_args(env_args)
        self._obs_keys = list(obs_keys) if obs_keys is not None else None
        self._attrs = dict(attrs or {})
        self._overwrite = overwrite
        self._created = False
        self.num_demos = 0
        self.total = 0
        self._next_index = 0
        if self.path.exists() and not overwrite:
            raise PostBCError(f"{self.path} already exists; choose another output path or pass --overwrite to replace it")

    def _open(self):
        import h5py

        if self._created:
            return _open_for_append(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.path, "w" if self._overwrite else "w-")
        data = f.create_group("data")
        data.attrs["env_args"] = self._env_args_json
        data.attrs["total"] = np.int64(0)
        if self._obs_keys is not None:
            data.attrs["obs_keys"] = json.dumps(self._obs_keys)
        for k, v in self._attrs.items():
            data.attrs[k] = v
        self._created = True
        return f

    def add(self, demo: Demo, *, name: str | None = None, filter_keys: Sequence[str] = ()) -> str:
        """Write one complete demo (as `name`, default the next demo_N) and list it under `filter_keys`."""
        _check_demo(demo)
        if name is None:
            name = f"demo_{self._next_index}"
        m = DEMO_NAME.match(name)
        if not m:
            raise ValueError(f"demo name {name!r} must look like demo_N")
        with self._open() as f:
            data = f["data"]
            if name in data:
                raise ValueError(f"{self.path} already holds {name}")
            partial = f"_partial_{name}"
            if partial in data:
                del data[partial]
            try:
                _write_demo_group(data.create_group(partial), demo)
                data.move(partial, name)
            except BaseException:
                if partial in data:
                    del data[partial]
                raise
            for key in filter_keys:
                _append_to_mask(f, key, name)
            self.total += demo.num_samples
            data.attrs["total"] = np.int64(self.total)
        self.num_demos += 1
        self._next_index = max(self._next_index, int(m.group(1)) + 1)
        return name


def _open_for_append(path: Path, wait_s: float = 30.0):
    """Open for appending; while another process (e.g. `postbc inspect`) has the file open, HDF5's
    file lock refuses us, so wait for it instead of losing the collection."""
    import time

    import h5py

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return h5py.File(path, "a")
        except OSError as e:
            if "lock" not in str(e) or time.monotonic() > deadline:
                raise PostBCError(f"cannot open {path} to append a demo ({e}); close other programs using it") from e
            time.sleep(0.05)


def _write_demo_group(group, demo: Demo) -> None:
    group.create_dataset("actions", data=np.asarray(demo.actions))
    group.create_dataset("rewards", data=np.asarray(demo.rewards).reshape(-1))
    group.create_dataset("dones", data=np.asarray(demo.dones).reshape(-1))
    if demo.states is not None:
        group.create_dataset("states", data=np.asarray(demo.states))
    for sub, obs in (("obs", demo.obs), ("next_obs", demo.next_obs)):
        g = group.create_group(sub)
        for key, value in obs.items():
            g.create_dataset(key, data=np.asarray(value))
    for k, v in demo.attrs.items():
        group.attrs[k] = v
    group.attrs["num_samples"] = np.int64(demo.num_samples)


def _append_to_mask(f, key: str, demo_name: str) -> None:
    masks = f.require_group("mask")
    names = [_attr_str(x) for x in masks[key][()]] if key in masks else []
    if key in masks:
        del masks[key]
    masks.create_dataset(key, data=np.array(names + [demo_name], dtype="S"))


def write_demos(path: Path, demos: Sequence[Demo], env_args: Mapping[str, Any], *,
                masks: Mapping[str, Sequence[str]] | None = None, obs_keys: Sequence[str] | None = None,
                attrs: Mapping[str, Any] | None = None, overwrite: bool = False) -> None:
    """Write a whole dataset at once (temp file, then rename). Demos keep their `name` if set.

    `masks` maps filter-key names to the demo names they select (a mask selecting none is not written).
    """
    from postbc.io.atomic import atomic_write

    path = Path(path)
    if path.exists() and not overwrite:
        raise PostBCError(f"{path} already exists; choose another output path or pass overwrite=True")
    if not demos:
        raise ValueError("write_demos needs at least one demo")
    _check_env_args(env_args)
    for demo in demos:
        _check_demo(demo)
    names = [d.name or f"demo_{i}" for i, d in enumerate(demos)]
    if len(set(names)) != len(names):
        raise ValueError(f"demo names repeat: {names}")
    for key, selected in (masks or {}).items():
        unknown = sorted(set(selected) - set(names))
        if unknown:
            raise ValueError(f"mask '{key}' names demos {unknown} that are not written")
    membership = {n: [k for k, sel in (masks or {}).items() if n in sel] for n in names}

    def write(tmp: Path) -> None:
        writer = DemoWriter(tmp, env_args, obs_keys=obs_keys, attrs=attrs, overwrite=True)
        for demo, name in zip(demos, names):
            writer.add(demo, name=name, filter_keys=membership[name])

    atomic_write(path, write)
