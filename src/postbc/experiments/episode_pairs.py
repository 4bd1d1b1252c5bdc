"""Per-episode paired tests of a sweep's final evaluations, within each seed.

Every evaluation of a sweep runs episodes 0..N-1 of the sweep's evaluation seed, each from the same initial state
and, for a diffusion policy, the same sampler noise whatever the policy (postbc.evaluation.episodes); a final
evaluation's first episodes are its seed's pretrained evaluation's. So two policies of one seed can be compared
episode by episode: McNemar's exact test on the episodes one solved and the other failed. It says whether one
seed's two policies differ on those initial states. It carries none of the seed-to-seed spread of pretraining and
finetuning, which the across-seed paired t-test of the final evaluations does (results.final_paired_rows): it is
what a single seed can show, not a verdict on a claim.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from postbc.experiments.results import FINAL_ACTORS, SweepResults, evaluations, method_pairs
from postbc.stats import mcnemar_exact_p


@dataclasses.dataclass(frozen=True)
class Episodes:
    """One evaluation's outcome per episode, and the evaluation seed that numbered its episodes."""

    eval_seed: int
    success: tuple[bool, ...]


def episode_outcomes(results: SweepResults, kind: str, file: str = "eval.json") -> dict[tuple, dict[int, Episodes]]:
    """As results.eval_success, each evaluation's per-episode outcomes instead of its rate (evaluations written
    before they were kept are left out)."""
    def read(ev: dict) -> Episodes | None:
        flags = ev.get("episode_success")
        return Episodes(int(ev["seed"]), tuple(bool(s) for s in flags)) if flags else None

    return evaluations(results, kind, file, read)


def compare(a: Episodes, b: Episodes) -> dict[str, Any] | None:
    """Success of each on the episodes both ran (the shorter's), the episodes only `a` / only `b` solved, and
    McNemar's exact p; None when their episodes are not the same ones (different evaluation seeds)."""
    n = min(len(a.success), len(b.success))
    if a.eval_seed != b.eval_seed or n == 0:
        return None
    xa, xb = np.array(a.success[:n]), np.array(b.success[:n])
    only_a, only_b = int(np.sum(xa & ~xb)), int(np.sum(xb & ~xa))
    return {"episodes": n, "a": float(xa.mean()), "b": float(xb.mean()), "only_a": only_a, "only_b": only_b,
            "p": mcnemar_exact_p(only_a, only_b)}


def gain_table(pretrained: dict[tuple, dict[int, Episodes]],
               finals: dict[str, dict[tuple, dict[int, Episodes]]]) -> list[dict[str, Any]]:
    """Per finished finetuned policy and actor (`finals`: actor -> (task, demos, algo, method) -> seed), against
    the pretrained policy it started from (`pretrained`: (task, demos, method) -> seed): the episodes finetuning
    gained (now solved, failed before) and lost."""
    rows = []
    for actor, by_run in finals.items():
        for (task, demos, algo, method), by_seed in sorted(by_run.items()):
            for seed, after in sorted(by_seed.items()):
                before = pretrained.get((task, demos, method), {}).get(seed)
                c = compare(after, before) if before is not None else None
                if c is not None:
                    rows.append({"task": task, "demos": demos, "algo": algo, "method": method, "actor": actor,
                                 "seed": seed, "episodes": c["episodes"], "pretrained": c["b"], "finetuned": c["a"],
                                 "gained": c["only_a"], "lost": c["only_b"], "p": c["p"]})
    return rows


def difference_table(finals: dict[str, dict[tuple, dict[int, Episodes]]]) -> list[dict[str, Any]]:
    """Per seed and actor, the finetuned policies of PostBC against BC and against sigma-BC (results.method_pairs):
    the episodes only the first solved (a_only) and only the second (b_only)."""
    rows = []
    for actor, by_run in finals.items():
        for task, demos, algo, a, b, final_a, final_b in method_pairs(by_run):
            for seed in sorted(set(final_a) & set(final_b)):
                c = compare(final_a[seed], final_b[seed])
                if c is not None:
                    rows.append({"task": task, "demos": demos, "algo": algo, "actor": actor, "comparison": f"{a} - {b}",
                                 "seed": seed, "episodes": c["episodes"], "a_success": c["a"], "b_success": c["b"],
                                 "a_only": c["only_a"], "b_only": c["only_b"], "p": c["p"]})
    return rows


def final_outcomes(results: SweepResults) -> dict[str, dict[tuple, dict[int, Episodes]]]:
    return {actor: episode_outcomes(results, "final", file) for actor, file in FINAL_ACTORS.items()}


def gain_rows(results: SweepResults) -> list[dict[str, Any]]:
    return gain_table(episode_outcomes(results, "eval"), final_outcomes(results))


def difference_rows(results: SweepResults) -> list[dict[str, Any]]:
    return difference_table(final_outcomes(results))
