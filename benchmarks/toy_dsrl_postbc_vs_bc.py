"""DSRL-SAC on the toy task from BC vs PostBC checkpoints trained on the same 5 demos, several seeds.

    python benchmarks/toy_dsrl_postbc_vs_bc.py --work /tmp/toy_cmp --seeds 0 1 2
Writes WORK/curves.png (mean eval success with a 95% interval across seeds, per method) and prints
for each run the first env step at which eval success reaches --threshold.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np


def sh(*args: str) -> None:
    subprocess.run(["postbc", *args], check=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, default=Path("/tmp/toy_cmp"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--threshold", type=float, default=0.7)
    p.add_argument("--figure", type=Path, default=None)
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    demos = a.work / "demos.hdf5"
    if not demos.exists():
        sh("collect", "--task", "toy", "--episodes", "5", "--out", str(demos), "--seed", "0", "--quiet")
    from postbc.io.runs import read_metrics
    from postbc.stats import mean_interval

    curves: dict[str, list] = {}
    for method in ("bc", "postbc"):
        for seed in a.seeds:
            pre, ft = a.work / f"{method}_{seed}", a.work / f"ft_{method}_{seed}"
            extra = ["--ensemble-size", "8", "--ensemble-epochs", "100"] if method == "postbc" else []
            sh("pretrain", "--method", method, "--dataset", str(demos), "--out", str(pre), "--seed", str(seed), "--chunk", "4",
               "--hidden", "128", "--epochs", "100", "--threads", "1", "--quiet", *extra)
            sh("finetune", "--algo", "dsrl", "--checkpoint", str(pre), "--task", "toy", "--out", str(ft), "--seed", str(seed),
               "--steps", str(a.steps), "--eval-every", "1000", "--eval-episodes", "20", "--env-backend", "sync",
               "--sac.hidden", "128", "--sac.warmup-steps", "500", "--quiet")
            rows = read_metrics(ft)
            x = np.array([float(r["env_steps"]) for r in rows])
            y = np.array([float(r["eval_success"]) for r in rows])
            hit = x[np.flatnonzero(y >= a.threshold)]
            print(f"{method} seed {seed}: success {' '.join(f'{v:.2f}' for v in y)}; first >= {a.threshold}: "
                  f"{int(hit[0]) if len(hit) else 'never'}")
            curves.setdefault(method, []).append((np.round(x / 1000) * 1000, y))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, runs in curves.items():
        n = min(len(r[1]) for r in runs)
        ys = np.stack([r[1][:n] for r in runs])
        stats = np.array([mean_interval(ys[:, j]) for j in range(n)])
        xs = runs[0][0][:n]
        ax.plot(xs, stats[:, 0], label=f"{method} ({len(runs)} seeds)")
        ax.fill_between(xs, stats[:, 1], stats[:, 2], alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success (20 episodes)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("DSRL-SAC on toy from 5 demos")
    fig.tight_layout()
    out = a.figure or a.work / "curves.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
