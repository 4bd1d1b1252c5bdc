"""Action spread of pretrained policies at the scarcest and densest demo states, per seed.

The states are those where a PostBC run's ensemble posterior is widest / narrowest (as in the
report's action-density plots); the spread is `postbc.evaluation.diagnostics.action_spread` of the first
action (root of the mean per-dimension variance over `--samples` draws), averaged over the states.
Run paths may contain `{seed}`. Example (docs/results/can.md):

    python benchmarks/coverage_spread.py --posterior runs/baseline_can/pretrain/can-d10-postbc-s{seed} \
        --run bc=runs/baseline_can/pretrain/can-d10-bc-s{seed} \
        --run postbc_alpha1=runs/baseline_can/pretrain/can-d10-postbc-s{seed} \
        --run postbc_alpha0.5=runs/can_alpha05/pretrain/can-d10-postbc-s{seed}
"""

from __future__ import annotations

import argparse

import numpy as np

from postbc.evaluation.diagnostics import action_spread, sample_actions
from postbc.experiments.coverage import chosen_states, ensemble_std_per_state, load_run_dataset
from postbc.policies.pretrained import PretrainedPolicy


def spreads(posterior_run: str, runs: dict[str, str], states: int, samples: int) -> dict[str, dict[str, float]]:
    """{run name: {"scarce": spread, "dense": spread}} on the dataset of `posterior_run`."""
    data = load_run_dataset(posterior_run)
    chosen: dict[str, list[int]] = {}
    for label, i in chosen_states(ensemble_std_per_state(posterior_run), states):  # the report's choice
        chosen.setdefault(label, []).append(i)
    out = {}
    for name, run in runs.items():
        policy = PretrainedPolicy.load(run)
        out[name] = {label: float(action_spread(sample_actions(policy, data.obs[idx], samples, seed=0)).mean())
                     for label, idx in chosen.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posterior", required=True, help="PostBC pretraining run whose ensemble std picks the states")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=RUN", help="a pretraining run to measure")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--states", type=int, default=20, help="scarcest and densest states, each")
    ap.add_argument("--samples", type=int, default=128, help="action draws per state")
    args = ap.parse_args()
    runs = dict(r.split("=", 1) for r in args.run)
    per_seed = {s: spreads(args.posterior.format(seed=s), {n: r.format(seed=s) for n, r in runs.items()},
                           args.states, args.samples) for s in args.seeds}
    print("| run | spread at scarce states (mean; per seed) | spread at dense states (mean; per seed) |")
    print("|---|---|---|")
    for name in runs:
        cells = []
        for label in ("scarce", "dense"):
            values = [per_seed[s][name][label] for s in args.seeds]
            cells.append(f"{np.mean(values):.3f}; " + ", ".join(f"{v:.3f}" for v in values))
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
