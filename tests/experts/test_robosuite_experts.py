import numpy as np
import pytest

from postbc.envs.registry import make_env
from postbc.experts import expert_operators, get_expert
from postbc.experts.operators import OPERATORS

pytestmark = pytest.mark.sim
pytest.importorskip("robosuite")

from postbc.experts.robosuite_experts import CAN_BIN_XY, NUT_HANDLE_X, PEG_XY, Scene  # noqa: E402


def run(env, expert, seed, rng_seed, max_steps=None, on_step=None):
    obs, _ = env.reset(seed=seed)
    expert.reset(np.random.default_rng(rng_seed), obs)
    for t in range(max_steps or env.horizon):
        action = expert.act(obs)
        assert action.shape == (7,) and np.all(np.abs(action) <= 1)
        obs, _, term, trunc, info = env.step(action)
        if on_step:
            on_step(t, env, expert)
        if term or trunc:
            break
    return info["success"], t + 1


@pytest.fixture(scope="module")
def lift():
    env = make_env("lift")
    yield env
    env.close()


def test_every_robosuite_task_has_all_operators():
    for task in ("lift", "can", "square"):
        assert expert_operators(task) == [*OPERATORS, "mixed"]


def test_lift_experts_succeed_and_operators_differ_in_pace(lift):
    lengths = {}
    for op in ("quick", "careful"):
        success, lengths[op] = run(lift, get_expert("lift", op), seed=5, rng_seed=5)
        assert success
    assert lengths["careful"] > lengths["quick"] * 1.3


def test_expert_is_reproducible_from_its_generator(lift):
    def actions(rng_seed):
        obs, _ = lift.reset(seed=3)
        expert = get_expert("lift", "shaky")
        expert.reset(np.random.default_rng(rng_seed), obs)
        return np.stack([expert.act(obs) for _ in range(5)])

    assert np.array_equal(actions(1), actions(1))
    assert not np.array_equal(actions(1), actions(2))


def test_losing_the_cube_triggers_a_corrective_retry(lift):
    moved = {}

    def knock_cube_away(t, env, expert):
        if expert.phase == "lift" and not moved:
            sim = env.raw.sim
            addr = sim.model.get_joint_qpos_addr(env.raw.cube.joints[0])[0]
            sim.data.qpos[addr:addr + 2] += [0.12, 0.0]
            sim.forward()
            moved["at"] = t

    expert = get_expert("lift", "precise")
    success, _ = run(lift, expert, seed=7, rng_seed=7, on_step=knock_cube_away)
    assert moved and expert.retries >= 1 and success


def test_scene_constants_match_the_simulator():
    can = make_env("can", seed=0)
    bin2, size = can.raw.bin2_pos, can.raw.bin_size
    # Can's quarter of bin2: x in (bin2_x, bin2_x + size_x/2), y in (bin2_y, bin2_y + size_y/2); aims (+-2 cm)
    # stay a can radius (2.5 cm) inside it
    assert bin2[0] + 0.025 <= CAN_BIN_XY[0] - 0.02 and CAN_BIN_XY[0] + 0.02 <= bin2[0] + size[0] / 2 - 0.025
    assert bin2[1] + 0.025 <= CAN_BIN_XY[1] - 0.02 and CAN_BIN_XY[1] + 0.02 <= bin2[1] + size[1] / 2 - 0.025
    can.close()
    square = make_env("square")
    obs, _ = square.reset(seed=0)
    sim = square.raw.sim
    np.testing.assert_allclose(sim.data.body_xpos[square.raw.peg1_body_id][:2], PEG_XY, atol=1e-6)
    scene = Scene.from_obs(obs, "square")
    handle = sim.data.site_xpos[sim.model.site_name2id("SquareNut_handle_site")]
    np.testing.assert_allclose(scene.obj_rot.apply([NUT_HANDLE_X, 0, 0]) + scene.obj, handle, atol=2e-3)
    square.close()
