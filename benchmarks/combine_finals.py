"""One algorithm's final-evaluation tables over seeds that finished in different run directories (one of them lost
with its machine).

An earlier report's `final_success.csv` keeps every finished run's final success per seed (its `per_seed` column);
the pretrained success of the policies those runs started from is given per seed in a CSV (task, demos, method,
seed, success), since a new machine need not pretrain the same policy (PostBC's did not, on 2026-12-03). This script
takes those runs, adds the sweep directory's finished runs of the same algorithm for the seeds the earlier report
lacks (with the sweep's own pretrained evaluations), and writes the report's two final tables for the union
(`final_success_ALGO`, `final_paired_differences_ALGO`). Where both hold a (method, seed), the earlier run is used
and the pair is printed (a replicate: same seed, another machine). It also prints the seeds whose pretrained success
the sweep did not reproduce. Example:

    python benchmarks/combine_finals.py runs/claims_pick_place docs/results/claims_pick_place/final_success.csv \
        docs/results/claims_pick_place/pretrained_per_seed_earlier.csv --algo dppo --out docs/results/claims_pick_place
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from postbc.experiments.results import (eval_success, final_paired_table, final_successes, final_table,
                                        load_results)
from postbc.experiments.tables import write_table


def earlier_finals(path: Path, algo: str) -> tuple[dict[str, dict[tuple, dict[int, float]]], int | None]:
    """actor -> (task, demos, algo, method) -> seed -> success for `algo`, from a report's final_success.csv."""
    finals: dict[str, dict[tuple, dict[int, float]]] = {}
    episodes = None
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["algo"] != algo:
                continue
            key = (row["task"], int(row["demos"]), row["algo"], row["method"])
            finals.setdefault(row["actor"], {})[key] = {
                int(item.split(":")[0][1:]): float(item.split(":")[1]) for item in row["per_seed"].split()}
            episodes = int(row["episodes"]) if row["episodes"] else episodes
    return finals, episodes


def per_seed_csv(path: Path) -> dict[tuple, dict[int, float]]:
    out: dict[tuple, dict[int, float]] = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            out.setdefault((row["task"], int(row["demos"]), row["method"]), {})[int(row["seed"])] = float(row["success"])
    return out


def combine(earlier: dict, earlier_start: dict, later: dict, later_start: dict):
    """(finals, pretrained, replicate lines): each (method, seed) from the earlier runs where they have it, else from
    the sweep, with the pretrained success of the policy that run started from."""
    finals = {actor: {key: dict(seeds) for key, seeds in by_run.items()} for actor, by_run in earlier.items()}
    start: dict[tuple, dict[int, float]] = {}
    for by_run in earlier.values():
        for (task, demos, _, method), seeds in by_run.items():
            start.setdefault((task, demos, method), {}).update(
                {s: earlier_start[(task, demos, method)][s] for s in seeds})
    replicates = []
    for actor, by_run in later.items():
        for key, seeds in by_run.items():
            task, demos, _, method = key
            into = finals.setdefault(actor, {}).setdefault(key, {})
            for seed, value in seeds.items():
                if seed in into:
                    replicates.append(f"{actor} {method} s{seed}: earlier {into[seed]:.3f} (pretrained "
                                      f"{earlier_start[(task, demos, method)][seed]:.2f}), this sweep {value:.3f} "
                                      f"(pretrained {later_start[(task, demos, method)][seed]:.2f})")
                else:
                    into[seed] = value
                    start.setdefault((task, demos, method), {})[seed] = later_start[(task, demos, method)][seed]
    return finals, start, replicates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path, help="sweep directory: the newer runs and their pretrained evaluations")
    ap.add_argument("earlier", type=Path, help="an earlier report's final_success.csv")
    ap.add_argument("earlier_pretrained", type=Path, help="CSV task,demos,method,seed,success of the earlier policies")
    ap.add_argument("--algo", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    results = load_results(args.sweep)
    earlier, episodes = earlier_finals(args.earlier, args.algo)
    earlier_start, later_start = per_seed_csv(args.earlier_pretrained), eval_success(results, "eval")
    later = {actor: {k: v for k, v in by_run.items() if k[2] == args.algo}
             for actor, by_run in final_successes(results).items()}
    finals, start, replicates = combine(earlier, earlier_start, later, later_start)
    write_table(final_table(start, finals, episodes), args.out / f"final_success_{args.algo}")
    write_table(final_paired_table(start, finals), args.out / f"final_paired_differences_{args.algo}")
    for line in replicates:
        print("replicate (earlier kept):", line)
    for key, seeds in sorted(earlier_start.items()):
        now = later_start.get(key, {})
        differ = [f"s{s}: {v:.2f} -> {now[s]:.2f}" for s, v in sorted(seeds.items()) if s in now and abs(now[s] - v) > 1e-9]
        if differ:
            print(f"pretrained success not reproduced by the sweep, {' '.join(map(str, key))}: {', '.join(differ)}")
    print(f"wrote {args.out}/final_success_{args.algo}.md and final_paired_differences_{args.algo}.md")


if __name__ == "__main__":
    main()
