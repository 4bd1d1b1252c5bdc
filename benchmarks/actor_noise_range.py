"""Does a finished DSRL run's actor steer the frozen policy with noise it was trained on? Per run of a sweep.

The diffusion policy was trained to decode w ~ N(0, I); DSRL's actor may choose any w in [-m, m]^d. An actor that
drives the noise far from the sampler's range (coordinates at the bound, norms well above sqrt(d)) decodes actions
the policy never learned, one way a finetuned actor can lose what its sampler solved. For each finished DSRL run
under SWEEP/finetune, over its replay's observations: the mean norm of the actor's deterministic noise (N(0, I)'s is
about sqrt(d)), the share of its coordinates within 5% of the bound m, and the same for its warm-up noise (N(0, I)
clipped to [-m, m], stored in the replay's first transitions). Example:

    python benchmarks/actor_noise_range.py runs/claims_can
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from postbc.experiments import record
from postbc.finetune.critic_returns import load_dsrl_run


def noise_stats(w: torch.Tensor, magnitude: float) -> tuple[float, float]:
    """(mean norm, share of coordinates with |w_i| > 0.95 m)."""
    return float(w.norm(dim=1).mean()), float((w.abs() > 0.95 * magnitude).float().mean())


@torch.no_grad()
def run_line(run: Path) -> str:
    torch.manual_seed(0)
    cfg, base, algo, _meta = load_dsrl_run(run)
    if not hasattr(algo, "sac"):
        return f"| {run.name} | not a DSRL-SAC run | | |"
    data = algo.replay.all()
    obs = data["obs"]
    keep = torch.randperm(len(obs))[:5000]
    w = algo.sac.actor.act(algo.scale_obs(obs[keep]), deterministic=True)
    m = cfg.sac.action_magnitude
    warmup = data["action"][: cfg.sac.warmup_steps // (cfg.num_envs * base.chunk) * cfg.num_envs]
    norm, bound = noise_stats(w, m)
    warm_norm, warm_bound = noise_stats(warmup, m)
    return f"| {run.name} | {w.shape[1]} | {norm:.2f} ({warm_norm:.2f}) | {bound:.3f} ({warm_bound:.3f}) |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    args = ap.parse_args()
    print("| run | noise dim d | actor's mean norm (warm-up's) | share of coordinates at the bound (warm-up's) |")
    print("|---|---|---|---|")
    for run in sorted((args.sweep / "finetune").glob("*")):
        if not (run / "DONE.json").exists() or "dsrl" not in run.name:
            continue
        if record.missing(run):
            print(f"| {run.name} | restored from a sweep record, which keeps no replay: not measured here | | |")
        else:
            print(run_line(run), flush=True)


if __name__ == "__main__":
    main()
