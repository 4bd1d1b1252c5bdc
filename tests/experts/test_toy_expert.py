"""The toy demonstrator: always succeeds, uses both modes in common and in rare states."""

import numpy as np
import pytest

from postbc.envs.registry import flatten_obs, make_env
from postbc.envs.toy import OBS_KEYS, toy_state_region
from postbc.experts import get_expert
from postbc.experts.toy import OPERATORS


def run(operator, episodes, rare_start_prob=0.15, seed=0):
    env = make_env("toy", rare_start_prob=rare_start_prob)
    expert = get_expert("toy", operator)
    rng = np.random.default_rng(seed)
    out = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + ep)
        expert.reset(rng, obs)
        first_obs, first_action = flatten_obs(obs, OBS_KEYS), expert.act(obs)
        obs, *_, info = env.step(first_action)
        for _ in range(59):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        out.append((info["success"], expert.operator, getattr(expert, "current", expert).route, first_obs, first_action))
    return out


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_operator_solves_the_task_from_both_kinds_of_start(operator):
    for rare_start_prob in (0.0, 1.0):
        assert all(success for success, *_ in run(operator, 25, rare_start_prob))


def test_routes_are_multimodal_in_common_and_in_rare_states():
    common = run("steady", 60, rare_start_prob=0.0)
    rare = run("steady", 60, rare_start_prob=1.0, seed=1)
    assert set(toy_state_region(np.stack([r[3] for r in common]))) == {"common"}
    assert set(toy_state_region(np.stack([r[3] for r in rare]))) == {"rare"}
    for episodes, modes in ((common, {"left", "right"}), (rare, {"inner", "outer"})):
        routes = [r[2] for r in episodes]
        assert set(routes) == modes
        assert min(routes.count(m) for m in modes) >= 15
    # In a pocket the two exits start in different directions: outwards vs down.
    outwards = np.array([a[0] * np.sign(o[0]) > -a[1] for _, _, _, o, a in rare])
    np.testing.assert_array_equal(outwards, [r[2] == "outer" for r in rare])


def test_side_preference_and_the_mixture_of_operators():
    lefty = [r[2] for r in run("lefty", 100, rare_start_prob=0.0)]
    assert lefty.count("left") > 65
    operators = [r[1] for r in run("mixed", 80)]
    assert set(operators) == set(OPERATORS)
