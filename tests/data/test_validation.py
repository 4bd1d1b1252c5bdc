"""Every kind of bad dataset gives one PostBCError naming the file, the demo and the key; nothing is written."""

import hashlib
import json

import h5py
import numpy as np
import pytest

from postbc.data.dataset import DemoDataset
from postbc.errors import PostBCError


def delete(key):
    def mutate(f):
        del f[key]
    return mutate


def replace(key, value):
    def mutate(f):
        del f[key]
        f[key] = value
    return mutate


def set_value(key, index, value):
    def mutate(f):
        arr = f[key][()]
        arr[index] = value
        f[key][...] = arr
    return mutate


def set_attr(key, value):
    def mutate(f):
        if value is None:
            del f["data"].attrs[key]
        else:
            f["data"].attrs[key] = value
    return mutate


def empty_demo(f):
    for key in ("actions", "rewards", "dones"):
        del f[f"data/demo_2/{key}"]
        f[f"data/demo_2/{key}"] = np.zeros((0, 2) if key == "actions" else (0,))
    for group in ("obs", "next_obs"):
        for key in list(f[f"data/demo_2/{group}"]):
            del f[f"data/demo_2/{group}/{key}"]
            f[f"data/demo_2/{group}/{key}"] = np.zeros((0, 2))


def no_demos(f):
    for name in list(f["data"]):
        del f[f"data/{name}"]
    del f["mask"]


# (mutation, load kwargs, fragments the message must contain)
CASES = {
    "missing data group": (delete("data"), {}, ["'data' group"]),
    "missing actions": (delete("data/demo_3/actions"), {}, ["demo_3", "'actions'"]),
    "missing obs group": (delete("data/demo_1/obs"), {}, ["demo_1", "'obs'"]),
    "missing obs key": (delete("data/demo_4/obs/vel"), {}, ["demo_4", "obs/vel", "it has: pos"]),
    "obs key asked for is absent": (lambda f: None, {"obs_keys": ["pos", "joint"]}, ["demo_0", "obs/joint"]),
    "obs shorter than actions": (replace("data/demo_2/obs/pos", np.zeros((4, 2), np.float32)), {},
                                 ["demo_2", "'pos'", "4 rows", "'actions' has 5"]),
    "NaN in obs": (set_value("data/demo_1/obs/vel", (2, 1), np.nan), {}, ["demo_1", "'vel'", "NaN", "row 2"]),
    "inf in actions": (set_value("data/demo_4/actions", (0, 0), np.inf), {}, ["demo_4", "'actions'", "inf"]),
    "empty demo": (empty_demo, {}, ["demo_2", "empty"]),
    "unknown filter key": (lambda f: None, {"filter_key": "train"}, ["unknown filter key 'train'", "odd"]),
    "env_args missing": (set_attr("env_args", None), {}, ["env_args", "missing"]),
    "env_args not JSON": (set_attr("env_args", "{env_name: toy"), {}, ["env_args", "not valid JSON"]),
    "env_args lacks fields": (set_attr("env_args", json.dumps({"env_name": "toy"})), {}, ["env_args", "env_kwargs"]),
    "no demos": (no_demos, {}, ["no demos"]),
    "more demos asked than present": (lambda f: None, {"max_demos": 6}, ["max_demos=6", "only 5"]),
    "more demos asked than the filter key has": (lambda f: None, {"filter_key": "odd", "max_demos": 3},
                                                 ["max_demos=3", "only 2", "'odd'"]),
    "other action dim": (replace("data/demo_3/actions", np.zeros((6, 3), np.float32)), {},
                         ["demo_3", "'actions'", "(3,)", "(2,)"]),
    "num_samples disagrees": (lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", 7), {},
                              ["demo_0", "num_samples=7", "3 rows"]),
}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_dataset_gives_one_clear_error(demo_file, case):
    path, _ = demo_file
    mutate, kwargs, fragments = CASES[case]
    with h5py.File(path, "a") as f:
        mutate(f)
    before = digest(path)
    files_before = sorted(path.parent.iterdir())
    with pytest.raises(PostBCError) as err:
        DemoDataset.load(path, **kwargs)
    message = str(err.value)
    for fragment in [str(path), *fragments]:
        assert fragment in message, (fragment, message)
    assert digest(path) == before and sorted(path.parent.iterdir()) == files_before


def test_missing_file(tmp_path):
    with pytest.raises(PostBCError, match="does not exist"):
        DemoDataset.load(tmp_path / "nope.hdf5")
    assert list(tmp_path.iterdir()) == []


def test_not_hdf5(tmp_path):
    path = tmp_path / "demos.hdf5"
    path.write_text("actions,obs\n1,2\n")
    with pytest.raises(PostBCError, match="not a readable HDF5 file"):
        DemoDataset.load(path)
