"""Env speed per task: steps/s of one env, of VectorEnv with 1, 2, 4 worker processes, and the
policy's share of rollout time.

    python benchmarks/bench_envs.py                       # all default tasks
    python benchmarks/bench_envs.py --tasks lift can --steps 600 --procs 1 2 4 --out bench.json

- `raw`: one env stepped in this process with uniform random actions (autoreset), the cost of
  the simulator plus our wrapper.
- `vecN`: VectorEnv with N async worker processes (`sync` for N=1), total env steps/s over all
  envs, random actions, chunk 1. On a machine with fewer free cores than N it cannot scale.
- `policy overhead`: `evaluate()` of an untrained diffusion policy of the paper's size for that
  task (hidden 512 lift / 1024 others, 3 layers, chunk 4, 8 DDIM steps) with 2 envs: time in
  `policy.act` as a fraction of time in env reset/step.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

DEFAULT_TASKS = ("toy", "lift", "can", "square", "mw-pick-place", "mw-assembly", "mw-door-open", "mw-drawer-open")
PAPER_HIDDEN = {"lift": 512}  # others 1024


def raw_steps_per_s(task: str, steps: int) -> float:
    from postbc.envs.registry import make_env

    env = make_env(task)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        if term or trunc:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def vector_steps_per_s(task: str, procs: int, steps: int) -> float:
    from postbc.envs.vector import VectorEnv

    backend = "sync" if procs == 1 else "async"
    with VectorEnv(task, procs, seed=0, backend=backend) as vec:
        rng = np.random.default_rng(0)
        vec.reset()
        n = max(1, steps // procs)
        t0 = time.perf_counter()
        for _ in range(n):
            vec.step(rng.uniform(-1, 1, (procs, vec.spec.act_dim)).astype(np.float32))
        return n * procs / (time.perf_counter() - t0)


def policy_overhead(task: str, episodes: int) -> dict[str, float]:
    from postbc.data.normalizer import MinMaxNormalizer
    from postbc.envs.registry import get_task
    from postbc.evaluation.episodes import evaluate
    from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
    from postbc.policies.pretrained import PretrainedPolicy

    spec = get_task(task)
    cfg = DiffusionConfig(obs_dim=spec.obs_dim, act_dim=spec.act_dim, chunk=4, hidden=PAPER_HIDDEN.get(task, 1024))
    policy = PretrainedPolicy(
        DiffusionPolicy(cfg),
        MinMaxNormalizer(-np.ones(spec.obs_dim), np.ones(spec.obs_dim)),
        MinMaxNormalizer(-np.ones(spec.act_dim), np.ones(spec.act_dim)),
        spec.obs_keys, spec.obs_dims, spec.env_args,
    )
    res = evaluate(policy, spec, episodes=episodes, seed=0, num_envs=2, quiet=True)
    return {"policy_overhead": res.policy_overhead, "eval_env_steps_per_s": res.env_steps_per_s,
            "policy_ms_per_call": 1000 * res.policy_time_s / max(1, res.env_steps / (2 * cfg.chunk))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    p.add_argument("--steps", type=int, default=1000, help="env steps per measurement (robosuite: ~15 s at 1000)")
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--policy-episodes", type=int, default=2, help="episodes for the policy-overhead run (0: skip)")
    p.add_argument("--out", help="also write the numbers as JSON")
    args = p.parse_args()

    rows = {}
    for task in args.tasks:
        row = {"raw": raw_steps_per_s(task, args.steps)}
        for n in args.procs:
            row[f"vec{n}"] = vector_steps_per_s(task, n, args.steps)
        if args.policy_episodes:
            row.update(policy_overhead(task, args.policy_episodes))
        rows[task] = row
        cells = "  ".join(f"{k} {v:8.1f}" if "overhead" not in k else f"{k} {v:6.1%}" for k, v in row.items())
        print(f"{task:16s} {cells}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
