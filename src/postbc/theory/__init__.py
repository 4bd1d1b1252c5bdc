"""Posterior BC's tabular theory made executable (PAPER_NOTES section 2).

estimators     BC, posterior, PostBC and uniform-noise policies from counts; coverage
mdp            TabularMDP and exact policy evaluation J(pi)
sampling       demonstration counts and rollouts, many datasets at once
constructions  the bandit of result 1, the chain MDP of result 2, the A-armed family of result 4
finetune       Best-of-N from the pretrained policy's own rollouts
experiments    the Monte-Carlo checks; command: `postbc theory`
"""

from postbc.theory.estimators import (
    analysis_alpha_lam,
    bc_policy,
    coverage,
    posterior_policy,
    postbc_policy,
    uniform_noise_policy,
)
from postbc.theory.mdp import TabularMDP, evaluate, q_values
from postbc.theory.sampling import sample_counts

__all__ = [
    "TabularMDP",
    "analysis_alpha_lam",
    "bc_policy",
    "coverage",
    "evaluate",
    "posterior_policy",
    "postbc_policy",
    "q_values",
    "sample_counts",
    "uniform_noise_policy",
]
