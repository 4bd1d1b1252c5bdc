import numpy as np
import pytest

from postbc.envs.registry import make_env
from postbc.experts import expert_operators, get_expert
from postbc.experts.operators import OPERATORS

pytestmark = pytest.mark.sim
pytest.importorskip("metaworld")

from postbc.experts import metaworld_experts  # noqa: E402


def rollout(env, expert, seed):
    obs, _ = env.reset(seed=seed)
    expert.reset(np.random.default_rng(seed), obs)
    for t in range(env.horizon):
        obs, _, term, trunc, info = env.step(expert.act(obs))
        if term or trunc:
            break
    return info["success"], t + 1


def test_any_metaworld_task_has_operator_experts():
    assert expert_operators("mw-window-open") == [*OPERATORS, "mixed"]


def test_mixed_operators_solve_pick_place_and_name_themselves():
    env = make_env("mw-pick-place")
    expert = get_expert("mw-pick-place", "mixed")
    seen, successes = set(), 0
    for seed in range(8):
        success, _ = rollout(env, expert, seed)
        successes += success
        seen.add(expert.operator)
    assert successes >= 6 and len(seen) >= 3 and seen <= set(OPERATORS)


def test_slow_operator_is_slower_than_quick_one():
    env = make_env("mw-drawer-open")
    lengths = {op: rollout(env, get_expert("mw-drawer-open", op), seed=1)[1] for op in ("quick", "careful")}
    assert lengths["careful"] > lengths["quick"]


def test_stuck_hand_backs_off_open_and_retries():
    expert = get_expert("mw-reach", "precise")
    env = make_env("mw-reach")
    obs, _ = env.reset(seed=0)
    expert.reset(np.random.default_rng(0), obs)
    actions = [expert.act(obs) for _ in range(metaworld_experts.STUCK_STEPS + 1)]  # the same obs: hand never moves
    assert expert.retries == 1
    np.testing.assert_allclose(actions[-1], [0.0, 0.0, 0.6, -1.0])
