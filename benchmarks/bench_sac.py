"""SAC gradient steps per second: our DSRL update vs Stable-Baselines3 SAC, side by side.

Same sizes for both (obs dim, action dim = chunk * act_dim, hidden widths, layers, activation,
batch, 2 critics, auto temperature), same replay contents (random), same thread count. Prints
both rates and the ratio. Run:
    python benchmarks/bench_sac.py                      # lift-like sizes: obs 19, w 4x7, 3x256, batch 256
    python benchmarks/bench_sac.py --hidden 2048         # the paper's width
Needs `pip install stable-baselines3` (not a dependency of postbc).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def bench_ours(args, steps: int) -> float:
    from postbc.finetune.replay import ReplayBuffer
    from postbc.finetune.sac import SAC

    sac = SAC(args.obs_dim, args.act_dim, hidden=args.hidden, layers=args.layers, activation="tanh", num_critics=2,
              action_scale=1.5, lr=3e-4, gamma=0.99, tau=0.005, target_entropy=0.0, init_alpha=1.0,
              precision=args.precision, layer_norm=args.layer_norm)
    buf = ReplayBuffer(args.buffer, {"obs": (args.obs_dim,), "action": (args.act_dim,), "reward": (),
                                     "next_obs": (args.obs_dim,), "done": ()})
    n = args.buffer
    buf.add(obs=torch.randn(n, args.obs_dim), action=torch.rand(n, args.act_dim) * 3 - 1.5, reward=-torch.rand(n),
            next_obs=torch.randn(n, args.obs_dim), done=(torch.rand(n) < 0.02).float())

    def run(k):
        for _ in range(k):
            sac.update(**buf.sample(args.batch))

    run(10)
    t = time.perf_counter()
    run(steps)
    return steps / (time.perf_counter() - t)


def bench_sb3(args, steps: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.logger import configure

    class Dummy(gym.Env):
        observation_space = gym.spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
        action_space = gym.spaces.Box(-1.5, 1.5, (args.act_dim,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(args.obs_dim, np.float32), {}

        def step(self, a):
            return np.zeros(args.obs_dim, np.float32), 0.0, False, False, {}

    model = SB3SAC("MlpPolicy", Dummy(), batch_size=args.batch, buffer_size=args.buffer, learning_starts=0,
                   ent_coef="auto", target_entropy=0.0, device="cpu", seed=0,
                   policy_kwargs=dict(net_arch=[args.hidden] * args.layers, activation_fn=torch.nn.Tanh, n_critics=2))
    model.set_logger(configure(None, []))
    rb = model.replay_buffer
    n = args.buffer
    rb.observations[:n, 0] = np.random.randn(n, args.obs_dim)
    rb.next_observations[:n, 0] = np.random.randn(n, args.obs_dim)
    rb.actions[:n, 0] = np.random.uniform(-1, 1, (n, args.act_dim))  # SB3 stores actions rescaled to [-1, 1]
    rb.rewards[:n, 0] = -np.random.rand(n)
    rb.dones[:n, 0] = np.random.rand(n) < 0.02
    rb.pos, rb.full = 0, True
    model.train(gradient_steps=10, batch_size=args.batch)
    t = time.perf_counter()
    model.train(gradient_steps=steps, batch_size=args.batch)
    return steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obs-dim", type=int, default=19)
    p.add_argument("--act-dim", type=int, default=28, help="noise dim = chunk * action dim (lift: 4 * 7)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--buffer", type=int, default=20_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="ours only; SB3 always runs fp32")
    p.add_argument("--layer-norm", action="store_true", help="ours only (the DSRL default; SB3's MlpPolicy has none)")
    p.add_argument("--no-sb3", action="store_true", help="time ours only (SB3 not installed)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ours, sb3 = [], []
    for _ in range(args.repeats):  # interleaved so both see the same machine load
        ours.append(bench_ours(args, args.steps))
        if not args.no_sb3:
            sb3.append(bench_sb3(args, args.steps))
    o = statistics.median(ours)
    print(f"sizes: obs {args.obs_dim}, action {args.act_dim}, {args.layers}x{args.hidden} tanh, batch {args.batch}, "
          f"2 critics, {args.threads} thread(s), torch {torch.__version__}, ours in {args.precision}"
          + (" with LayerNorm" if args.layer_norm else ""))
    print(f"postbc DSRL SAC update: {o:8.1f} gradient steps/s = {1000 / o:.1f} ms  (runs: {', '.join(f'{x:.1f}' for x in ours)})")
    if sb3:
        s = statistics.median(sb3)
        print(f"stable-baselines3 SAC : {s:8.1f} gradient steps/s = {1000 / s:.1f} ms  (runs: {', '.join(f'{x:.1f}' for x in sb3)})")
        print(f"ratio postbc / sb3    : {o / s:.2f}x")


if __name__ == "__main__":
    main()
