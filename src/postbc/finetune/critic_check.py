"""Does a fitted Best-of-N critic know anything? Checked on held-out rollouts before it may act.

Best-of-N executes the argmax of Q over N candidate chunks. A critic that cannot tell good chunks
from bad ones makes that argmax a consistent bias, not a random pick, and silently lowers success
(measured on main before this check: a drawer-open policy at 1.00 fell to 0.05-0.20 with a critic
fitted on 20 rollouts that all succeeded). So the rollout episodes are split: IQL fits on most of
them, and on the held-out ones Q(s, a) of every chunk must rank the chunks of successful episodes
above those of failed ones better than chance. The statistic is the AUC (Mann-Whitney) over
chunks, with a 95% interval (Hanley & McNeil 1982) that counts episodes, not chunks, as the
samples, since chunks of one episode are not independent. Rollouts without a success or without a
failure cannot be ranked at all.

Ranking states is not enough: a critic can tell that a state lies on a successful episode (the
cube is already up) while its dependence on the action is noise, and the argmax over candidates
at one state then picks by that noise. Measured on pick-place (chunk 1, 1000 rollouts, IQL 25k
updates): state AUC 0.91 [0.86, 0.95], yet Best-of-16 lowered success from 0.61 to 0.55. So a
second check ranks actions: at each held-out chunk, the share of N fresh candidates from the
pretrained policy that the critic scores below the chunk that was executed (its rank, 0..1). A
critic that knows which actions lead to success ranks the executed chunks of successful episodes
higher than those of failed ones; per-episode mean ranks give an AUC with the same interval (on
that pick-place critic: 0.53 [0.45, 0.61], no better than chance). The critic passes when the lower
ends of both intervals are above 0.5; where no pretrained policy is at hand to draw candidates
(`best-of-n-fit` without `--checkpoint`), only states are checked, and the verdict says so.
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
    action_auc: float = math.nan  # the action check's AUC and interval (nan: not run)
    action_auc_low: float = math.nan
    action_auc_high: float = math.nan

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


def rank_among(q_taken: np.ndarray, q_candidates: np.ndarray) -> np.ndarray:
    """(B,) share of each row's candidates (B, N) scored below the executed chunk's score, ties counted half."""
    q_taken = np.asarray(q_taken, np.float64)[:, None]
    q_candidates = np.asarray(q_candidates, np.float64)
    return (q_candidates < q_taken).mean(1) + 0.5 * (q_candidates == q_taken).mean(1)


NO_BASE_UNRANKED = "no pretrained policy to draw candidates from"  # why actions went unranked, by default


def check_critic(q: np.ndarray, rewards: np.ndarray, episode: np.ndarray,
                 action_rank: np.ndarray | None = None, rank_episode: np.ndarray | None = None,
                 unranked_why: str = NO_BASE_UNRANKED) -> CriticCheck:
    """Does Q (one score per held-out chunk) rank chunks of successful episodes above failed ones, and (when
    `action_rank` gives the executed chunks' ranks among fresh candidates, at rows of episodes `rank_episode`)
    does it rank the executed actions of successful episodes higher?"""
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
              f"above failed ones with AUC {a:.2f} [{low:.2f}, {high:.2f}] ("
              + ("better than chance" if passed else "not better than chance") + ")")
    if action_rank is None:
        return CriticCheck(passed, reason + f"; its ranking of actions was not checked ({unranked_why})", a, low, high,
                           n1, n0)
    ranked = np.unique(rank_episode)
    mean_rank = np.array([np.mean(action_rank[rank_episode == k]) for k in ranked])
    ranked_labels = np.array([success[int(k)] for k in ranked])
    m1 = int(ranked_labels.sum())
    m0 = len(ranked_labels) - m1
    if m1 == 0 or m0 == 0:
        return CriticCheck(False, reason + "; its ranking of actions could not be checked (the ranked chunks hold one "
                           "outcome only)", a, low, high, n1, n0)
    a2 = auc(mean_rank, ranked_labels)
    low2, high2 = hanley_mcneil_interval(a2, m1, m0)
    actions_ok = low2 > 0.5
    reason += (f", and ranks the executed chunks of successful episodes above those of failed ones among fresh "
               f"candidates with AUC {a2:.2f} [{low2:.2f}, {high2:.2f}] ("
               + ("better than chance" if actions_ok else "not better than chance: it cannot tell good actions from "
                  "bad ones at a state") + ")")
    return CriticCheck(passed and actions_ok, reason, a, low, high, n1, n0, a2, low2, high2)
