"""`collect` / `postbc collect`: valid files, reproducible, failures dropped, safe on interruption."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from postbc.cli import main
from postbc.data import DemoDataset, read_demos
from postbc.envs.registry import get_task, make_env
from postbc.errors import PostBCError
from postbc.experts import registry
from postbc.experts.collect import collect
from postbc.experts.toy import OPERATORS, ToyExpert


def test_collect_writes_a_dataset_the_env_can_be_rebuilt_from(tmp_path):
    out = tmp_path / "demos.hdf5"
    result = collect("toy", 12, out, seed=3, quiet=True)
    assert (result.demos, result.attempts, result.expert_success_rate) == (12, 12, 1.0)
    f = read_demos(out, with_next_obs=True)
    spec = get_task("toy")
    assert f.obs_keys == spec.obs_keys and f.env_args == spec.env_args
    make_env(f.env_args["env_kwargs"]["task"]).reset(seed=0)
    for d in f.demos:
        assert d.attrs["operator"] in OPERATORS and d.rewards[-1] == 1.0 and d.dones[-1] == 1
        assert d.rewards[:-1].sum() == 0 and d.dones[:-1].sum() == 0
        np.testing.assert_array_equal(d.next_obs["agent_pos"][:-1], d.obs["agent_pos"][1:])
    assert sum(f.filter_keys.values()) == 12 and set(f.filter_keys) <= {f"operator_{o}" for o in OPERATORS}
    assert DemoDataset.load(out, filter_key="operator_" + f.demos[0].attrs["operator"]).num_episodes >= 1


def test_a_demo_replays_from_its_recorded_seed(tmp_path):
    out = tmp_path / "demos.hdf5"
    collect("toy", 2, out, seed=0, operator="careful", quiet=True)
    demo = read_demos(out).demos[1]
    env = make_env("toy")
    obs, _ = env.reset(seed=demo.attrs["seed"])
    for t, action in enumerate(demo.actions):
        np.testing.assert_array_equal(obs["agent_pos"], demo.obs["agent_pos"][t])
        obs, reward, *_ = env.step(action)
    assert reward == 1.0


def test_same_seed_same_file_contents(tmp_path):
    a, b, c = (collect("toy", 4, tmp_path / f"{n}.hdf5", seed=s, quiet=True) for n, s in (("a", 5), ("b", 5), ("c", 6)))
    da, db, dc = (DemoDataset.load(r.path) for r in (a, b, c))
    np.testing.assert_array_equal(da.actions, db.actions)
    assert da.actions.shape != dc.actions.shape or not np.array_equal(da.actions, dc.actions)


class SometimesIdle(ToyExpert):
    """Stands still in every other episode, so half the episodes fail."""

    def __init__(self):
        super().__init__(OPERATORS["steady"])
        self.operator, self.episode = "flaky", -1

    def reset(self, rng, obs):
        super().reset(rng, obs)
        self.episode += 1

    def act(self, obs):
        return super().act(obs) * (self.episode % 2 == 0)


@pytest.fixture
def flaky_toy_expert(monkeypatch):
    monkeypatch.setitem(registry._EXPERTS, "toy", (("flaky",), lambda name: SometimesIdle()))


def test_failed_episodes_are_not_written(tmp_path, flaky_toy_expert):
    result = collect("toy", 3, tmp_path / "d.hdf5", operator="flaky", quiet=True)
    assert (result.demos, result.attempts) == (3, 5)
    assert [d.attrs["attempt"] for d in read_demos(result.path).demos] == [0, 2, 4]


def test_too_many_failures_stop_with_an_error_and_keep_the_demos(tmp_path, flaky_toy_expert):
    out = tmp_path / "d.hdf5"
    with pytest.raises(PostBCError, match="succeeded in only 2 of 4 episodes"):
        collect("toy", 3, out, operator="flaky", max_attempts=4, quiet=True)
    assert len(read_demos(out).demos) == 2


def test_refuses_to_overwrite_unless_asked(tmp_path, capsys):
    out = tmp_path / "d.hdf5"
    out.write_bytes(b"precious")
    assert main(["collect", "--task", "toy", "--episodes", "2", "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"
    assert main(["collect", "--task", "toy", "--episodes", "2", "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert "wrote 2 demos of 'toy'" in capsys.readouterr().out and len(read_demos(out).demos) == 2


def test_bad_task_or_operator_writes_nothing(tmp_path):
    for args in (["--task", "nope"], ["--task", "toy", "--operator", "bob"]):
        assert main(["collect", *args, "--episodes", "2", "--out", str(tmp_path / "d.hdf5")]) == 2
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_keeps_the_finished_demos(tmp_path, monkeypatch):
    calls = {"resets": 0}
    real_reset = ToyExpert.reset

    def reset(self, rng, obs):
        calls["resets"] += 1
        if calls["resets"] == 4:
            raise KeyboardInterrupt
        real_reset(self, rng, obs)

    monkeypatch.setattr(ToyExpert, "reset", reset)
    out = tmp_path / "d.hdf5"
    assert main(["collect", "--task", "toy", "--episodes", "10", "--out", str(out), "--quiet"]) == 130
    assert [d.name for d in read_demos(out).demos] == ["demo_0", "demo_1", "demo_2"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_collection_leaves_a_valid_file(tmp_path, sig):
    out = tmp_path / "d.hdf5"
    env = {**os.environ, "POSTBC_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "postbc.cli", "collect", "--task", "toy", "--episodes", "100000",
                             "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            time.sleep(0.2)
            if out.exists():
                try:
                    with h5py.File(out, "r") as f:
                        if f["data"].attrs["total"] > 300:
                            break
                except (OSError, KeyError):
                    pass  # caught mid-write or locked: poll again
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == (130 if sig == signal.SIGTERM else -signal.SIGKILL), err
    demos = read_demos(out).demos
    assert len(demos) >= 10
    with h5py.File(out, "r") as f:
        assert f["data"].attrs["total"] == sum(d.num_samples for d in demos)


class ScriptedSuccess:
    """An env whose `info["success"]` follows a script, step by step (terminated while solved, as registered envs)."""

    def __init__(self, solved: list[bool]):
        self.solved, self.t = solved, 0

    def reset(self, seed=None, options=None):
        self.t = 0
        return {"x": np.zeros(1, np.float32)}, {}

    def step(self, action):
        solved = self.solved[self.t]
        self.t += 1
        obs = {"x": np.full(1, self.t, np.float32)}
        return obs, float(solved), solved, self.t >= len(self.solved) and not solved, {"success": solved}


class HoldingExpert:
    operator = "scripted"

    def reset(self, rng, obs):
        pass

    def act(self, obs):
        return np.array([1.0], np.float32)

    def hold(self, obs):
        return np.array([0.0], np.float32)


@pytest.mark.parametrize("solved, hold, length, success", [
    ([False, True, True, True], 0, 2, True),  # no hold: the demo ends at the first solved step
    ([False, True, True, True], 2, 4, True),  # solved, then 2 more solved steps
    ([True, True, False, True, True, True], 2, 6, True),  # success lost: back to work, the count starts again
    ([False, True, True, False], 2, 4, False),  # the horizon cuts the hold short: not a demo
])
def test_hold_steps_record_a_held_success(solved, hold, length, success):
    from types import SimpleNamespace

    from postbc.experts.collect import rollout

    spec = SimpleNamespace(horizon=len(solved), obs_keys=("x",), instructions={})
    demo, ok = rollout(ScriptedSuccess(solved), HoldingExpert(), spec, 0, np.random.default_rng(0), hold_steps=hold)
    assert (len(demo.actions), ok) == (length, success)
    # the expert works until a step is solved and holds while it stays solved
    expected = [1.0] + [0.0 if was else 1.0 for was in solved[:length - 1]]
    assert demo.actions[:, 0].tolist() == expected


def test_lift_demos_that_hold_their_success(tmp_path):
    plain, held = tmp_path / "plain.hdf5", tmp_path / "held.hdf5"
    collect("lift", 2, plain, seed=0, quiet=True)
    collect("lift", 2, held, seed=0, hold_steps=10, quiet=True)
    with h5py.File(held) as f:
        assert f["data"].attrs["collect_hold_steps"] == 10
    for a, b in zip(read_demos(plain).demos, read_demos(held).demos):
        assert len(b.actions) == len(a.actions) + 10  # the same episode, then 10 steps held
        np.testing.assert_array_equal(b.actions[:len(a.actions)], a.actions)
        assert b.rewards[-11:].tolist() == [1.0] * 11 and b.rewards[:-11].sum() == 0
        assert (b.actions[-10:, -1] == 1.0).all()  # still closed on the cube
        cube_z = b.obs["object"][:, 2]
        assert cube_z[-1] > cube_z[-10] + 0.01  # the operator lifts on while it holds (the lift phase goes on)


def test_hold_steps_are_refused_for_an_expert_that_cannot_hold(tmp_path, capsys):
    out = tmp_path / "demos.hdf5"
    assert main(["collect", "--task", "toy", "--episodes", "1", "--out", str(out), "--hold-steps", "3"]) == 2
    assert "cannot hold a solved task" in capsys.readouterr().err and not out.exists()
