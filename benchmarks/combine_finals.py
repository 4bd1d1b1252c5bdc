"""Final-evaluation tables over seeds that finished in different run directories (another machine's, lost since).

An earlier report's `final_success.csv` keeps every finished run's final success per seed (its `per_seed` column).
This script takes those, adds the final evaluations of a sweep directory for the runs the earlier report lacks,
and writes the report's two final tables (`final_success`, `final_paired_differences`) over the union, with gains
and paired differences against the pretrained evaluations of the sweep directory (the same seeds' policies, which
pretraining reproduces exactly). Where both hold a (run, seed), the earlier value is used and the pair is printed
(a replicate: same seed, another execution). Example, after `postbc sweep ... --only dppo-s3` on a new machine:

    python benchmarks/combine_finals.py runs/claims_pick_place docs/results/claims_pick_place/final_success.csv \
        --out docs/results/claims_pick_place
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from postbc.experiments.results import (eval_success, final_paired_table, final_successes, final_table,
                                        load_results)
from postbc.experiments.tables import write_table


def earlier_finals(path: Path) -> tuple[dict[str, dict[tuple, dict[int, float]]], int | None]:
    """actor -> (task, demos, algo, method) -> seed -> success, from a report's final_success.csv; its episodes."""
    finals: dict[str, dict[tuple, dict[int, float]]] = defaultdict(dict)
    episodes = None
    with open(path) as f:
        for row in csv.DictReader(f):
            key = (row["task"], int(row["demos"]), row["algo"], row["method"])
            finals[row["actor"]][key] = {int(item.split(":")[0][1:]): float(item.split(":")[1])
                                         for item in row["per_seed"].split()}
            episodes = int(row["episodes"]) if row["episodes"] else episodes
    return finals, episodes


def merge(earlier: dict, later: dict) -> tuple[dict, list[str]]:
    """The union of both (earlier values win); and a line per (run, seed) both hold."""
    merged: dict = {actor: {key: dict(seeds) for key, seeds in by_run.items()} for actor, by_run in earlier.items()}
    replicates = []
    for actor, by_run in later.items():
        for key, seeds in by_run.items():
            into = merged.setdefault(actor, {}).setdefault(key, {})
            for seed, value in seeds.items():
                if seed in into:
                    replicates.append(f"{actor} {' '.join(map(str, key))} s{seed}: earlier {into[seed]:.3f}, "
                                      f"this sweep {value:.3f}")
                else:
                    into[seed] = value
    return merged, replicates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="sweep directory: pretrained evaluations (every seed) and newer finals")
    ap.add_argument("earlier", type=Path, help="an earlier report's final_success.csv")
    ap.add_argument("--out", type=Path, required=True, help="where final_success.* and final_paired_differences.* go")
    args = ap.parse_args()
    results = load_results(args.sweep)
    earlier, episodes = earlier_finals(args.earlier)
    merged, replicates = merge(earlier, final_successes(results))
    pretrained = eval_success(results, "eval")
    write_table(final_table(pretrained, merged, episodes), args.out / "final_success")
    write_table(final_paired_table(pretrained, merged), args.out / "final_paired_differences")
    for line in replicates:
        print("replicate (earlier kept):", line)
    print(f"wrote {args.out / 'final_success.md'} and {args.out / 'final_paired_differences.md'}")


if __name__ == "__main__":
    main()
