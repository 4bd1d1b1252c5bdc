"""Does a fitted Best-of-N critic know anything? Checked on held-out rollouts before it may act.

Best-of-N executes the argmax of Q over N candidate chunks. A critic that cannot tell good chunks
from bad ones makes that argmax a consistent bias, not a random pick, and silently lowers success
(measured on main before this check: a drawer-open policy at 1.00 fell to 0.05-0.20 with a critic
fitted on 20 rollouts that all succeeded). So the rollout episodes are split: IQL fits on most of
them, and on the held-out ones Q(s, a) of every chunk must rank the chunks of successful episodes
above those of failed ones better than chance. The statistic is the AUC (Mann-Whitney) over
chunks, with a 95% interval (Hanley & McNeil 1982) that counts episodes, not chunks, as the
samples, since chunks of one episode are not independent. The critic passes when the interval's
lower end is above 0.5. Rollouts without a success or without a failure cannot be ranked at all.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

MIN_EPISODES_PER_CLASS = 2  # one to fit on, one to check on


@dataclasses.dataclass(frozen=True)
class CriticCheck:
    passed: bool
    reason: str  # plain words: why the critic may or may not act
    auc: float = math.nan
    auc_low: float = math.nan
    auc_high: float = math.nan
    heldout_successes: int = 0
    heldout_failures: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def episode_success(rewards: np.ndarray, episode: np.ndarray) -> dict[int, bool]:
    """Episode number -> whether any of its chunks solved the task."""
    return {int(k): bool(rewards[episode == k].max() > 0) for k in np.unique(episode)}


def rollout_counts(rewards: np.ndarray, episode: np.ndarray) -> tuple[int, int]:
    """(successful episodes, failed episodes)."""
    flags = list(episode_success(rewards, episode).values())
    return sum(flags), len(flags) - sum(flags)


def unrankable_reason(successes: int, failures: int) -> str | None:
    """Why rollouts with these counts cannot train and check a critic, or None when they can."""
    if successes == 0 or failures == 0:
        which = "succeeded" if failures == 0 else "failed"
        return (f"all {successes + failures} rollout episodes {which}: a critic learns nothing from them about "
                "which actions lead to success")
    if min(successes, failures) < MIN_EPISODES_PER_CLASS:
        return (f"the rollouts hold {successes} successful and {failures} failed episodes; checking the critic needs at "
                f"least {MIN_EPISODES_PER_CLASS} of each (one to fit on, one held out): collect more rollouts")
    return None


def split_episodes(rewards: np.ndarray, episode: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over rows: True for rows of held-out episodes (`fraction` of each class, at least one)."""
    rng = np.random.default_rng(seed)
    success = episode_success(rewards, episode)
    held: list[int] = []
    for label in (True, False):
        ids = np.array([k for k, s in success.items() if s == label])
        if len(ids) >= MIN_EPISODES_PER_CLASS:
            n = min(len(ids) - 1, max(1, round(fraction * len(ids))))
            held += rng.choice(ids, n, replace=False).tolist()
    return np.isin(episode, held)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U / (n1 n0))."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def hanley_mcneil_interval(a: float, n1: int, n0: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of an AUC from n1 positive and n0 negative independent samples."""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    se = math.sqrt(max(var, 0.0))
    return max(0.0, a - z * se), min(1.0, a + z * se)


def check_critic(q: np.ndarray, rewards: np.ndarray, episode: np.ndarray) -> CriticCheck:
    """Does Q (one score per held-out chunk) rank chunks of successful episodes above failed ones?"""
    success = episode_success(rewards, episode)
    n1 = sum(success.values())
    n0 = len(success) - n1
    if n1 == 0 or n0 == 0:
        return CriticCheck(False, "the held-out rollouts hold no " + ("failure" if n0 == 0 else "success")
                           + ": the critic cannot be checked", heldout_successes=n1, heldout_failures=n0)
    labels = np.array([success[int(k)] for k in episode])
    a = auc(np.asarray(q, np.float64), labels)
    low, high = hanley_mcneil_interval(a, n1, n0)
    passed = low > 0.5
    reason = (f"on {n1 + n0} held-out episodes ({n1} successful) the critic ranks chunks of successful episodes "
              f"above failed ones with AUC {a:.2f} [{low:.2f}, {high:.2f}]: "
              + ("better than chance" if passed else "not better than chance"))
    return CriticCheck(passed, reason, a, low, high, n1, n0)
