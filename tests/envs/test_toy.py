"""The toy task: the env contract, determinism, walls, and which states count as rare."""


import numpy as np
import pytest

from postbc.envs import toy
from postbc.envs.registry import flatten_obs, get_task, make_env


def run_episode(env, policy, seed):
    obs, info = env.reset(seed=seed)
    trajectory = [obs["agent_pos"].copy()]
    for _ in range(toy.HORIZON):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        trajectory.append(obs["agent_pos"].copy())
        if terminated or truncated:
            break
    return np.array(trajectory), reward, terminated, truncated, info


def test_registered_spec_matches_the_env():
    spec = get_task("toy")
    env = make_env("toy")
    obs, info = env.reset(seed=0)
    assert spec.family == "toy" and spec.env_args["env_kwargs"]["task"] == "toy"
    assert tuple(obs) == spec.obs_keys
    assert [obs[k].shape[0] for k in spec.obs_keys] == list(spec.obs_dims)
    assert all(obs[k].dtype == np.float32 for k in spec.obs_keys)
    assert env.action_space.shape == (spec.act_dim,) and env.action_space.dtype == np.float32
    assert info["success"] is False
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert reward == 0.0 and info["success"] is False


def test_same_seed_same_episode_and_make_seed_is_used_once():
    a, b = make_env("toy"), make_env("toy")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(20, 2)).astype(np.float32)
    runs = []
    for env in (a, b):
        obs, _ = env.reset(seed=7)
        runs.append([flatten_obs(env.step(act)[0], toy.OBS_KEYS) for act in actions])
    np.testing.assert_array_equal(runs[0], runs[1])
    seeded = make_env("toy", seed=3)
    first = seeded.reset()[0]
    np.testing.assert_array_equal(first["agent_pos"], make_env("toy").reset(seed=3)[0]["agent_pos"])
    assert not np.array_equal(seeded.reset()[0]["agent_pos"], first["agent_pos"])


def test_reaching_the_goal_pays_once_and_terminates():
    env = make_env("toy", rare_start_prob=0.0)
    env.reset(seed=0)
    env._pos = env._goal + np.array([0.0, -0.15])  # just below the goal, nothing in between
    obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)


def test_non_finite_actions_are_refused():
    env = make_env("toy")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([np.nan, 0.0], np.float32))


def test_truncates_at_the_horizon_without_success():
    traj, reward, terminated, truncated, info = run_episode(make_env("toy"), lambda o: np.zeros(2, np.float32), seed=1)
    assert len(traj) == toy.HORIZON + 1
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, True, False)


@pytest.mark.parametrize("box", toy.WALLS)
def test_walls_cannot_be_crossed_from_any_direction(box):
    x0, x1, y0, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for start, action in [((cx, y0 - 0.03), (0, 1)), ((cx, y1 + 0.03), (0, -1)),
                          ((x0 - 0.03, cy), (1, 0)), ((x1 + 0.03, cy), (-1, 0))]:
        pos, vel = np.array(start, float), np.array(action, float)  # full speed: 0.1 per step > thin walls
        for _ in range(10):
            pos, vel = toy.move(pos, vel, np.array(action, float))
            assert not (x0 < pos[0] < x1 and y0 < pos[1] < y1), (box, start, pos)
        moved_past = (pos[0] - cx) * action[0] > 0 or (pos[1] - cy) * action[1] > 0
        assert not moved_past, (box, start, pos)


@pytest.mark.parametrize("policy_name", ["towards_goal", "straight_up"])
def test_naive_policies_get_stuck_so_the_route_matters(policy_name):
    def towards_goal(obs):
        d = obs["goal_pos"] - obs["agent_pos"]
        return (d / np.linalg.norm(d)).astype(np.float32)

    policy = towards_goal if policy_name == "towards_goal" else (lambda obs: np.array([0.0, 1.0], np.float32))
    for rare_start_prob in (0.0, 1.0):
        env = make_env("toy", rare_start_prob=rare_start_prob)
        assert not any(run_episode(env, policy, seed)[4]["success"] for seed in range(20))


def test_pocket_starts_happen_at_the_configured_rate_and_are_rare_states():
    env = make_env("toy")
    starts = [env.reset(seed=s) for s in range(2000)]
    pocket = np.array([info["pocket_start"] for _, info in starts])
    assert 0.12 < pocket.mean() < 0.18
    flat = np.stack([flatten_obs(obs, toy.OBS_KEYS) for obs, _ in starts])
    np.testing.assert_array_equal(toy.toy_state_region(flat) == "rare", pocket)


def test_region_labels():
    pos = np.array([[0.0, -0.8], [0.7, -0.5], [-0.4, -0.9], [0.9, 0.2], [0.5, 0.0], [0.0, 0.7]])
    vel_goal = np.zeros((len(pos), 4))
    labels = toy.toy_state_region(np.concatenate([pos, vel_goal], axis=1))
    assert labels.tolist() == ["common", "rare", "rare", "rare", "common", "common"]
