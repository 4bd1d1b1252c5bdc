"""How much a noise policy could gain over a pretrained sampler: K independent draws on the same episodes.

DSRL can only choose the noise the frozen policy decodes. Every episode (the same initial state:
the same env seed) is run K times with independent N(0, I) noise. An episode that some draws solve
and others do not has headroom that choosing the noise can reach; one that no draw solves may be
out of the policy's reach (BC's collapse onto the few demonstrated actions). The fraction solved by
at least one draw is a rough ceiling for what steering the noise gains quickly (a state-dependent
noise policy can still do better than any single open-loop draw).

    python benchmarks/noise_headroom.py --checkpoint runs/dev/lift_bc --task lift --episodes 100 --draws 8
"""

from __future__ import annotations

import argparse
import json

import numpy as np


class OwnNoise:
    """The pretrained policy with N(0, I) noise from its own generator (not evaluation's per-episode seeds)."""

    takes_noise = False

    def __init__(self, policy, seed: int):
        self.policy, self.rng = policy, np.random.default_rng(seed)
        self.chunk, self.act_dim, self.obs_keys = policy.chunk, policy.act_dim, policy.obs_keys

    def act(self, obs):
        noise = self.rng.standard_normal((len(obs), self.chunk, self.act_dim)).astype(np.float32)
        return self.policy.act(obs, noise=noise)


def main() -> None:
    from postbc.envs.conditioning import spec_for_policy
    from postbc.envs.registry import get_task
    from postbc.evaluation.episodes import evaluate
    from postbc.policies.pretrained import PretrainedPolicy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--task", required=True)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--seed", type=int, default=12345, help="episode seeds (the same for every draw)")
    ap.add_argument("--num-envs", type=int, default=2)
    ap.add_argument("--out", help="write the per-episode success matrix as JSON here")
    args = ap.parse_args()

    policy = PretrainedPolicy.load(args.checkpoint)
    spec = spec_for_policy(get_task(args.task), policy)
    solved = np.zeros((args.draws, args.episodes), bool)
    for k in range(args.draws):
        res = evaluate(OwnNoise(policy, 1000 + k), spec, args.episodes, seed=args.seed, num_envs=args.num_envs, quiet=True)
        solved[k] = np.asarray(res.episode_success, bool)
        print(f"draw {k}: success {solved[k].mean():.3f}", flush=True)
    per_episode = solved.sum(0)
    counts = np.bincount(per_episode, minlength=args.draws + 1)
    print(f"mean success over draws: {solved.mean():.3f}")
    print(f"episodes solved by at least one of {args.draws} draws: {(per_episode > 0).mean():.3f}; by all: "
          f"{(per_episode == args.draws).mean():.3f}; by none: {(per_episode == 0).mean():.3f}")
    print("episodes by number of solving draws: " + ", ".join(f"{i}: {c}" for i, c in enumerate(counts)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "task": args.task, "seed": args.seed,
                       "solved": solved.astype(int).tolist()}, f)


if __name__ == "__main__":
    main()
