import numpy as np
import pytest

from postbc.envs.testing import GreedyLinePolicy, fake_task_spec
from postbc.errors import PostBCError
from postbc.evaluation.episodes import evaluate
from postbc.stats import wilson_interval


class NoisyRandomPolicy:
    """Uses its own RNG (no `noise` argument): evaluation cannot control it."""

    chunk = 1

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def act(self, obs_flat):
        return self.rng.uniform(-1, 1, (obs_flat.shape[0], 1, 1)).astype(np.float32)


def test_greedy_policy_always_succeeds():
    res = evaluate(GreedyLinePolicy(chunk=2), fake_task_spec(horizon=20), episodes=12, seed=0, num_envs=3, backend="sync")
    assert res.successes == 12 and res.success_rate == 1.0
    assert (res.ci_low, res.ci_high) == pytest.approx(wilson_interval(12, 12))
    assert 1 <= res.mean_length <= 8 and res.episode_length == [int(x) for x in res.episode_length]
    assert res.env_steps >= sum(res.episode_length) and res.policy_time_s > 0 and res.env_time_s > 0
    assert "success 100.0%" in res.summary()


def test_same_seed_same_result_for_any_num_envs_and_backend():
    spec = fake_task_spec(horizon=6)
    policy = GreedyLinePolicy(chunk=3, noise_std=3.0, gain=1.0)
    runs = [
        evaluate(policy, spec, episodes=15, seed=7, num_envs=1, backend="sync"),
        evaluate(policy, spec, episodes=15, seed=7, num_envs=4, backend="sync"),
        evaluate(policy, spec, episodes=15, seed=7, num_envs=2, backend="async"),
    ]
    assert 0 < runs[0].successes < 15  # the noise matters, so equality below is informative
    for r in runs[1:]:
        assert r.episode_success == runs[0].episode_success
        assert r.episode_length == runs[0].episode_length
    other = evaluate(policy, spec, episodes=15, seed=8, num_envs=1, backend="sync")
    assert other.episode_length != runs[0].episode_length


def test_counts_exactly_the_first_episodes_not_the_first_finished():
    """Successes end early and failures run to the horizon, so with 6 envs the first 30 episodes to
    *finish* are mostly successes: evaluation must count episodes 0..29 whatever order they end in."""
    spec = fake_task_spec(horizon=12)
    policy = GreedyLinePolicy(chunk=1, noise_std=3.0, gain=0.5)
    one = evaluate(policy, spec, episodes=30, seed=1, num_envs=1, backend="sync")
    many = evaluate(policy, spec, episodes=30, seed=1, num_envs=6, backend="sync")
    assert 5 < one.successes < 25  # both outcomes occur, so the set counted matters
    assert many.episode_success == one.episode_success and many.episode_length == one.episode_length
    # what the guarded-against bug would report: the first 30 of the seeded episodes to end on 6 envs
    sixty = evaluate(policy, spec, episodes=60, seed=1, num_envs=1, backend="sync")
    clocks, end_time = [0] * 6, {}
    for i, length in enumerate(sixty.episode_length):  # each episode starts on the env that frees first
        env = min(range(6), key=lambda e: clocks[e])
        clocks[env] += length
        end_time[i] = clocks[env]
    first_to_end = sorted(end_time, key=lambda i: (end_time[i], i))[:30]
    assert np.mean([sixty.episode_success[i] for i in first_to_end]) > one.success_rate  # so the bug would show


def test_crashed_episodes_count_as_failures():
    spec = fake_task_spec(horizon=20, crash_prob=0.5, crash_step=1)
    res = evaluate(GreedyLinePolicy(), spec, episodes=20, seed=0, num_envs=2, backend="sync")
    assert res.crashed_episodes == 20 - res.successes > 0
    assert all("FakeCrash" in e for e in res.errors)


def test_refuses_wrong_action_dim_and_bad_shapes():
    class Wide(GreedyLinePolicy):
        act_dim = 3

    p = Wide()
    p.act_dim = 3
    with pytest.raises(PostBCError, match="policy acts in 3 dimensions, task 'fake' takes 1"):
        evaluate(p, fake_task_spec(), episodes=2, backend="sync")

    class BadShape(GreedyLinePolicy):
        def act(self, obs_flat, noise=None):
            return np.zeros((obs_flat.shape[0] + 1, 1, 1), np.float32)

    with pytest.raises(PostBCError, match="policy returned actions of shape"):
        evaluate(BadShape(), fake_task_spec(), episodes=2, backend="sync")
    with pytest.raises(PostBCError, match="episodes=0"):
        evaluate(GreedyLinePolicy(), fake_task_spec(), episodes=0)


def test_policy_runs_single_threaded_and_threads_are_restored():
    torch = pytest.importorskip("torch")
    seen = []

    class Recording(GreedyLinePolicy):
        def act(self, obs_flat, noise=None):
            seen.append(torch.get_num_threads())
            return super().act(obs_flat, noise)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        evaluate(Recording(), fake_task_spec(), episodes=2, backend="sync")
        assert set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
