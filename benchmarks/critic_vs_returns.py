"""Does a DSRL / DSRL-NA run's critic predict the returns its own training episodes earned?

Reads the run's last checkpoint (networks and replay), rebuilds every training episode from the
replay (transitions are stored env by env in vector order; continuity is checked), and compares,
per chunk position in the episode:
- `mc`: the discounted return that transition actually earned (to the horizon, which is terminal),
- `q_data`: min_k Q_k(s, a) for the action in replay (what the TD loss fits),
- `q_actor`: min_k Q_k(s, a') with a' from the current actor (what the TD target bootstraps from),
and prints their means and the correlation of `q_data` with `mc`. A critic that is right has
`q_data` close to `mc`; `q_actor` far above `q_data` at the same states means the actor found
actions whose value the critic overestimates, and the TD target carries that back.
Needs a run whose replay has not wrapped and whose envs never crashed. Example:

    python benchmarks/critic_vs_returns.py runs/dev/lift_dsrl_b
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from postbc.finetune.command import build_algorithm
from postbc.finetune.serve import recorded_config, run_record
from postbc.finetune.base import load_base_policy
from postbc.io.checkpoint import load_checkpoint


def per_env(x: np.ndarray, num_envs: int) -> list[np.ndarray]:
    return [x[e::num_envs] for e in range(num_envs)]


def discounted_returns(reward: np.ndarray, done: np.ndarray, gamma: float) -> np.ndarray:
    """Return of each transition of one env's stream, cut at every terminal transition."""
    out, g = np.zeros(len(reward)), 0.0
    for i in range(len(reward) - 1, -1, -1):
        g = reward[i] + gamma * g * (1.0 - done[i])
        out[i] = g
    return out


def positions(done: np.ndarray) -> np.ndarray:
    """Chunk index of each transition within its episode."""
    out, p = np.zeros(len(done), int), 0
    for i, d in enumerate(done):
        out[i], p = p, 0 if d else p + 1
    return out


def interleave(parts: list[np.ndarray]) -> np.ndarray:
    out = np.empty(sum(len(p) for p in parts), dtype=parts[0].dtype)
    for e, p in enumerate(parts):
        out[e::len(parts)] = p
    return out


@torch.no_grad()
def critic_values(algo, obs: torch.Tensor, action: torch.Tensor, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(min_k Q(s, a_replay), min_k Q(s, a_actor)) for DSRL (noise critic) or DSRL-NA (action critic)."""
    q_data, q_actor = [], []
    for i in range(0, len(obs), batch):
        o, a = obs[i:i + batch], action[i:i + batch]
        s = algo.scale_obs(o)
        if hasattr(algo, "sac"):
            w, _ = algo.sac.actor(s)
            q_data.append(algo.sac.critic(s, a).min(0).values)
            q_actor.append(algo.sac.critic(s, w).min(0).values)
        else:
            w, _ = algo.actor(s)
            q_data.append(algo.q_a(s, a).min(0).values)
            q_actor.append(algo.q_a(s, algo.chunk_of(o, w)).min(0).values)
    return torch.cat(q_data).numpy(), torch.cat(q_actor).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--buckets", type=int, default=8, help="rows of the table (chunk-position buckets)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    record = run_record(args.run)
    if record is None:
        raise SystemExit(f"{args.run} is not a finetune run directory (no config.json from postbc finetune)")
    cfg = recorded_config(record, args.run)
    if cfg.algo not in ("dsrl", "dsrl_na"):
        raise SystemExit(f"{args.run} is a {cfg.algo} run; this diagnostic reads DSRL and DSRL-NA runs")
    from postbc.envs.registry import get_task

    spec = get_task(cfg.task)
    base = load_base_policy(cfg.checkpoint, spec)
    algo = build_algorithm(cfg, base, spec.obs_dim)
    tensors, meta = load_checkpoint(args.run / "checkpoints" / "last")
    algo.load_state(tensors, meta["algo"])
    data = algo.replay.all()
    if algo.replay.size == algo.replay.capacity:
        raise SystemExit("the replay has wrapped; episodes cannot be rebuilt from it")
    n = cfg.num_envs
    obs, next_obs = data["obs"].numpy(), data["next_obs"].numpy()
    reward, done = data["reward"].numpy().astype(np.float64), data["done"].numpy()
    for e in range(n):
        o, no, d = obs[e::n], next_obs[e::n], done[e::n]
        broken = (np.abs(no[:-1] - o[1:]).max(1) > 1e-5) & (d[:-1] == 0)
        if broken.any():
            raise SystemExit(f"env {e}'s transitions are not continuous (a crash or another layout); cannot rebuild episodes")
    gamma = cfg.sac.gamma
    mc = interleave([discounted_returns(r, d, gamma) for r, d in zip(per_env(reward, n), per_env(done, n))])
    pos = interleave([positions(d) for d in per_env(done, n)])
    q_data, q_actor = critic_values(algo, data["obs"], data["action"])
    last = int(pos.max())
    edges = np.linspace(0, last + 1, args.buckets + 1).astype(int)
    log_alpha = algo.sac.log_alpha if hasattr(algo, "sac") else algo.log_alpha
    print(f"{args.run}: {cfg.algo}, {meta['env_steps']} env steps, {len(reward)} transitions, gamma {gamma}, "
          f"alpha {float(log_alpha.detach().exp()):.3f}")
    print(f"corr(q_data, mc) = {np.corrcoef(q_data, mc)[0, 1]:.2f}; mean q_data - mc = {np.mean(q_data - mc):+.1f}")
    print("| chunks | transitions | mc | q_data | q_actor |")
    print("|---|---|---|---|---|")
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (pos >= lo) & (pos < hi)
        print(f"| {lo}-{hi - 1} | {m.sum()} | {mc[m].mean():.1f} | {q_data[m].mean():.1f} | {q_actor[m].mean():.1f} |")
    m = pos == last
    print(f"| {last} (terminal) | {m.sum()} | {mc[m].mean():.1f} | {q_data[m].mean():.1f} | {q_actor[m].mean():.1f} |")


if __name__ == "__main__":
    main()
