"""How far a DSRL / DSRL-NA critic is from the returns its own training episodes earned.

`returns_by_position(algo, num_envs, gamma)` rebuilds every training episode from the algorithm's
replay (transitions are stored env by env in vector order) and gives per transition whether its
episode is complete in the replay (`complete`: it reached its terminal transition; the episodes in
flight when the run stopped and resumed, or when the replay ends, are not), the discounted return
it really earned (`mc`, to the horizon, which is terminal; meaningful where `complete`), its
chunk position, `q_data` = min_k Q_k(s, a) for the replay's action (what the TD loss fits) and
`q_actor` = min_k Q_k(s, a') for a fresh action of the current actor (what the TD target
bootstraps from). A right critic has `q_data` near `mc`; `q_actor` far above `q_data` at the same
states means the actor found actions whose value the critic overestimates. The command-line
front end is `benchmarks/critic_vs_returns.py`.

`solved_after_success` asks what the horizon objective rewards: of the steps after an episode was
first solved, how many are solved again. Where the base policy does not hold success (demos end
at success, so what it does afterwards is untrained), the return to the horizon counts time spent
solved, not success (docs/finetuning.md, "Which objective").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from postbc.errors import PostBCError
from postbc.finetune.config import NOISE_ACTOR_ALGOS


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


def restarts(obs: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """Per transition of one env's stream but the last: does the next transition not start from this one's next
    observation (the env was reset in between)?"""
    return np.abs(next_obs[:-1] - obs[1:]).max(1) > 1e-5


def episode_index(obs: np.ndarray, next_obs: np.ndarray, done: np.ndarray, num_envs: int) -> np.ndarray:
    """Episode number of each replay transition, for runs of either episode end: an episode ends at a terminal
    transition or where the env restarted after it (the horizon cut it). Needs a replay that has not wrapped and
    envs that never crashed."""
    out = np.empty(len(done), int)
    count = 0
    for e in range(num_envs):
        o, no, d = obs[e::num_envs], next_obs[e::num_envs], done[e::num_envs]
        ends = d > 0.5
        ends[:-1] |= restarts(o, no)
        starts = np.concatenate([[0], np.cumsum(ends[:-1])])
        out[e::num_envs] = count + starts
        count += int(starts[-1]) + 1 if len(starts) else 0
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


def returns_by_position(algo, num_envs: int, gamma: float) -> dict[str, np.ndarray]:
    """{"mc", "position", "q_data", "q_actor", "complete"} per replay transition, oldest first, and "cuts": how many
    times an env stream broke off mid-episode (see module docstring)."""
    if algo.replay.size == algo.replay.capacity:
        raise PostBCError("the replay has wrapped; episodes cannot be rebuilt from it")
    if getattr(algo, "episode_end", "horizon") != "horizon":
        raise PostBCError("this run's training episodes end at success and its replay does not mark where one was cut "
                          "at the horizon, so episodes cannot be rebuilt from it; the diagnostic reads runs to the horizon")
    if getattr(algo.cfg, "horizon_bootstrap", False):
        raise PostBCError("this run bootstraps at the horizon (--sac.horizon-bootstrap): its Q values the steps past "
                          "the horizon too, so the Monte-Carlo returns within an episode are not what it estimates")
    data = algo.replay.all()
    n = num_envs
    obs, next_obs = data["obs"].numpy(), data["next_obs"].numpy()
    reward, done = data["reward"].numpy().astype(np.float64), data["done"].numpy()
    cut = [np.append(restarts(o, no) & (d[:-1] == 0), d[-1] == 0) if len(d) else d.astype(bool)
           for o, no, d in zip(per_env(obs, n), per_env(next_obs, n), per_env(done, n))]
    ends = [np.maximum(d, c) for d, c in zip(per_env(done, n), cut)]
    complete = interleave([reaches_terminal(d, c) for d, c in zip(per_env(done, n), cut)])
    if not complete.any():
        raise PostBCError("no training episode can be rebuilt whole from the replay (every env stream breaks before "
                          "its first terminal transition: a crash, or another number of envs than the run's)")
    mc = interleave([discounted_returns(r, e, gamma) for r, e in zip(per_env(reward, n), ends)])
    position = interleave([positions(e) for e in ends])
    q_data, q_actor = critic_values(algo, data["obs"], data["action"])
    return {"mc": mc, "position": position, "q_data": q_data, "q_actor": q_actor, "complete": complete,
            "cuts": int(sum(c[:-1].sum() for c in cut))}


def reaches_terminal(done: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Per transition of one env's stream: does its episode end at a terminal transition (rather than where the
    stream broke off: a resume restarted the envs, or the replay ends)?"""
    out, whole = np.zeros(len(done), bool), False
    for i in range(len(done) - 1, -1, -1):
        if done[i] > 0.5:
            whole = True
        elif cut[i]:
            whole = False
        out[i] = whole
    return out


def solved_after_success(reward: np.ndarray, done: np.ndarray, num_envs: int, chunk: int,
                         keep: np.ndarray | None = None) -> dict[str, float]:
    """Over the complete episodes of a replay with -1 per unsolved step and 0 per solved one, summed per chunk:
    episodes, those solved at some step, the fraction of steps after the first solved chunk that are unsolved,
    and the episodes solved at every chunk after it. `keep`: the transitions of whole episodes (`complete` of
    `returns_by_position`), where a stream broke off mid-episode."""
    keep = np.ones(len(reward), bool) if keep is None else np.asarray(keep, bool)
    episodes = succeeded = later_chunks = held = 0
    unsolved_later = 0.0
    streams = zip(per_env(np.asarray(reward, np.float64), num_envs), per_env(np.asarray(done), num_envs),
                  per_env(keep, num_envs))
    for r, d, k in ((r[k], d[k], k) for r, d, k in streams):
        start = 0
        for end in np.flatnonzero(d > 0.5):
            episode, start = r[start:end + 1], end + 1
            episodes += 1
            solved = episode > -chunk + 1e-6
            if not solved.any():
                continue
            succeeded += 1
            later = episode[int(np.argmax(solved)) + 1:]
            later_chunks += len(later)
            unsolved_later += float(-later.sum())
            held += int((later == 0).all())
    fraction = unsolved_later / (later_chunks * chunk) if later_chunks else float("nan")
    return {"episodes": episodes, "succeeded": succeeded, "unsolved_after_success": fraction, "held_to_horizon": held}


def critic_summary(run_dir) -> dict[str, float]:
    """One line of the comparison for a finished DSRL / DSRL-NA run: over its replay's whole episodes, the mean real
    return (`mc`), the critic's mean value of the stored actions (`q_data`), their difference (`overestimate`) and
    correlation (`corr`: does the critic rank what it stored as the episodes did?), how far above `q_data` the critic
    values the current actor's actions (`actor_gap`), and by how much on the horizon's last chunks alone
    (`last_chunk_gap`: their target is the reward alone, so a critic that values the actor's noise there like an earlier
    chunk's hands every earlier chunk that excess through the backup), the share of training episodes solved at some
    step, and of the steps after success those unsolved again."""
    torch.manual_seed(0)
    cfg, base, algo, meta = load_dsrl_run(run_dir)
    r = returns_by_position(algo, cfg.num_envs, cfg.sac.gamma)
    whole = r["complete"]
    mc, q_data, q_actor = r["mc"][whole], r["q_data"][whole], r["q_actor"][whole]
    data = algo.replay.all()
    done = data["done"].numpy()
    last = done[whole] > 0.5
    held = solved_after_success(data["reward"].numpy(), done, cfg.num_envs, base.chunk, whole)
    return {"env_steps": int(meta["env_steps"]), "episodes": held["episodes"], "mc": float(mc.mean()),
            "q_data": float(q_data.mean()), "overestimate": float(np.mean(q_data - mc)),
            "corr": float(np.corrcoef(q_data, mc)[0, 1]), "actor_gap": float(np.mean(q_actor - q_data)),
            "last_chunk_gap": float(np.mean((q_actor - q_data)[last])),
            "solved": held["succeeded"] / held["episodes"] if held["episodes"] else float("nan"),
            "unsolved_after_success": held["unsolved_after_success"]}


SUMMARY_FILE = "critic_summary.json"  # `critic_summary` of the run's last checkpoint, written as the run finishes


def critic_summary_or_note(run_dir) -> dict[str, Any]:
    """`critic_summary`, or `{"note": why}` for a run the comparison cannot read."""
    try:
        return critic_summary(run_dir)
    except PostBCError as e:
        return {"note": str(e)}


def write_critic_summary(run_dir) -> None:
    """Keep the finished run's `critic_summary_or_note` beside it (a few hundred bytes, so a sweep's record keeps it
    too: a report on another machine, without the run's checkpoint and replay, reads it from there)."""
    from postbc.io.atomic import atomic_write_json

    atomic_write_json(Path(run_dir) / SUMMARY_FILE, critic_summary_or_note(run_dir))


def load_dsrl_run(run_dir):
    """(config, base policy, algorithm with the run's last checkpoint loaded, checkpoint meta) of a DSRL or DSRL-NA
    run directory, for the diagnostics that read its networks and replay."""
    from postbc.envs.registry import get_task
    from postbc.finetune.base import load_base_policy
    from postbc.finetune.command import build_algorithm
    from postbc.finetune.serve import recorded_config, run_record
    from postbc.io.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    record = run_record(run_dir)
    if record is None:
        raise PostBCError(f"{run_dir} is not a finetune run directory (no config.json from postbc finetune)")
    cfg = recorded_config(record, run_dir)
    if cfg.algo not in NOISE_ACTOR_ALGOS:
        raise PostBCError(f"{run_dir} is a {cfg.algo} run; this diagnostic reads DSRL and DSRL-NA runs")
    spec = get_task(cfg.task)
    base = load_base_policy(cfg.checkpoint, spec)
    algo = build_algorithm(cfg, base, spec.obs_dim)
    tensors, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    algo.load_state(tensors, meta["algo"])
    return cfg, base, algo, meta
