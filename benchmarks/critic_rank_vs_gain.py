"""Does a DSRL run gain where its critic ranks the noise well? Across one or more sweeps with final evaluations.

For every finished DSRL / DSRL-NA run with a final evaluation, joins the report's critic-vs-returns row
(`postbc.experiments.critic_vs_returns`) with the run's gain over its pretrained sampler on the same episodes
(the final evaluation's first episodes are the pretrained evaluation's), prints the per-sweep means and the
correlation across all runs of the critic's `corr` and of `unsolved_after_success` with the gain. Example:

    python benchmarks/critic_rank_vs_gain.py runs/claims_assembly runs/claims_pick_place runs/claims_lift
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from postbc.experiments.critic_vs_returns import critic_rows
from postbc.experiments.eval_pretrained import ACTOR_OUTPUTS
from postbc.experiments.plan import finetune_name, policy_name
from postbc.experiments.results import load_results


def success(path: Path) -> float:
    return json.loads(path.read_text())["success_rate"] if path.exists() else float("nan")


def joined_rows(sweep: Path, actor: str) -> list[dict]:
    results = load_results(sweep)
    rows = []
    for row in critic_rows(results):
        if row["note"]:
            continue
        final = sweep / "final" / finetune_name(row["task"], row["demos"], row["method"], row["algo"], row["seed"])
        pretrained = sweep / "eval" / policy_name(row["task"], row["demos"], row["method"], row["seed"])
        gain = success(final / ACTOR_OUTPUTS[actor][1]) - success(pretrained / "eval.json")
        if np.isfinite(gain):
            rows.append({**row, "gain": gain})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweeps", type=Path, nargs="+")
    ap.add_argument("--actor", choices=sorted(ACTOR_OUTPUTS), default="stochastic",
                    help="whose final evaluation is the gain (stochastic: what the DSRL reference evaluates)")
    args = ap.parse_args()
    import torch

    torch.manual_seed(0)
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
