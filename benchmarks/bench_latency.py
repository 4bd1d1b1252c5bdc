"""Policy action latency: one `PretrainedPolicy.act` call (DDIM, 8 steps) at batch 1 and 4.

The policy has the paper's Lift shape (3x512 MLP denoiser, chunk 4, 7-D actions, 19-D
observations) with random weights: latency does not depend on the weights. `act` includes
normalizing the observation, the DDIM loop and unnormalizing the actions; `sample_ddim` alone
is shown beside it.

    python benchmarks/bench_latency.py [--hidden 512] [--steps 8] [--calls 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from postbc.data import MinMaxNormalizer
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy


def percentiles(fn, calls: int) -> tuple[float, float]:
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), 1e3 * float(np.percentile(times, 90))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--obs-dim", type=int, default=19)
    p.add_argument("--act-dim", type=int, default=7)
    p.add_argument("--chunk", type=int, default=4)
    p.add_argument("--steps", type=int, default=8, help="DDIM steps")
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()

    torch.manual_seed(0)
    cfg = DiffusionConfig(obs_dim=args.obs_dim, act_dim=args.act_dim, chunk=args.chunk, hidden=args.hidden,
                          layers=args.layers, inference_steps=args.steps)
    policy = PretrainedPolicy(
        DiffusionPolicy(cfg), MinMaxNormalizer(-np.ones(args.obs_dim), np.ones(args.obs_dim)),
        MinMaxNormalizer(-np.ones(args.act_dim), np.ones(args.act_dim)), ("obs",), (args.obs_dim,), {},
    )
    threads_default = torch.get_num_threads()
    print(f"policy action latency: DDIM {args.steps} steps, {args.layers}x{args.hidden} MLP, chunk {args.chunk} x "
          f"{args.act_dim}, obs {args.obs_dim}; median and p90 of {args.calls} calls")
    print(f"{'threads':>7} {'batch':>5} {'act ms':>8} {'act p90':>8} {'sample_ddim ms':>15}")
    rng = np.random.default_rng(0)
    for threads in sorted({1, threads_default}):
        torch.set_num_threads(threads)
        for batch in (1, 4):
            obs = rng.uniform(-1, 1, (batch, args.obs_dim)).astype(np.float32)
            noise = rng.standard_normal((batch, args.chunk, args.act_dim)).astype(np.float32)
            act_med, act_p90 = percentiles(lambda: policy.act(obs, noise=noise), args.calls)
            obs_t, noise_t = torch.from_numpy(obs), torch.from_numpy(noise)
            with torch.inference_mode():
                ddim_med, _ = percentiles(lambda: policy.model.sample_ddim(obs_t, noise_t), args.calls)
            print(f"{threads:>7} {batch:>5} {act_med:>8.2f} {act_p90:>8.2f} {ddim_med:>15.2f}")
    torch.set_num_threads(threads_default)


if __name__ == "__main__":
    main()
