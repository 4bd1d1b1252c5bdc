"""Whole-run DSRL speed against raw env speed, side by side in one process tree.

    python benchmarks/bench_dsrl_speed.py --checkpoint runs/dev/lift_bc --task lift --utd 20 --hidden 256
    python benchmarks/bench_dsrl_speed.py --checkpoint PUSH_BC --task mw-push --utd 20 --backend sync

- `raw`: the same VectorEnv (same envs, chunk, backend) stepped with uniform random action chunks.
- `dsrl`: DSRL-SAC's training loop on that VectorEnv after a replay of `--batch-size` chunks is
  filled (warm-up excluded): act (DDIM from the actor's noise), step, store, `--utd` updates per
  vector step, exactly as `postbc.finetune.loop.Trainer` does (including learning while the env
  worker processes step), without evaluations.
Prints env steps/s of both and their ratio, and the time per update.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="pretraining run directory")
    ap.add_argument("--task", required=True)
    ap.add_argument("--num-envs", type=int, default=2)
    ap.add_argument("--backend", default="async", choices=("async", "sync"))
    ap.add_argument("--utd", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--vector-steps", type=int, default=100, help="vector steps timed for each of raw and dsrl")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from postbc.envs.registry import get_task
    from postbc.finetune.base import load_base_policy
    from postbc.finetune.config import SACConfig
    from postbc.finetune.dsrl import DSRL
    from postbc.finetune.chunk_env import ChunkEnv

    spec = get_task(args.task)
    base = load_base_policy(args.checkpoint, spec)
    sac = SACConfig(hidden=args.hidden, utd=args.utd, batch_size=args.batch_size, warmup_steps=0)
    algo = DSRL(sac, base, spec.obs_dim, seed=0)
    env = ChunkEnv(spec, args.num_envs, base.chunk, seed=0, reward=algo.reward_kind, backend=args.backend,
                   episode_end=algo.episode_end)
    rng = np.random.default_rng(0)
    try:
        t0, steps = time.perf_counter(), 0
        for _ in range(args.vector_steps):
            res = env.step(rng.uniform(-1, 1, (args.num_envs, base.chunk, base.act_dim)).astype(np.float32))
            steps += int(res.steps.sum())
        raw = steps / (time.perf_counter() - t0)
        while len(algo.replay) < args.batch_size:  # fill the replay (not timed)
            algo.observe(env.step(algo.act(env.obs, 0)))
        overlap = env.vec.backend == "async"
        t0, steps, updates, update_time = time.perf_counter(), 0, 0, 0.0
        for _ in range(args.vector_steps):
            env.step_async(algo.act(env.obs, 10**9))
            if overlap:
                u0 = time.perf_counter()
                algo.update(10**9)
                update_time += time.perf_counter() - u0
            res = env.step_wait()
            algo.observe(res)
            if not overlap:
                u0 = time.perf_counter()
                algo.update(10**9)
                update_time += time.perf_counter() - u0
            steps += int(res.steps.sum())
            updates += args.utd
        dsrl = steps / (time.perf_counter() - t0)
    finally:
        env.close()
    print(f"{args.task}: {args.num_envs} envs ({env.vec.backend}), chunk {base.chunk}, SAC 3x{args.hidden}, utd {args.utd}, "
          f"batch {args.batch_size}")
    print(f"  raw env (random chunks): {raw:8.1f} env steps/s")
    print(f"  whole DSRL loop        : {dsrl:8.1f} env steps/s  ({dsrl / raw:.1%} of raw)")
    print(f"  per update             : {1000 * update_time / updates:8.2f} ms ({args.utd / (args.num_envs * base.chunk):.2f} "
          f"updates per env step)")


if __name__ == "__main__":
    main()
