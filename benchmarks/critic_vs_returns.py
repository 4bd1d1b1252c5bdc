"""Does a DSRL / DSRL-NA run's critic predict the returns its own training episodes earned?

Reads the run's last checkpoint (networks and replay) and prints, per chunk position in the
episode, the mean real discounted return (`mc`), the critic's value of the replay's actions
(`q_data`) and of the current actor's (`q_actor`); `postbc.finetune.critic_returns` says how.
For runs to the horizon it also prints how often the task stayed solved after it was first solved
(`solved_after_success`), and the same comparison per replay segment (warm-up, then the actor's chunks).
Only episodes the replay holds whole count (those in flight where a run was resumed, or at the replay's
end, are left out). Needs a run whose replay has not wrapped. Example:

    python benchmarks/critic_vs_returns.py runs/dev/lift_dsrl_b
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from postbc.errors import PostBCError
from postbc.finetune.critic_returns import load_dsrl_run, returns_by_position, solved_after_success


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--buckets", type=int, default=8, help="rows of the table (chunk-position buckets)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        cfg, base, algo, meta = load_dsrl_run(args.run)
    except PostBCError as e:
        raise SystemExit(str(e)) from e
    gamma = cfg.sac.gamma
    r = returns_by_position(algo, cfg.num_envs, gamma)
    whole = r["complete"]
    mc, pos, q_data, q_actor = r["mc"][whole], r["position"][whole], r["q_data"][whole], r["q_actor"][whole]
    last = int(pos.max())
    edges = np.linspace(0, last + 1, args.buckets + 1).astype(int)
    log_alpha = algo.sac.log_alpha if hasattr(algo, "sac") else algo.log_alpha
    print(f"{args.run}: {cfg.algo}, {meta['env_steps']} env steps, {len(mc)} transitions of whole episodes "
          f"(of {len(whole)}; {r['cuts']} episodes cut by a resume), gamma {gamma}, "
          f"alpha {float(log_alpha.detach().exp()):.3f}")
    print(f"corr(q_data, mc) = {np.corrcoef(q_data, mc)[0, 1]:.2f}; mean q_data - mc = {np.mean(q_data - mc):+.1f}")
    print("| chunks | transitions | mc | q_data | q_actor |")
    print("|---|---|---|---|---|")
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (pos >= lo) & (pos < hi)
        print(f"| {lo}-{hi - 1} | {m.sum()} | {mc[m].mean():.1f} | {q_data[m].mean():.1f} | {q_actor[m].mean():.1f} |")
    m = pos == last
    print(f"| {last} (terminal) | {m.sum()} | {mc[m].mean():.1f} | {q_data[m].mean():.1f} | {q_actor[m].mean():.1f} |")
    data = algo.replay.all()
    print_by_segment(data["action"], cfg.sac.warmup_steps, int(meta["env_steps"]), r["mc"], r["q_data"], whole)
    if cfg.sac.episode_end == "horizon":
        held = solved_after_success(data["reward"].numpy(), data["done"].numpy(), cfg.num_envs, base.chunk,
                                    whole)
        print(f"after success: {held['succeeded']} of {held['episodes']} training episodes were solved at some step; "
              f"{held['unsolved_after_success']:.0%} of their later steps were unsolved again, and "
              f"{held['held_to_horizon']} stayed solved to the horizon")


def print_by_segment(actions: torch.Tensor, warmup_steps: int, env_steps: int, mc, q_data, whole) -> None:
    """The same comparison per replay segment (the warm-up's chunks, then the first and second half of the
    actor's), with the stored noise's mean norm: is the critic wrong only where the actor went, or everywhere?"""
    n = len(mc)
    warm = min(n, warmup_steps * n // max(1, env_steps))  # transitions stored in the warm-up
    half = warm + (n - warm) // 2
    norm = actions.reshape(n, -1).norm(dim=1).numpy()
    print("| replay segment | transitions | mean norm of the stored action | mc | q_data | q_data - mc | corr |")
    print("|---|---|---|---|---|---|---|")
    for name, lo, hi in (("warm-up", 0, warm), ("actor, first half", warm, half), ("actor, second half", half, n)):
        if hi - lo < 2:
            continue
        sl = np.zeros(n, bool)
        sl[lo:hi] = True
        sl &= whole
        if sl.sum() < 2:
            continue
        print(f"| {name} | {sl.sum()} | {norm[sl].mean():.2f} | {mc[sl].mean():.1f} | {q_data[sl].mean():.1f} | "
              f"{np.mean(q_data[sl] - mc[sl]):+.1f} | {np.corrcoef(q_data[sl], mc[sl])[0, 1]:.2f} |")


if __name__ == "__main__":
    main()
