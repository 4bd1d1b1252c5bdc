"""Does a DSRL run gain where its critic ranks the noise well? Across one or more sweeps with final evaluations.

For every finished DSRL / DSRL-NA run with a final evaluation, joins the report's critic-vs-returns row
(`postbc.experiments.critic_vs_returns`) with the run's gain over its pretrained sampler on the same episodes
(the final evaluation's first episodes are the pretrained evaluation's), prints the per-sweep means and the
correlation across all runs of the critic's `corr` and of `unsolved_after_success` with the gain. Example:

    python benchmarks/critic_rank_vs_gain.py runs/claims_assembly runs/claims_pick_place runs/claims_lift
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from postbc.experiments.critic_vs_returns import critic_rows
from postbc.experiments.results import FINAL_ACTORS, eval_success, load_results


def joined_rows(sweep: Path, actor: str) -> list[dict]:
    results = load_results(sweep)
    pretrained, final = eval_success(results, "eval"), eval_success(results, "final", FINAL_ACTORS[actor])
    rows = []
    for row in critic_rows(results):
        task, demos, algo, method, seed = (row[k] for k in ("task", "demos", "algo", "method", "seed"))
        start, end = pretrained.get((task, demos, method), {}), final.get((task, demos, algo, method), {})
        if not row["note"] and seed in start and seed in end:
            rows.append({**row, "gain": end[seed] - start[seed]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", type=Path, nargs="+")
    ap.add_argument("--actor", choices=sorted(FINAL_ACTORS), default="stochastic",
                    help="whose final evaluation is the gain (stochastic: what the DSRL reference evaluates)")
    args = ap.parse_args()
    every = []
    print("| sweep | runs | corr(q_data, mc): mean [range] | overestimate | unsolved after success | gain |")
    print("|---|---|---|---|---|---|")
    for sweep in args.sweeps:
        rows = joined_rows(sweep, args.actor)
        every += rows
        if not rows:
            print(f"| {sweep} | 0 | | | | |")
            continue
        corr = np.array([r["corr"] for r in rows])
        mean = lambda k: np.mean([r[k] for r in rows])  # noqa: E731
        print(f"| {sweep} | {len(rows)} | {corr.mean():.2f} [{corr.min():.2f}, {corr.max():.2f}] | "
              f"{mean('overestimate'):+.0f} | {mean('unsolved_after_success'):.2f} | {mean('gain'):+.3f} |")
    if len(every) > 2:
        gain = np.array([r["gain"] for r in every])
        for key in ("corr", "unsolved_after_success"):
            values = np.array([r[key] for r in every])
            print(f"across the {len(every)} runs: correlation of {key} with the gain {np.corrcoef(values, gain)[0, 1]:+.2f}")


if __name__ == "__main__":
    main()
