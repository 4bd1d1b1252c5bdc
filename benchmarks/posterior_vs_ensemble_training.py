"""How PostBC's posterior std depends on how long (and how wide) its ensemble is trained.

Refits a PostBC pretraining run's ensemble on the run's own demos, with the run's own bootstrap
resamples and initialisation (the same seeds, through `posterior_target_noise`), and reads the
posterior at each `--epochs` milestone (one fit, resumed from milestone to milestone). At the run's own
width and ensemble epochs the refit must reproduce the run's saved posterior: the script prints the
largest difference as a check. Per milestone: the per-sample posterior std (root of the mean
per-coordinate variance over the flattened chunk, normalized action units) as mean and 10/50/90th
percentiles, and the ratio of the top to the bottom decile (the contrast between scarce and dense
states). Example (docs/pretraining.md, "Ensemble epochs on the robot tasks"):

    python benchmarks/posterior_vs_ensemble_training.py --run runs/claims_pick_place/pretrain/mw-pick-place-d10-postbc-s0 \
        --epochs 300 1000 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from postbc.experiments.coverage import load_run_dataset
from postbc.io.checkpoint import load_checkpoint
from postbc.pretrain.command import PretrainConfig, dataset_identity, posterior_target_noise, stream_seeds
from postbc.pretrain.posterior import PosteriorEstimate


def describe(std: np.ndarray) -> dict[str, float]:
    q10, q50, q90 = np.quantile(std, [0.1, 0.5, 0.9])
    top, bottom = np.sort(std)[-max(1, len(std) // 10):], np.sort(std)[:max(1, len(std) // 10)]
    return {"mean": float(std.mean()), "q10": float(q10), "q50": float(q50), "q90": float(q90),
            "top_over_bottom_decile": float(top.mean() / bottom.mean())}


def refit(run: Path, milestones: list[int], hidden: int | None, work: Path) -> list[dict]:
    saved = json.loads((run / "config.json").read_text())["config"]
    fields = {f.name for f in dataclasses.fields(PretrainConfig)}
    cfg = PretrainConfig(**{k: v for k, v in saved.items() if k in fields})
    cfg = dataclasses.replace(cfg, out=work, quiet=True, ensemble_hidden=hidden or cfg.ensemble_hidden)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dataset = load_run_dataset(run)
    identity, seeds = dataset_identity(dataset), stream_seeds(cfg.seed)
    obs = torch.from_numpy(dataset.normalized_obs())
    chunks = torch.from_numpy(dataset.action_chunks(cfg.chunk))
    own_schedule = (saved["ensemble_epochs"], saved["ensemble_hidden"])
    rows = []
    for epochs in sorted(milestones):
        for stem in ("posterior", "ensemble"):  # keep the resumable checkpoint, drop the finished artefacts
            for path in work.glob(f"{stem}.*"):
                path.unlink()
        start = time.perf_counter()
        posterior = posterior_target_noise(dataclasses.replace(cfg, ensemble_epochs=epochs), dataset, obs, chunks,
                                           identity, seeds).posterior
        row = {"epochs": epochs, "hidden": cfg.ensemble_hidden, "fit_s": time.perf_counter() - start,
               **describe(posterior.std_per_sample().numpy())}
        if (epochs, cfg.ensemble_hidden) == own_schedule:
            tensors, meta = load_checkpoint(run / "posterior")
            reference = PosteriorEstimate.from_tensors(tensors, meta["kind"])
            row["max_diff_to_run"] = float((posterior.covariance() - reference.covariance()).abs().max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a finished PostBC pretraining run directory")
    ap.add_argument("--epochs", type=int, nargs="+", default=[300, 1000, 3000], help="ensemble epochs to read it at")
    ap.add_argument("--hidden", type=int, default=None, help="member width (default: the run's)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="posterior_training_"))
    try:
        rows = refit(args.run, args.epochs, args.hidden, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| ensemble epochs | width | fit s (cumulative) | std mean | q10 / q50 / q90 | top / bottom decile |")
    print("|---|---|---|---|---|---|")
    total = 0.0
    for r in rows:
        total += r["fit_s"]
        print(f"| {r['epochs']} | {r['hidden']} | {total:.0f} | {r['mean']:.3f} | {r['q10']:.3f} / {r['q50']:.3f} / "
              f"{r['q90']:.3f} | {r['top_over_bottom_decile']:.2f} |")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
