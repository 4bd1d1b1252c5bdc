"""Writing and reading the robomimic layout: round trips, demo order, filter keys, appending."""

import json

import h5py
import numpy as np
import pytest

from postbc.data import robomimic
from postbc.data.robomimic import DemoWriter, read_demos, write_demos
from postbc.errors import PostBCError

from .conftest import ENV_ARGS, make_demo


def assert_same_demo(got, want):
    np.testing.assert_array_equal(got.actions, want.actions)
    np.testing.assert_array_equal(got.rewards, want.rewards)
    np.testing.assert_array_equal(got.dones, want.dones)
    for key in want.obs:
        np.testing.assert_array_equal(got.obs[key], want.obs[key])
        if got.next_obs is not None:
            np.testing.assert_array_equal(got.next_obs[key], want.next_obs[key])
    assert got.attrs == want.attrs


def test_round_trip(demo_file):
    path, demos = demo_file
    f = read_demos(path, with_next_obs=True)
    assert f.env_args == ENV_ARGS
    assert f.obs_keys == ("pos", "vel")  # no recorded order: sorted
    assert [d.name for d in f.demos] == [f"demo_{i}" for i in range(5)]
    for got, want in zip(f.demos, demos):
        assert_same_demo(got, want)
    assert f.filter_keys == {"odd": 2}


def test_layout_is_what_robomimic_reads(demo_file):
    path, demos = demo_file
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == sum(d.num_samples for d in demos)
        env_args = json.loads(f["data"].attrs["env_args"])
        assert set(env_args) == {"env_name", "type", "env_kwargs"}
        demo = f["data/demo_2"]
        assert demo.attrs["num_samples"] == 5
        assert {"actions", "rewards", "dones", "obs", "next_obs"} <= set(demo)
        assert [x.decode() for x in f["mask/odd"][()]] == ["demo_1", "demo_3"]


def test_demos_sort_numerically_and_keep_their_names(tmp_path):
    path = tmp_path / "d.hdf5"
    names = ["demo_10", "demo_2", "demo_1", "demo_33"]
    write_demos(path, [make_demo(2 + i, seed=i, name=n) for i, n in enumerate(names)], ENV_ARGS,
                masks={"some": ["demo_33", "demo_10", "demo_2"]})
    assert [d.name for d in read_demos(path).demos] == ["demo_1", "demo_2", "demo_10", "demo_33"]
    assert [d.name for d in read_demos(path, max_demos=2).demos] == ["demo_1", "demo_2"]
    assert [d.name for d in read_demos(path, filter_key="some").demos] == ["demo_2", "demo_10", "demo_33"]
    assert [d.name for d in read_demos(path, filter_key="some", max_demos=2).demos] == ["demo_2", "demo_10"]


def test_obs_keys_in_the_order_asked_or_recorded(tmp_path):
    path = tmp_path / "d.hdf5"
    write_demos(path, [make_demo(3, seed=0)], ENV_ARGS, obs_keys=["vel", "pos"])
    assert read_demos(path).obs_keys == ("vel", "pos")
    assert read_demos(path, obs_keys=["pos"]).obs_keys == ("pos",)


def test_write_refuses_an_existing_file(demo_file):
    path, _ = demo_file
    before = path.read_bytes()
    with pytest.raises(PostBCError, match="already exists"):
        write_demos(path, [make_demo(3, seed=9)], ENV_ARGS)
    assert path.read_bytes() == before
    write_demos(path, [make_demo(3, seed=9)], ENV_ARGS, overwrite=True)
    assert len(read_demos(path).demos) == 1


def test_a_bad_demo_is_refused_before_anything_is_written(tmp_path):
    bad = make_demo(4, seed=0)
    bad.actions[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_demos(tmp_path / "d.hdf5", [make_demo(3, seed=1), bad], ENV_ARGS)
    assert list(tmp_path.iterdir()) == []


def test_writer_leaves_a_valid_file_after_every_demo(tmp_path):
    path = tmp_path / "d.hdf5"
    writer = DemoWriter(path, ENV_ARGS, obs_keys=["pos", "vel"])
    assert not path.exists()  # created by the first demo
    demos = [make_demo(3 + i, seed=i) for i in range(3)]
    for i, demo in enumerate(demos):
        writer.add(demo, filter_keys=[f"operator_{demo.attrs['operator']}"])
        f = read_demos(path)
        assert len(f.demos) == i + 1
        with h5py.File(path, "r") as h:
            assert h["data"].attrs["total"] == sum(d.num_samples for d in demos[: i + 1])
    assert read_demos(path).filter_keys == {"operator_op0": 2, "operator_op1": 1}


def test_an_interrupted_add_drops_only_the_half_written_demo(tmp_path, monkeypatch):
    path = tmp_path / "d.hdf5"
    writer = DemoWriter(path, ENV_ARGS)
    writer.add(make_demo(3, seed=0))
    real = robomimic._write_demo_group

    def write_then_interrupt(group, demo):
        real(group, demo)
        raise KeyboardInterrupt

    monkeypatch.setattr(robomimic, "_write_demo_group", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        writer.add(make_demo(4, seed=1))
    with h5py.File(path, "r") as h:
        assert list(h["data"]) == ["demo_0"] and h["data"].attrs["total"] == 3
    monkeypatch.setattr(robomimic, "_write_demo_group", real)
    assert writer.add(make_demo(5, seed=2)) == "demo_1"
    assert [d.num_samples for d in read_demos(path).demos] == [3, 5]
