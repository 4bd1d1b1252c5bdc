import numpy as np
import pytest

from postbc.envs.registry import flatten_obs
from postbc.envs.testing import GreedyLinePolicy, fake_task_spec
from postbc.envs.vector import VectorEnv, episode_seed
from postbc.errors import PostBCError


def run_episodes(vec, policy, n):
    """Step until episodes 0..n-1 are done; returns {index: (success, length, error)} and the infos seen."""
    done, obs = {}, vec.reset()
    while len(done) < n:
        actions = policy.act(flatten_obs(obs, vec.spec.obs_keys))
        if vec.chunk is None:
            actions = actions[:, 0]
        obs, _, term, trunc, infos = vec.step(actions)
        for i, info in enumerate(infos):
            ep = info.get("episode")
            if ep is not None:
                assert term[i] or trunc[i]
                assert "final_obs" in info
                done.setdefault(ep["index"], (ep["success"], ep["length"], ep["error"]))
    return {k: done[k] for k in range(n)}


def test_sync_episode_numbering_and_autoreset():
    spec = fake_task_spec(horizon=6)
    with VectorEnv(spec, 3, seed=5, backend="sync") as vec:
        obs = vec.reset()
        assert obs["pos"].shape == (3, 1) and list(vec.episode_index) == [0, 1, 2]
        goals0 = obs["goal"][:, 0].copy()
        for _ in range(6):  # zero actions: nobody succeeds, all truncate at step 6 together
            obs, r, term, trunc, infos = vec.step(np.zeros((3, 1), np.float32))
        assert trunc.all() and not term.any()
        assert [inf["episode"]["index"] for inf in infos] == [0, 1, 2]
        assert [inf["episode"]["length"] for inf in infos] == [6, 6, 6]
        np.testing.assert_allclose(np.stack([inf["final_obs"]["goal"] for inf in infos])[:, 0], goals0)
        assert list(vec.episode_index) == [3, 4, 5]
        assert (obs["pos"] == 0).all()  # autoreset: the returned obs start the next episodes


def test_episode_seeds_do_not_depend_on_num_envs():
    a = VectorEnv(fake_task_spec(), 1, seed=3, backend="sync")
    b = VectorEnv(fake_task_spec(), 4, seed=3, backend="sync")
    ga = [a.reset()["goal"][0, 0]]
    gb = b.reset()["goal"][:, 0]
    assert ga[0] == pytest.approx(gb[0])
    rng = np.random.default_rng(episode_seed(3, 2))
    assert gb[2] == pytest.approx(np.float32(rng.uniform(-1, 1)))
    a.close(), b.close()


def test_crash_mid_episode_is_a_failed_episode_and_run_goes_on():
    spec = fake_task_spec(horizon=8, crash_prob=0.4, crash_step=2)
    with VectorEnv(spec, 2, seed=0, backend="sync") as vec:
        res = run_episodes(vec, GreedyLinePolicy(), 20)
    crashed = [k for k, (_, _, err) in res.items() if err]
    assert 2 <= len(crashed) <= 16
    for k in crashed:
        success, length, err = res[k]
        assert not success and length == 1 and "FakeCrash" in err
    assert any(s for s, _, _ in res.values())


def test_reset_that_always_fails_is_refused():
    with pytest.raises(PostBCError, match="could not be reset.*FakeCrash"):
        with VectorEnv(fake_task_spec(reset_crash=True), 1, backend="sync") as vec:
            vec.reset()


def test_async_matches_sync_and_survives_crashes_and_dead_workers():
    spec = fake_task_spec(horizon=8, crash_prob=0.2, die_prob=0.2, crash_step=2)
    with VectorEnv(spec, 2, seed=1, chunk=2, backend="async") as vec:
        assert vec.backend == "async"
        res_async = run_episodes(vec, GreedyLinePolicy(chunk=2), 16)
    errors = [err for _, _, err in res_async.values() if err]
    assert any("worker process died" in e for e in errors) and any("FakeCrash" in e for e in errors)
    # Without process deaths the sync backend gives the same episodes.
    spec_nodie = fake_task_spec(horizon=8, crash_prob=0.2, die_prob=0.2, crash_step=99)
    with VectorEnv(spec_nodie, 2, seed=1, chunk=2, backend="async") as va, \
            VectorEnv(spec_nodie, 3, seed=1, chunk=2, backend="sync") as vs:
        assert run_episodes(va, GreedyLinePolicy(chunk=2), 10) == run_episodes(vs, GreedyLinePolicy(chunk=2), 10)


def test_bad_backend_and_unbuildable_env():
    with pytest.raises(PostBCError, match="backend='threads'.*auto, async, sync"):
        VectorEnv(fake_task_spec(), 2, backend="threads")
    with pytest.raises(PostBCError, match="could not start env worker"):
        VectorEnv(fake_task_spec(horizon="x", bogus=1), 2, backend="async")
    with pytest.warns(UserWarning, match="running envs in this process"), pytest.raises(TypeError):
        VectorEnv(fake_task_spec(bogus=1), 2, backend="auto")


def test_malformed_actions_are_refused_not_counted_as_crashes():
    with VectorEnv(fake_task_spec(), 2, chunk=3, backend="sync") as vec:
        vec.reset()
        for bad in [np.zeros((2, 1)), np.zeros((3, 3, 1)), np.zeros((2, 4, 1)), np.zeros((2, 3, 2))]:
            with pytest.raises(ValueError, match=r"this VectorEnv takes \(2, n <= 3, 1\)"):
                vec.step(bad)
        vec.step(np.zeros((2, 2, 1)))  # a shorter chunk is fine


def test_auto_keeps_in_process_tasks_in_process():
    with VectorEnv("toy", 3, backend="auto") as venv:
        assert venv.backend == "sync"


def test_step_async_then_wait_is_step_and_misuse_is_refused():
    spec = fake_task_spec(horizon=6)
    actions = np.full((2, 1), 0.5, np.float32)
    with VectorEnv(spec, 2, seed=4, backend="async") as a, VectorEnv(spec, 2, seed=4, backend="async") as b:
        a.reset(), b.reset()
        for _ in range(8):  # across an autoreset
            a.step_async(actions)
            got = a.step_wait()
            want = b.step(actions)
            np.testing.assert_array_equal(got[0]["pos"], want[0]["pos"])
            assert (got[2] == want[2]).all() and (got[3] == want[3]).all()
        with pytest.raises(RuntimeError, match="step_wait called without step_async"):
            a.step_wait()
        a.step_async(actions)
        with pytest.raises(RuntimeError, match="step_async called twice"):
            a.step_async(actions)
