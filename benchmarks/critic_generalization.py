"""Does a DSRL critic of the run's sizes generalize from one set of training episodes to others?

Rebuilds the run's training episodes from its replay (`postbc.finetune.critic_returns.episode_index`;
episodes cut at the horizon keep their return to there), then fits fresh critics of the run's own
sizes by regression on each transition's discounted return, on 80% of the episodes, and reports the
squared error on those and on the 20% held out, next to the held-out returns' variance (what
predicting their mean scores), and how well the prediction ranks held-out transitions of successful
episodes above failed ones (AUC). It does so for three observation scalings fitted on the warm-up
transitions: min-max (what DSRL does), mean / std, and the 2nd-98th percentiles, or (--widths) for
critics of other widths with the min-max scaling. Examples:

    python benchmarks/critic_generalization.py runs/dev/lift_dsrl_e --steps 4000
    python benchmarks/critic_generalization.py runs/dev/lift_sampler --steps 4000 --widths 128 512 2048
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from postbc.errors import PostBCError
from postbc.finetune.critic_check import auc
from postbc.finetune.critic_returns import discounted_returns, episode_index, load_dsrl_run
from postbc.finetune.networks import Critic


def scalings(warm: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    lo, hi = warm.min(0).values, warm.max(0).values
    p_lo, p_hi = warm.quantile(0.02, 0), warm.quantile(0.98, 0)
    half = lambda a, b: ((b - a) / 2).clamp_min(1e-6)
    return {"warm-up min-max": ((lo + hi) / 2, half(lo, hi)),
            "warm-up mean/std": (warm.mean(0), warm.std(0).clamp_min(1e-6)),
            "warm-up 2-98%": ((p_lo + p_hi) / 2, half(p_lo, p_hi))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--steps", type=int, default=4000, help="regression steps per critic (batch 256, Adam 3e-4)")
    ap.add_argument("--fit-fraction", type=float, default=0.8,
                    help="fraction of all episodes to fit on, taken from the 80%% not held out (how error scales with data)")
    ap.add_argument("--widths", type=int, nargs="+", help="compare critics of these hidden widths (min-max scaling) "
                    "instead of three scalings at the run's width")
    args = ap.parse_args()
    torch.set_num_threads(1)
    try:
        cfg, base, algo, _ = load_dsrl_run(args.run)
    except PostBCError as e:
        raise SystemExit(str(e)) from e
    data = algo.replay.all()
    obs, w, next_obs = data["obs"], data["action"], data["next_obs"]
    reward, done = data["reward"].numpy().astype(np.float64), data["done"].numpy()
    n = len(obs)
    episode = episode_index(obs.numpy(), next_obs.numpy(), done, cfg.num_envs)
    ret = np.zeros(n)
    solved = np.zeros(n, bool)  # the episode was solved at some step: a chunk of -1 per step has a 0 in it
    for e in np.unique(episode):
        idx = np.flatnonzero(episode == e)
        ret[idx] = discounted_returns(reward[idx], done[idx], cfg.sac.gamma)
        solved[idx] = bool((reward[idx] > -base.chunk + 1e-6).any())
    rng = np.random.default_rng(0)
    episodes = episode.max() + 1
    order = rng.permutation(episodes)
    held_out = np.isin(episode, order[: episodes // 5])
    fitted = np.isin(episode, order[episodes // 5:][: int(args.fit_fraction * episodes)])
    train = np.flatnonzero(fitted)
    y = torch.as_tensor(ret, dtype=torch.float32)
    scale_y = float(y.abs().max())
    warm = obs[: max(cfg.sac.warmup_steps // base.chunk, 1)]  # about the transitions stored before learning began
    print(f"{args.run}: {n} transitions, {episodes} episodes, {len(np.unique(episode[fitted]))} fitted "
          f"({solved[held_out].mean():.2f} of held-out transitions in solved ones); held-out return variance "
          f"{float(y[held_out].var()):.0f}")
    options = scalings(warm)
    if args.widths:
        variants = [(f"{cfg.sac.layers} x {width}", options["warm-up min-max"], width) for width in args.widths]
    else:
        variants = [(name, scaling, cfg.sac.hidden) for name, scaling in options.items()]
    print(f"| {'critic' if args.widths else 'scaling'} | train MSE | held-out MSE | held-out success AUC | fit (s) |")
    print("|---|---|---|---|---|")
    for name, (center, scale), width in variants:
        x = (obs - center) / scale
        torch.manual_seed(0)
        started = time.perf_counter()
        critic = Critic(obs.shape[1], w.shape[1], width, cfg.sac.layers, 1, cfg.sac.activation, cfg.sac.layer_norm)
        opt = torch.optim.Adam(critic.parameters(), 3e-4)
        for _ in range(args.steps):
            b = torch.as_tensor(rng.choice(train, 256))
            loss = (critic(x[b], w[b])[0] - y[b] / scale_y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = critic(x, w)[0] * scale_y
        mse = lambda m: float((pred[m] - y[m]).pow(2).mean())
        print(f"| {name} | {mse(fitted):.0f} | {mse(held_out):.0f} | "
              f"{auc(pred[held_out].numpy(), solved[held_out]):.3f} | {time.perf_counter() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
