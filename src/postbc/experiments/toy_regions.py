"""Toy-task success split by start region: pocket starts (rare in the demos) versus common starts.

On the toy task 15% of episodes start in a pocket, so a policy's overall success barely moves when
it learns (or fails to learn) to leave the pockets. PostBC's claim is exactly about those rare
states: its wider action distribution there gives finetuning something to steer. This module
evaluates each pretrained and finetuned policy of a toy sweep on pocket-only and common-only
starts (the env's `rare_start_prob` set to 1 and 0) and aggregates over seeds.

    python -m postbc.experiments.toy_regions runs/toy_dsrl_d20 --episodes 200

`postbc report` adds this table to the report of any sweep that includes the toy task.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from postbc.errors import PostBCError
from postbc.stats import mean_interval

REGIONS = {"pocket": 1.0, "common": 0.0}  # rare_start_prob of the evaluation env


@dataclasses.dataclass
class RegionRow:
    method: str
    stage: str  # "pretrained" | the finetuning algorithm
    region: str
    per_seed: dict[int, float]

    def interval(self) -> tuple[float, float, float]:
        return mean_interval(np.array(list(self.per_seed.values()), dtype=float))


def evaluate_by_region(policy, episodes: int, seed: int, num_envs: int = 25) -> dict:
    """`EvalResult` of `policy` on the toy task from pocket-only and from common-only starts."""
    from postbc.evaluation.episodes import evaluate

    return {region: evaluate(policy, "toy", episodes, seed=seed, num_envs=num_envs, backend="sync",
                             env_kwargs={"rare_start_prob": p}, quiet=True)
            for region, p in REGIONS.items()}


def success_by_region(policy, episodes: int, seed: int, num_envs: int = 25) -> dict[str, float]:
    """Success rate of `policy` on the toy task from pocket-only and from common-only starts."""
    return {region: r.success_rate for region, r in evaluate_by_region(policy, episodes, seed, num_envs).items()}


def sweep_region_table(results, episodes: int = 200, seed: int = 7) -> list[RegionRow]:
    """Evaluate every finished toy pretraining and finetuning run of a sweep (`SweepResults`) by start region."""
    from postbc.finetune.serve import load_finetuned_policy
    from postbc.policies.pretrained import PretrainedPolicy

    rows: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for kind in ("pretrain", "finetune"):
        for run in results.of_kind(kind):
            p = run.stage.params
            if p["task"] != "toy":
                continue
            try:
                if kind == "pretrain":
                    policy, stage = PretrainedPolicy.load(run.stage.dir), "pretrained"
                else:
                    policy, stage = load_finetuned_policy(run.stage.dir), p["algo"]
            except PostBCError as e:  # e.g. a finetuning run whose pretrained base was deleted
                warnings.warn(f"start-region table: skipped {run.stage.name}: {e}", stacklevel=2)
                continue
            for region, rate in success_by_region(policy, episodes, seed).items():
                rows[(p["method"], stage, region)][int(p["seed"])] = rate
    return [RegionRow(m, s, r, per_seed) for (m, s, r), per_seed in rows.items()]


def table_rows(rows: list[RegionRow]) -> list[dict]:
    """One dict per (method, policy, region), pretrained first: for `postbc.experiments.tables`."""
    out = []
    for row in sorted(rows, key=lambda r: (r.stage != "pretrained", r.stage, r.region, r.method)):
        mean, low, high = row.interval()
        out.append({"method": row.method, "policy": row.stage, "start": row.region, "n": len(row.per_seed),
                    "mean": mean, "ci_low": low, "ci_high": high,
                    "per_seed": " ".join(f"{row.per_seed[s]:.2f}" for s in sorted(row.per_seed))})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep_dir", type=Path)
    p.add_argument("--episodes", type=int, default=200, help="episodes per policy and region")
    p.add_argument("--seed", type=int, default=7, help="evaluation seed (the same episodes for every policy)")
    p.add_argument("--out", type=Path, default=None, help="also write the table to OUT.md and OUT.csv")
    a = p.parse_args(argv)
    from postbc.experiments.results import load_results
    from postbc.experiments.tables import to_markdown, write_table

    rows = table_rows(sweep_region_table(load_results(a.sweep_dir), a.episodes, a.seed))
    print(to_markdown(rows), end="")
    if a.out is not None:
        write_table(rows, a.out)


if __name__ == "__main__":
    main()
