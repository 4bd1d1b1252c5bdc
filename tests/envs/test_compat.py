import copy

import pytest

from postbc.envs.compat import check_dataset_matches_task
from postbc.envs.registry import get_task
from postbc.errors import PostBCError


def lift():
    return get_task("lift")  # registering robosuite tasks does not import robosuite


def test_matching_data_passes_even_with_other_horizon_and_key_order():
    spec = lift()
    env_args = copy.deepcopy(dict(spec.env_args))
    env_args["env_kwargs"]["horizon"] = 500
    keys = list(reversed(spec.obs_keys))
    check_dataset_matches_task(env_args, keys, 7, spec, obs_dims=list(reversed(spec.obs_dims)))
    check_dataset_matches_task(None, spec.obs_keys, 7, spec)


def test_other_task_is_refused_naming_both():
    can = get_task("can")
    with pytest.raises(PostBCError, match=r"demos.hdf5 does not fit task 'lift': task: data made for 'can'.*"
                                          r"env_name: data 'PickPlaceCan', task 'Lift'"):
        check_dataset_matches_task(can.env_args, can.obs_keys, 7, lift(), source="demos.hdf5")


def test_other_controller_settings_are_refused():
    spec = lift()
    env_args = copy.deepcopy(dict(spec.env_args))
    env_args["env_kwargs"]["controller_configs"]["body_parts"]["right"]["output_max"][0] = 0.1
    expected = r"env_kwargs\['controller_configs'\]\['body_parts'\]\['right'\]\['output_max'\]: data \[0\.1, 0\.05,.*task \[0\.05, 0\.05,"
    with pytest.raises(PostBCError, match=expected):
        check_dataset_matches_task(env_args, spec.obs_keys, 7, spec)


def test_obs_keys_sizes_and_action_dim_are_checked():
    spec = lift()
    with pytest.raises(PostBCError, match=r"obs keys: dataset \['robot0_eef_pos', 'cube'\], task .*"
                                          r"missing \['robot0_eef_quat', 'robot0_gripper_qpos', 'object'\], extra \['cube'\]"):
        check_dataset_matches_task(None, ["robot0_eef_pos", "cube"], 7, spec)
    with pytest.raises(PostBCError, match="obs sizes: object dataset 14 vs task 10"):
        check_dataset_matches_task(None, spec.obs_keys, 7, spec, obs_dims=(3, 4, 2, 14))
    with pytest.raises(PostBCError, match="action dim: dataset 4, task 7"):
        check_dataset_matches_task(None, spec.obs_keys, 4, spec)


def test_metaworld_tasks_share_a_layout_but_not_a_name():
    door, drawer = get_task("mw-door-open"), get_task("mw-drawer-open")
    with pytest.raises(PostBCError, match="task: data made for 'mw-door-open'"):
        check_dataset_matches_task(door.env_args, door.obs_keys, 4, drawer)
