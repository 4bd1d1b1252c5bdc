"""The MDPs behind the paper's tabular results, each with its demonstrator policy pi_beta."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from postbc.theory.mdp import TabularMDP


class Problem(NamedTuple):
    mdp: TabularMDP
    pi_beta: np.ndarray  # (H, S, A)


def _check_probability(name: str, value: float, upper: float = 1.0) -> None:
    if not 0.0 < value <= upper:
        raise ValueError(f"{name} must be in (0, {upper:g}], got {value!r}")


def _bandit(pi_beta: np.ndarray, rewards: np.ndarray) -> Problem:
    num_actions = len(pi_beta)
    mdp = TabularMDP(initial=np.ones(1), transitions=np.ones((1, 1, num_actions, 1)), rewards=rewards[None, None])
    return Problem(mdp, np.asarray(pi_beta, dtype=float)[None, None])


def three_armed_bandit(eps: float, rewarded_arm: int = 1) -> Problem:
    """Result 1: pi_beta = (1 - 4 eps, 2 eps, 2 eps); reward 1 on arm index 1 (the paper's r1, its
    "arm 2") or index 2 (r2, "arm 3").

    The demonstrator earns 2 eps under either reward, and the data never depends on which one
    holds, so nothing learnt from demonstrations alone can tell r1 from r2.
    """
    _check_probability("eps", eps, 0.25)
    if rewarded_arm not in (1, 2):
        raise ValueError(f"rewarded_arm must be 1 (reward r1) or 2 (reward r2), got {rewarded_arm!r}")
    return _bandit(np.array([1 - 4 * eps, 2 * eps, 2 * eps]), np.eye(3)[rewarded_arm])


def armed_family(num_actions: int, beta: float, instance: int = 1) -> Problem:
    """Result 4: instance i in {1..A-1} of an A-armed family. Arm 0 pays 1, the others 0; the
    demonstrator plays arm 0 w.p. 1 - beta and arm i w.p. beta.

    With beta ~ 1/T the data is "arm 0 only" w.p. (1 - beta)^T whatever i is, so an estimator
    cannot know which arm it must cover and has to spread mass over all A - 1 of them; that
    mass is return lost. See `experiments.result4` for the resulting bound.
    """
    if num_actions < 2:
        raise ValueError(f"num_actions must be >= 2, got {num_actions!r}")
    _check_probability("beta", beta)
    if not 1 <= instance < num_actions:
        raise ValueError(f"instance must be in 1..{num_actions - 1}, got {instance!r}")
    pi_beta = np.zeros(num_actions)
    pi_beta[0], pi_beta[instance] = 1 - beta, beta
    return _bandit(pi_beta, np.eye(num_actions)[0])


CHAIN, RARE, DEAD = 0, 1, 2


def chain_mdp(horizon: int, num_actions: int, p_rare: float, rare_reward: float = 0.0) -> Problem:
    """Result 2: noise everywhere costs return, while coverage is needed in one rare state.

    States: CHAIN, RARE, DEAD. An episode starts in CHAIN w.p. 1 - p_rare and in RARE w.p. p_rare.
    - CHAIN: action 0 stays in CHAIN, any other action falls into DEAD. Action 0 at the last step
      pays 1, so only repeating action 0 for all H steps earns anything.
    - RARE: every action leads to DEAD; action 1 pays `rare_reward` (0 in result 2, where only
      coverage matters; > 0 in the finetuning experiment, where it is the reward to discover).
    - DEAD: absorbing, pays nothing.
    Demonstrator: action 0 in CHAIN and DEAD; actions 0 and 1 w.p. 1/2 each in RARE.

    With p_rare ~ 1/T, RARE is seen a handful of times, often with only one of its two actions,
    so BC puts zero mass on an action the demonstrator takes half the time. Uniform noise alpha
    gives that action alpha/A, i.e. coverage 2 alpha/A, but multiplies the chain return by
    (1 - alpha (1 - 1/A))^H. PostBC's noise in CHAIN shrinks like lam/T_h(CHAIN), which is tiny
    because the chain is visited by almost every demonstration.
    """
    if horizon < 1 or num_actions < 2:
        raise ValueError(f"need horizon >= 1 and num_actions >= 2, got {horizon!r}, {num_actions!r}")
    _check_probability("p_rare", p_rare)
    transitions = np.zeros((3, num_actions, 3))
    transitions[CHAIN, 0, CHAIN] = 1.0
    transitions[CHAIN, 1:, DEAD] = 1.0
    transitions[RARE, :, DEAD] = 1.0
    transitions[DEAD, :, DEAD] = 1.0
    rewards = np.zeros((horizon, 3, num_actions))
    rewards[-1, CHAIN, 0] = 1.0
    rewards[0, RARE, 1] = rare_reward
    pi_beta = np.zeros((horizon, 3, num_actions))
    pi_beta[:, [CHAIN, DEAD], 0] = 1.0
    pi_beta[:, RARE, :2] = 0.5
    mdp = TabularMDP(initial=np.array([1 - p_rare, p_rare, 0.0]), transitions=transitions, rewards=rewards)
    return Problem(mdp, pi_beta)


def random_mdp(num_states: int, num_actions: int, horizon: int, rng: np.random.Generator) -> Problem:
    """Result 3: a generic MDP. Dirichlet(1) transitions and initial state, uniform [0, 1] rewards,
    and a good but stochastic demonstrator: half its mass on the best immediate action, half
    Dirichlet(1/2) spread, so some of its actions are rare."""
    initial = rng.dirichlet(np.ones(num_states))
    transitions = rng.dirichlet(np.ones(num_states), size=(horizon, num_states, num_actions))
    rewards = rng.random((horizon, num_states, num_actions))
    greedy = np.eye(num_actions)[rewards.argmax(axis=-1)]
    spread = rng.dirichlet(np.full(num_actions, 0.5), size=(horizon, num_states))
    pi_beta = 0.5 * greedy + 0.5 * spread
    return Problem(TabularMDP(initial, transitions, rewards), pi_beta)
