"""Camera observations: specs with image keys, rendered robosuite frames, and collect --camera."""

import numpy as np
import pytest

from postbc.envs.cameras import spec_for_obs_keys, with_cameras
from postbc.envs.registry import get_task
from postbc.errors import PostBCError


def test_a_task_without_cameras_is_refused():
    with pytest.raises(PostBCError, match="renders no cameras"):
        with_cameras(get_task("toy"), ["agentview"], 32)


@pytest.mark.sim
def test_camera_spec_round_trips_through_a_policy_s_keys():
    pytest.importorskip("robosuite")
    spec = with_cameras(get_task("lift"), ["agentview"], 32)
    assert spec.obs_keys[-1] == "agentview_image" and spec.obs_dims[-1] == 32 * 32 * 3
    assert spec.env_args["env_kwargs"]["camera_names"] == ["agentview"]
    again = spec_for_obs_keys(get_task("lift"), spec.obs_keys, spec.obs_dims)
    assert (again.obs_keys, again.obs_dims, again.env_args) == (spec.obs_keys, spec.obs_dims, spec.env_args)
    assert spec_for_obs_keys(get_task("lift"), get_task("lift").obs_keys, get_task("lift").obs_dims) is get_task("lift")
    proprio = spec_for_obs_keys(get_task("lift"), ("agentview_image", "robot0_eef_pos"), (32 * 32 * 3, 3))
    assert proprio.obs_keys == ("agentview_image", "robot0_eef_pos") and proprio.obs_dims == (32 * 32 * 3, 3)
    unknown = spec_for_obs_keys(get_task("lift"), ("robot0_eef_pos", "nowhere"), (3, 2))
    assert unknown.obs_keys == get_task("lift").obs_keys  # left for the task checks to name
    with pytest.raises(PostBCError, match="twice"):
        with_cameras(get_task("lift"), ["agentview", "agentview"], 32)


@pytest.mark.sim
def test_robosuite_renders_uint8_frames_that_follow_the_scene(tmp_path):
    pytest.importorskip("robosuite")
    from postbc.data.robomimic import read_demos
    from postbc.experts.collect import collect

    result = collect("lift", 1, tmp_path / "img.hdf5", seed=0, cameras=["agentview"], image_size=24, quiet=True)
    demo = read_demos(result.path).demos[0]
    frames = demo.obs["agentview_image"]
    assert frames.dtype == np.uint8 and frames.shape == (demo.num_samples, 24, 24, 3)
    assert frames.std() > 10  # a scene, not a blank buffer
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).sum() > 0  # the arm moved the picture

    spec = with_cameras(get_task("lift"), ["no_such_camera"], 24)
    with pytest.raises(PostBCError, match="no camera.*agentview"):
        spec.make(horizon=2)


@pytest.mark.sim
def test_metaworld_and_mt10_render_their_cameras():
    pytest.importorskip("metaworld")
    env = with_cameras(get_task("mt10"), ["corner", "topview"], 32).make(horizon=3)
    obs, info = env.reset(seed=0)
    assert obs["corner_image"].shape == (32, 32, 3) and obs["corner_image"].dtype == np.uint8
    assert obs["topview_image"].std() > 10 and not np.array_equal(obs["corner_image"], obs["topview_image"])
    obs, *_ = env.step(np.ones(4, np.float32))
    assert obs["corner_image"].shape == (32, 32, 3) and info["task"]
    env.close()
    with pytest.raises(PostBCError, match="no camera.*corner"):
        with_cameras(get_task("mw-reach"), ["nope"], 32).make()
