"""Pretraining wall time of bc, sigma_bc and postbc on the same toy demos with the same epochs.

Each method runs `postbc pretrain` (in-process) into a fresh run directory. The table splits
PostBC's time into its stages: the ensemble (K members, `--ensemble-epochs`), and the diffusion
policy, which is the same trainer as BC's with the posterior target noise added to each batch.

Defaults are `postbc pretrain`'s CPU defaults (policy 3x256, 1000 epochs; ensemble K = 100 x 3x64,
300 epochs); `--paper-width` makes the members as wide as the policy (the paper's setting).

    python benchmarks/bench_pretrain.py [--demos 20] [--epochs 1000] [--ensemble-epochs 300] [--paper-width]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from postbc.data import DemoDataset
from postbc.experts.collect import collect
from postbc.io.runs import read_metrics
from postbc.pretrain.command import PretrainConfig, run

METHODS = ("bc", "sigma_bc", "postbc")


def last_wall_time(metrics_dir: Path) -> float:
    rows = read_metrics(metrics_dir)
    return float(rows[-1]["wall_time"]) if rows else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demos", type=int, default=20)
    defaults = PretrainConfig(method="bc", dataset=Path("-"), out=Path("-"))
    p.add_argument("--epochs", type=int, default=defaults.epochs, help="policy epochs, the same for every method")
    p.add_argument("--ensemble-epochs", type=int, default=defaults.ensemble_epochs)
    p.add_argument("--ensemble-size", type=int, default=defaults.ensemble_size)
    p.add_argument("--ensemble-hidden", type=int, default=defaults.ensemble_hidden)
    p.add_argument("--paper-width", action="store_true", help="ensemble members as wide as the policy (--hidden)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--hidden", type=int, default=defaults.hidden)
    p.add_argument("--chunk", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--repeats", type=int, default=3, help="runs per method, interleaved (median reported)")
    args = p.parse_args()
    ensemble_epochs = args.ensemble_epochs
    if args.paper_width:
        args.ensemble_hidden = args.hidden
    methods = [m for m in METHODS if m in args.methods]
    if methods[0] != "bc":
        p.error("--methods must include bc (the reference)")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "toy.hdf5"
        result = collect("toy", args.demos, data, seed=0, quiet=True)
        samples = DemoDataset.load(data).num_samples
        # Warm-up: imports and first-call costs would otherwise be charged to whichever method runs first.
        run(PretrainConfig(method="postbc", dataset=data, out=root / "warmup", epochs=1, ensemble_size=2,
                           ensemble_epochs=1, threads=args.threads, quiet=True))
        times: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
        for repeat in range(args.repeats):  # round-robin, so load changes hit every method alike
            for method in methods:
                out = root / f"{method}_{repeat}"
                cfg = PretrainConfig(
                    method=method, dataset=data, out=out, chunk=args.chunk, hidden=args.hidden, epochs=args.epochs,
                    ensemble_size=args.ensemble_size, ensemble_epochs=ensemble_epochs, ensemble_hidden=args.ensemble_hidden,
                    checkpoint_every=max(args.epochs, ensemble_epochs), threads=args.threads, quiet=True,
                )
                start = time.perf_counter()
                run(cfg)
                total = time.perf_counter() - start
                times[method].append((last_wall_time(out / "ensemble_log"), last_wall_time(out), total))
        rows = [(m, *np.median(np.array(times[m]), axis=0)) for m in methods]

    print(f"pretraining wall time: toy, {result.demos} demos ({samples} samples), chunk {args.chunk}, policy 3x{args.hidden}, "
          f"{args.epochs} policy epochs; postbc ensemble K={args.ensemble_size} x 3x{args.ensemble_hidden}, "
          f"{ensemble_epochs} epochs; {torch.get_num_threads()} threads; median of {args.repeats} interleaved runs")
    bc_policy, bc_total = rows[0][2], rows[0][3]
    print(f"{'method':<9} {'ensemble s':>11} {'policy s':>9} {'total s':>8} {'policy vs bc':>13} {'total vs bc':>12}")
    for method, ensemble, policy, total in rows:
        print(f"{method:<9} {ensemble:>11.1f} {policy:>9.1f} {total:>8.1f} {policy / bc_policy:>12.2f}x {total / bc_total:>11.2f}x")


if __name__ == "__main__":
    main()
