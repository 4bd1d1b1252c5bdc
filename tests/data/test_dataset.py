import numpy as np

from postbc.data.dataset import DemoDataset

from .conftest import ENV_ARGS


def test_load_flattens_obs_in_the_order_asked(demo_file):
    path, demos = demo_file
    ds = DemoDataset.load(path, obs_keys=["vel", "pos"])
    assert ds.obs.shape == (25, 5) and ds.obs.dtype == np.float32
    assert ds.actions.shape == (25, 2) and (ds.obs_keys, ds.obs_dims) == (("vel", "pos"), (3, 2))
    np.testing.assert_array_equal(ds.obs[:3], np.concatenate([demos[0].obs["vel"], demos[0].obs["pos"]], axis=1))
    np.testing.assert_array_equal(ds.actions, np.concatenate([d.actions for d in demos]))
    np.testing.assert_array_equal(ds.episode_starts, [0, 3, 7, 12, 18])
    np.testing.assert_array_equal(ds.episode_lengths, [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(ds.episode_of[:8], [0, 0, 0, 1, 1, 1, 1, 2])
    assert ds.demo_names == [f"demo_{i}" for i in range(5)] and ds.env_args == ENV_ARGS


def test_selection_by_filter_key_and_max_demos(demo_file):
    path, demos = demo_file
    ds = DemoDataset.load(path, filter_key="odd", max_demos=1)
    assert ds.demo_names == ["demo_1"] and ds.num_samples == 4
    np.testing.assert_array_equal(ds.actions, demos[1].actions)


def test_normalizers_are_fitted_to_the_selected_data(demo_file):
    ds = DemoDataset.load(demo_file[0])
    for x in (ds.normalized_obs(), ds.normalized_actions()):
        np.testing.assert_allclose(x.min(axis=0), -1.0, atol=1e-6)
        np.testing.assert_allclose(x.max(axis=0), 1.0, atol=1e-6)


def test_action_chunks_repeat_the_last_action_past_the_episode_end():
    actions = np.arange(10, dtype=np.float32).reshape(5, 2)  # episodes: samples 0-2 and 3-4
    ds = DemoDataset.from_arrays(np.zeros((5, 1)), actions, [3, 2])
    chunks = ds.action_normalizer.unnormalize(ds.action_chunks(4))
    assert chunks.shape == (5, 4, 2)
    expected_rows = [[0, 1, 2, 2], [1, 2, 2, 2], [2, 2, 2, 2], [3, 4, 4, 4], [4, 4, 4, 4]]
    np.testing.assert_allclose(chunks, actions[np.array(expected_rows)], atol=1e-5)
    np.testing.assert_array_equal(ds.action_chunks(1)[:, 0], ds.normalized_actions())
