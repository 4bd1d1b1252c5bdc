"""The pretrained policy decoded from w = 0, and what an untrained DSRL actor plays instead.

DSRL's evaluation at step 0 reports the untrained actor's deterministic noise m tanh(mu(s)). That is
not w = 0: a freshly initialized actor maps each state to its own fixed noise. This prints, on the
50-episode evaluation set a finetune run with each `--seed` uses (the same episodes as its
metrics.csv), the success of the frozen policy driven by w = 0; and the norms of a freshly initialized
actor's deterministic noise (the DSRL network shape, `--hidden` wide, torch seed 0: an example, not a
run's own actor) against N(0, I)'s.

    python benchmarks/zero_noise.py --checkpoint runs/dev/asm_bc --task mw-assembly --seeds 0 1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from postbc.envs.registry import get_task
from postbc.envs.vector import episode_seed
from postbc.evaluation.episodes import evaluate
from postbc.finetune.base import SteeredPolicy, load_base_policy
from postbc.finetune.config import SACConfig
from postbc.finetune.dsrl import noise_actor, standard_noise
from postbc.finetune.loop import EVAL_SEED_STREAM


def untrained_noise_norms(obs_dim: int, noise_dim: int, hidden: int, seed: int) -> torch.Tensor:
    """|w| of a fresh actor's deterministic noise over observations uniform in [-1, 1] (what the scaler gives)."""
    torch.manual_seed(seed)
    actor = noise_actor(SACConfig(hidden=hidden), obs_dim, noise_dim)
    return actor.act(torch.rand(2000, obs_dim) * 2 - 1, deterministic=True).norm(dim=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="finetune seeds whose evaluation episodes to use")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=128, help="the actor's width (the runs of dsrl_objective.md: 128)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    spec = get_task(args.task)
    base = load_base_policy(args.checkpoint, spec)
    dim = base.chunk * base.act_dim
    zero = SteeredPolicy(base, lambda obs: torch.zeros(len(obs), dim))
    sampled = standard_noise(2000, dim, SACConfig().action_magnitude, np.random.default_rng(0))
    norms = untrained_noise_norms(spec.obs_dim, dim, args.hidden, 0)
    print(f"{args.task}: noise of {dim} dimensions; N(0, I) clipped to [-1.5, 1.5] has mean norm "
          f"{float(sampled.norm(dim=1).mean()):.2f}; a fresh {args.hidden}-wide actor's deterministic noise "
          f"{float(norms.mean()):.2f} (5-95%: {float(norms.quantile(0.05)):.2f}-{float(norms.quantile(0.95)):.2f})")
    for seed in args.seeds:
        result = evaluate(zero, spec, args.episodes, seed=episode_seed(seed, 0, EVAL_SEED_STREAM), num_envs=2,
                          backend="sync", quiet=True)
        print(f"seed {seed}'s episodes: w = 0 succeeds {result.success_rate:.2f} "
              f"[{result.ci_low:.2f}, {result.ci_high:.2f}] over {args.episodes}", flush=True)


if __name__ == "__main__":
    main()
