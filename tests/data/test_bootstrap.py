import numpy as np
import pytest

from postbc.data.bootstrap import bootstrap_counts

EPISODE_OF = np.repeat(np.arange(6), [3, 5, 2, 4, 4, 1])  # 6 episodes, 19 samples


def test_trajectory_bootstrap_resamples_whole_episodes():
    counts = bootstrap_counts("trajectory", EPISODE_OF, 200, np.random.default_rng(0))
    assert counts.shape == (200, EPISODE_OF.size) and counts.dtype == np.int64
    starts = np.flatnonzero(np.r_[True, np.diff(EPISODE_OF) != 0])
    per_episode = counts[:, starts]
    # every sample of an episode has the episode's multiplicity; 6 episodes are drawn per member
    np.testing.assert_array_equal(counts, per_episode[:, EPISODE_OF])
    assert np.all(per_episode.sum(axis=1) == 6)
    assert (per_episode == 0).any(axis=1).mean() > 0.5  # most members leave some episode out
    assert abs(per_episode.mean() - 1.0) < 0.05


def test_state_action_bootstrap_resamples_pairs():
    counts = bootstrap_counts("state_action", EPISODE_OF, 200, np.random.default_rng(0))
    assert np.all(counts.sum(axis=1) == EPISODE_OF.size)
    starts = np.flatnonzero(np.r_[True, np.diff(EPISODE_OF) != 0])
    assert not np.array_equal(counts, counts[:, starts][:, EPISODE_OF])  # not tied to episodes


def test_same_generator_state_same_counts():
    a = bootstrap_counts("trajectory", EPISODE_OF, 5, np.random.default_rng(3))
    b = bootstrap_counts("trajectory", EPISODE_OF, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="trajectory"):
        bootstrap_counts("episode", EPISODE_OF, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_members"):
        bootstrap_counts("trajectory", EPISODE_OF, 0, np.random.default_rng(0))
