"""DSRL on the line task with the horizon terminal (the reference) or a time limit (--sac.horizon-bootstrap).

The line task (`postbc.envs.testing`) with the `NoisePuppet` base (the chunk is tanh of the noise, so
the base policy is a random walk) and the settings of tests/finetune/test_training.py: 4 envs, 2 x 64
networks, utd 4, 200 warm-up env steps, 32-episode evaluations every 500 env steps. Its horizon is 16
steps (8 chunks): with a terminal horizon the value of a state depends mostly on how many chunks are
left, which the observation does not show. Prints each seed's curve of deterministic-actor success.
    python benchmarks/line_time_limit.py --seeds 0 1 2 3 4 5 6 7 8 9 10 11 --steps 3000
    python benchmarks/line_time_limit.py --algo dsrl_na --seeds 6 7 8 9 10 11 --steps 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import numpy as np

from postbc.envs.testing import NoisePuppet, fake_task_spec
from postbc.finetune.command import run
from postbc.finetune.config import FinetuneConfig, SACConfig
from postbc.io.runs import read_metrics

TEST_SAC = SACConfig(hidden=64, layers=2, activation="relu", batch_size=64, utd=4, warmup_steps=200,
                     init_alpha=0.05, lr=1e-3, replay_size=10_000)


def curve(algo: str, seed: int, steps: int, horizon_bootstrap: bool) -> list[float]:
    sac = dataclasses.replace(TEST_SAC, horizon_bootstrap=horizon_bootstrap)
    if algo == "dsrl_na":
        sac = dataclasses.replace(sac, utd=2, noise_critic_steps=2)
    with tempfile.TemporaryDirectory() as d:
        cfg = FinetuneConfig(checkpoint="puppet", task="line", out=f"{d}/run", algo=algo, steps=steps, seed=seed,
                             num_envs=4, eval_every=500, eval_episodes=32, env_backend="sync", quiet=True, sac=sac)
        run(cfg, base=NoisePuppet(), spec=fake_task_spec("line", horizon=16))
        return [float(r["eval_success"]) for r in read_metrics(cfg.out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="dsrl", choices=("dsrl", "dsrl_na"))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(6)))
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    for bootstrap in (False, True):
        finals = []
        print(f"horizon {'as a time limit (--sac.horizon-bootstrap)' if bootstrap else 'terminal (reference)'}:")
        for seed in args.seeds:
            c = curve(args.algo, seed, args.steps, bootstrap)
            finals.append(c[-1])
            print(f"  seed {seed:2d}: " + " ".join(f"{x:.2f}" for x in c), flush=True)
        print(f"  final success: mean {np.mean(finals):.2f}, seeds >= 0.9: {sum(f >= 0.9 for f in finals)} of {len(finals)}")


if __name__ == "__main__":
    main()
