"""Best-of-N: roll out the pretrained policy, fit an IQL critic on the rollouts, act by argmax over N samples.

1. `collect_rollouts`: M episodes of the pretrained policy (env worker processes), one row per chunk
   with reward 1 if the task was solved in it (`postbc.finetune.rollouts_file` format).
2. `fit_iql`: IQL on those rows (resumable, logged, evaluated every E gradient steps when a task is given),
   except the held-out episodes that `postbc.finetune.critic_check` uses to test the critic.
3. `BestOfNPolicy.act(obs)`: sample N chunks from the pretrained policy per observation and
   execute the one with the highest min_k Q_k(s, chunk). Only when the critic passed its check
   (or `--best-of-n.force`): otherwise the run says why and acts as the pretrained policy
   (Best-of-1), which is what the curve and the served policy then show.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from postbc.envs.registry import TaskSpec, flatten_obs
from postbc.envs.vector import VectorEnv, episode_seed
from postbc.errors import NonFiniteLoss
from postbc.finetune.base import base_actions, check_base_fingerprint
from postbc.finetune.features import PolicyFeatures
from postbc.finetune.critic_check import (NO_BASE_UNRANKED, CriticCheck, check_critic, rank_among, rollout_counts,
                                          split_episodes, unrankable_reason)
from postbc.finetune.iql import IQL, iql_from_config
from postbc.finetune.loop import EVAL_SEED_STREAM
from postbc.finetune.replay import ReplayBuffer
from postbc.finetune.rollouts_file import load_rollouts, save_rollouts
from postbc.io.state import load_module_state, module_state
from postbc.io.checkpoint import load_checkpoint, save_checkpoint
from postbc.io.resume import RunCheckpoint
from postbc.io.runs import MetricsLogger, read_metrics
from postbc.utils import progress, seed_everything, show

ROLLOUT_SEED_STREAM = 4


def collect_rollouts(base, spec: TaskSpec, episodes: int, seed: int, workers: int, quiet: bool = True,
                     features: PolicyFeatures | None = None) -> dict[str, np.ndarray]:
    """Episodes 0..M-1 of the pretrained policy (its own noise), one row per executed chunk; `obs` and
    `next_obs` hold `features` of the observations (an image policy's encoder features; default: as they are)."""
    features = features or PolicyFeatures(base, spec.obs_dim)
    rng = np.random.default_rng(episode_seed(seed, 0, ROLLOUT_SEED_STREAM))
    rows: dict[str, list] = {k: [] for k in ("obs", "actions", "rewards", "next_obs", "dones", "episode")}
    finished: set[int] = set()
    backend = "async" if workers > 1 else "sync"
    with VectorEnv(spec, min(workers, episodes), seed=seed, chunk=base.chunk, backend=backend) as vec:
        obs = flatten_obs(vec.reset(), spec.obs_keys)
        seen = features(obs).numpy()
        bar = progress(range(episodes), desc="rollouts", quiet=quiet)
        while len(finished) < episodes:
            idx = vec.episode_index.copy()
            noise = rng.standard_normal((len(obs), base.chunk, base.act_dim)).astype(np.float32)
            chunks = base_actions(base, obs, noise).cpu().numpy()
            next_d, _, term, _, infos = vec.step(chunks)
            next_flat = flatten_obs(next_d, spec.obs_keys)
            next_seen = features(next_flat).numpy()
            for i, info in enumerate(infos):
                k = int(idx[i])
                if k < episodes and "env_error" not in info:
                    rows["obs"].append(seen[i])
                    rows["actions"].append(chunks[i])
                    rows["rewards"].append(float(bool(info.get("success", False))))
                    rows["next_obs"].append(features(flatten_obs(info["final_obs"], spec.obs_keys)[None]).numpy()[0]
                                            if "final_obs" in info else next_seen[i])
                    rows["dones"].append(float(bool(term[i])))
                    rows["episode"].append(k)
                if "episode" in info and k < episodes and k not in finished:
                    finished.add(k)
                    bar.update(1) if hasattr(bar, "update") else None
            obs, seen = next_flat, next_seen  # after an autoreset these are the new episode's first observations
    out = {k: np.asarray(v, np.float32) for k, v in rows.items()}
    out["episode"] = out["episode"].astype(np.int64)
    return out


class BestOfNPolicy:
    """Serves actions: N candidate chunks from the pretrained policy, the one with the highest min-Q wins."""

    takes_noise = False  # draws its N candidates' noise from its own seeded generator

    def __init__(self, base, iql: IQL, candidates: int, seed: int = 0, features: PolicyFeatures | None = None):
        """`features`: what the critic sees of an observation (default: the observation as it is)."""
        self.base, self.iql, self.candidates = base, iql, candidates
        self.chunk, self.act_dim = base.chunk, base.act_dim
        self.obs_keys = getattr(base, "obs_keys", None)
        self.features = features or PolicyFeatures(base, base.obs_dim)
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, obs_flat: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs_flat, np.float32)
        cand, q = scored_candidates(self.base, self.iql, obs, self.features(obs), self.candidates, self.rng)
        best = q.argmax(1).cpu()
        return cand.cpu()[torch.arange(len(obs)), best].reshape(len(obs), self.chunk, self.act_dim).numpy()


@torch.no_grad()
def scored_candidates(base, iql: IQL, obs: np.ndarray, seen, candidates: int,
                      rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`candidates` chunks of `base` at each raw observation (noise from `rng`), flattened (B, N, chunk * act_dim),
    and the critic's min-Q of each (B, N); `seen` is what the critic sees of `obs` (its features)."""
    b = len(obs)
    noise = rng.standard_normal((b * candidates, base.chunk, base.act_dim)).astype(np.float32)
    cand = base_actions(base, np.repeat(obs, candidates, axis=0), noise).reshape(b * candidates, -1)
    q = iql.q_value(torch.as_tensor(seen).repeat_interleave(candidates, 0), cand).reshape(b, candidates)
    return cand.reshape(b, candidates, -1), q


def select_rows(data: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in data.items()}


IMAGE_UNRANKED = "an image policy's rollouts hold encoder features, from which no candidates can be drawn"
RANKED_ROWS = 2000  # held-out chunks whose executed action is ranked among fresh candidates (a uniform sample)


@torch.no_grad()
def executed_chunk_ranks(iql: IQL, base, heldout: dict[str, np.ndarray], candidates: int, seed: int,
                         rows: int = RANKED_ROWS, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(ranks, episode of each ranked row): for up to `rows` held-out chunks, the share of `candidates` fresh
    chunks of `base` at the same observation that the critic scores below the executed one."""
    rng = np.random.default_rng(seed)
    n = len(heldout["obs"])
    pick = np.sort(rng.choice(n, min(rows, n), replace=False))
    obs, taken = heldout["obs"][pick], heldout["actions"][pick].reshape(len(pick), -1)
    ranks = np.empty(len(pick))
    for i in range(0, len(pick), batch):
        o = obs[i:i + batch]
        _, q_cand = scored_candidates(base, iql, o, o, candidates, rng)
        q_taken = iql.q_value(torch.as_tensor(o), torch.as_tensor(taken[i:i + batch]))
        ranks[i:i + batch] = rank_among(q_taken.cpu().numpy(), q_candidates=q_cand.cpu().numpy())
    return ranks, heldout["episode"][pick]


@torch.no_grad()
def heldout_check(iql: IQL, heldout: dict[str, np.ndarray], base=None, candidates: int = 16, seed: int = 0,
                  unranked_why: str = NO_BASE_UNRANKED) -> CriticCheck:
    """The critic check (`postbc.finetune.critic_check`) on held-out rollouts; actions are ranked only with a
    `base` policy to draw candidates from, on observations it can read (not an image policy's features)."""
    q = iql.q_value(torch.as_tensor(heldout["obs"]), torch.as_tensor(heldout["actions"]).reshape(len(heldout["obs"]), -1))
    ranks = rank_episode = None
    if base is not None and len(heldout["obs"]):
        ranks, rank_episode = executed_chunk_ranks(iql, base, heldout, candidates, seed)
    return check_critic(q.cpu().numpy(), heldout["rewards"], heldout["episode"], ranks, rank_episode, unranked_why)


@torch.no_grad()
def heldout_signals(iql: IQL, heldout: dict[str, np.ndarray]) -> dict[str, float]:
    """IQL's own convergence signals on chunks it never trained on: TD error of min-Q against r + gamma V(s'), mean V."""
    if len(heldout["obs"]) == 0:
        return {"heldout_td_error": math.nan, "heldout_v_mean": math.nan}
    obs, next_obs = torch.as_tensor(heldout["obs"]), torch.as_tensor(heldout["next_obs"])
    q = iql.q_value(obs, torch.as_tensor(heldout["actions"]).reshape(len(obs), -1))
    v_next = iql.v(iql.scaled(next_obs)).squeeze(-1)
    reward, done = (torch.as_tensor(heldout[k]).to(iql.device) for k in ("rewards", "dones"))
    target = reward + iql.gamma * (1 - done) * v_next
    return {"heldout_td_error": float((q - target).pow(2).mean()),
            "heldout_v_mean": float(iql.v(iql.scaled(obs)).mean())}


def critic_verdict(check: CriticCheck, force: bool) -> tuple[bool, str]:
    """(act with the critic?, the sentence that says so)."""
    if check.passed:
        return True, f"Best-of-N acts with its critic: {check.reason}"
    if force:
        return True, f"Best-of-N acts with its critic because it was forced (--best-of-n.force), although {check.reason}"
    return False, (f"Best-of-N acts as the pretrained policy: {check.reason}. Picking the argmax of such a critic would "
                   "bias the policy without making it better; collect more rollouts (with successes and failures), "
                   "train longer, or pass --best-of-n.force to act with it anyway")


def rollout_buffer(data: dict[str, np.ndarray]) -> ReplayBuffer:
    n, obs_dim = data["obs"].shape
    a_dim = int(np.prod(data["actions"].shape[1:]))
    buf = ReplayBuffer(n, {"obs": (obs_dim,), "action": (a_dim,), "reward": (), "next_obs": (obs_dim,), "done": ()})
    buf.add(obs=torch.as_tensor(data["obs"]), action=torch.as_tensor(data["actions"]).reshape(n, -1),
            reward=torch.as_tensor(data["rewards"]), next_obs=torch.as_tensor(data["next_obs"]),
            done=torch.as_tensor(data["dones"]))
    return buf


class Plateau:
    """Whether a loss has stopped falling: no evaluation improved the best by `rel` for `patience` in a row."""

    def __init__(self, patience: int, rel: float = 0.01, best: float = math.inf, stale: int = 0):
        self.patience, self.rel, self.best, self.stale = patience, rel, best, stale

    def update(self, value: float) -> bool:
        """Record one evaluation's value; True once the plateau is reached (never with patience 0 or a nan)."""
        if self.patience <= 0 or not math.isfinite(value):
            return False
        if value < self.best * (1 - self.rel):  # the first finite value always beats best = inf
            self.best, self.stale = value, 0
        else:
            self.stale += 1
        return self.stale >= self.patience

    def state(self) -> dict[str, float]:
        return {"best": self.best, "stale": self.stale}


def fit_iql(iql: IQL, buf: ReplayBuffer, out: Path, *, steps: int, batch_size: int, log_every: int,
            checkpoint_every: int, resuming: bool, evaluate_fn: Callable[[int], dict] | None = None,
            extra: dict[str, Any] | None = None, quiet: bool = False, patience: int = 0) -> dict[str, Any]:
    """Train `iql` on `buf` for `steps` gradient steps, logging / checkpointing under `out`; resumable.

    `evaluate_fn(step)` gives each row's eval columns. `patience` > 0 stops early once the rows'
    `heldout_td_error` has plateaued (`Plateau`); the row then records `converged` = 1."""
    ckpt = Path(out) / "checkpoints" / "last"
    checkpoint = RunCheckpoint(ckpt, {})
    start, wall0 = 0, 0.0
    plateau = Plateau(patience)
    if resuming and checkpoint.exists():
        tensors, meta = checkpoint.load()
        load_module_state({"iql": iql}, {"iql": iql.optimizer}, tensors, meta["optim"])
        start, wall0 = meta["updates"], meta["wall_time"]
        plateau = Plateau(patience, **meta.get("plateau", {}))
        if meta.get("converged"):
            return read_metrics(out)[-1]
    logger = MetricsLogger(out, step_key="updates", resume_step=start if start else None, keep_old_header=bool(start))
    t0 = time.perf_counter() - wall0
    acc: dict[str, list] = {}
    last: dict[str, Any] = {}

    def log_row(step: int) -> bool:
        nonlocal acc, last
        row = {"updates": step, "wall_time": time.perf_counter() - t0, **(extra or {})}
        row.update(evaluate_fn(step) if evaluate_fn else {"eval_success": math.nan, "eval_low": math.nan, "eval_high": math.nan})
        for k in ("value_loss", "critic_loss", "q_mean", "v_mean"):
            row[k] = float(torch.stack(acc[k]).mean()) if acc.get(k) else math.nan
        converged = step > 0 and plateau.update(float(row.get("heldout_td_error", math.nan)))
        if patience > 0:  # (a column older runs' metrics.csv does not have)
            row["converged"] = float(converged)
        logger.log(row)
        acc, last = {}, row
        return converged

    def save(step: int, converged: bool = False) -> None:
        tensors, optim = module_state({"iql": iql}, {"iql": iql.optimizer})
        checkpoint.save(tensors, {"updates": step, "wall_time": time.perf_counter() - t0, "optim": optim,
                                  "plateau": plateau.state(), "converged": converged}, where=f"IQL step {step}")

    try:
        if start == 0:
            log_row(0)
        bar = progress(range(start + 1, steps + 1), desc="iql", total=steps - start, quiet=quiet)
        for step in bar:
            metrics = iql.update(**buf.sample(batch_size, device=iql.device))
            if not all(bool(torch.isfinite(v)) for v in metrics.values()):
                bad = [k for k, v in metrics.items() if not torch.isfinite(v)]
                raise NonFiniteLoss(f"non-finite {', '.join(bad)} at IQL step {step}; the run stopped and the last good "
                                    f"checkpoint {ckpt} is kept; lower --best-of-n.iql.lr")
            for k, v in metrics.items():
                acc.setdefault(k, []).append(v)
            converged = False
            if step % log_every == 0 or step == steps:
                converged = log_row(step)
                show(bar, success=last.get("eval_success"), critic_loss=last.get("critic_loss"))
            if converged:
                save(step, converged=True)
                print(f"IQL converged at step {step}: the held-out TD error has not fallen by 1% in {patience} "
                      f"evaluations (best {plateau.best:.4g})")
                break
            if step % checkpoint_every == 0 or step == steps:
                save(step)
    finally:
        logger.close()
    return last


def save_critic(out: Path, iql: IQL, meta: dict) -> None:
    save_checkpoint(Path(out) / "critic", {f"iql.{k}": v for k, v in iql.state_dict().items()}, meta)


def load_best_of_n_policy(run_dir: Path, base, candidates: int | None = None, seed: int = 0) -> BestOfNPolicy:
    """The serving object: a fitted critic directory (`critic.*`) plus the pretrained policy."""
    from postbc.finetune.base import check_chunk
    from postbc.finetune.config import IQLConfig
    from postbc.io.checkpoint import check_shapes
    from postbc.io.config import from_jsonable

    tensors, meta = load_checkpoint(Path(run_dir) / "critic")
    check_chunk(base.chunk, meta["chunk"], "critic", str(run_dir))
    features = PolicyFeatures(base, base.obs_dim)
    iql = iql_from_config(from_jsonable(IQLConfig, meta["iql"]), meta.get("critic_obs_dim", meta["obs_dim"]),
                          meta["chunk"] * meta["act_dim"])
    state = {k[4:]: v for k, v in tensors.items()}
    for name in ("obs_center", "obs_scale"):  # critics saved before observation scaling saw raw observations
        state.setdefault(name, getattr(iql, name).clone())
    check_shapes(state, {k: v.shape for k, v in iql.state_dict().items()}, f"critic {run_dir}")
    iql.load_state_dict(state)
    iql.to(getattr(base, "device", "cpu"))
    # a critic that failed its held-out check serves the pretrained policy (Best-of-1) unless N is given
    default = meta["candidates"] if meta.get("critic_acts", True) else 1
    return BestOfNPolicy(base, iql, candidates or default, seed, features)


def run_best_of_n(cfg, base, spec: TaskSpec, compat: dict, resuming: bool, device="cpu") -> dict:
    """`postbc finetune --algo best_of_n`: collect (or reuse) rollouts, fit IQL on `device`, evaluate Best-of-N."""
    from postbc.evaluation.episodes import evaluate
    from postbc.io.config import to_jsonable

    seed_everything(cfg.seed)
    path = Path(cfg.out) / "rollouts.h5"
    features = PolicyFeatures(base, spec.obs_dim)
    if not (resuming and path.exists()):
        data = collect_rollouts(base, spec, cfg.best_of_n.rollouts, cfg.seed, cfg.best_of_n.workers, cfg.quiet, features)
        save_rollouts(path, data, obs_keys=spec.obs_keys, chunk=base.chunk, act_dim=base.act_dim, task=spec.name,
                      base_weights=compat.get("base_weights"), encoded=features.encodes)
    data, meta = load_rollouts(path)
    if resuming:  # the saved rollouts (and the critic fitted on them) came from this run's base policy
        check_base_fingerprint(base, meta["base_weights"], f"rollouts file {path}", relation="was collected by",
                               other_fix=", or finetune the new policy into a new --out directory")
    icfg = cfg.best_of_n.iql
    # an image policy's features come from demo-normalized observations already
    normalizer = None if features.encodes else getattr(base, "obs_normalizer", None)
    iql = iql_from_config(icfg, features.dim, base.chunk * base.act_dim, normalizer).to(device)
    policy = BestOfNPolicy(base, iql, cfg.best_of_n.candidates, cfg.seed, features)
    successes, failures = rollout_counts(data["rewards"], data["episode"])
    unrankable = unrankable_reason(successes, failures)
    held = np.zeros(len(data["obs"]), bool) if unrankable else split_episodes(data["rewards"], data["episode"],
                                                                             cfg.best_of_n.heldout, cfg.seed)
    train, heldout = select_rows(data, ~held), select_rows(data, held)

    def verdict() -> tuple[CriticCheck, bool, str]:
        ranker = None if features.encodes else base  # an image policy's rollouts hold features, not observations
        check = (CriticCheck(False, unrankable) if unrankable
                 else heldout_check(iql, heldout, ranker, cfg.best_of_n.candidates, cfg.seed, IMAGE_UNRANKED))
        return (check, *critic_verdict(check, cfg.best_of_n.force))

    def evaluate_fn(step: int) -> dict:
        # Before the first update the critic is untrained and its argmax an arbitrary pick among the N
        # candidates; the curve starts from the pretrained policy itself instead. Later points show what
        # the run would serve: Best-of-N when its critic passed the held-out check, else the pretrained policy.
        check, acts, _ = verdict() if step else (CriticCheck(False, ""), False, "")
        r = evaluate(policy if acts else base, spec, cfg.eval_episodes, seed=episode_seed(cfg.seed, 0, EVAL_SEED_STREAM),
                     num_envs=cfg.num_envs, backend=cfg.env_backend, quiet=True)
        return {"eval_success": r.success_rate, "eval_low": r.ci_low, "eval_high": r.ci_high, **r.task_columns("eval", spec.tasks),
                "critic_auc": check.auc, "critic_auc_low": check.auc_low, "action_auc": check.action_auc,
                "action_auc_low": check.action_auc_low, "acts_best_of_n": float(acts),
                **heldout_signals(iql, heldout)}

    extra = {"rollout_success": successes / max(1, successes + failures), "rollout_transitions": len(data["obs"]),
             "heldout_episodes": len(np.unique(heldout["episode"]))}
    last = fit_iql(iql, rollout_buffer(train), cfg.out, steps=cfg.steps, batch_size=icfg.batch_size,
                   log_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_interval, resuming=resuming,
                   evaluate_fn=evaluate_fn, extra=extra, quiet=cfg.quiet, patience=cfg.best_of_n.patience)
    check, acts, sentence = verdict()
    print(f"rollouts: {successes} successful and {failures} failed episodes. {sentence}")
    save_critic(cfg.out, iql, {**compat, "chunk": base.chunk, "act_dim": base.act_dim, "obs_dim": spec.obs_dim,
                               "critic_obs_dim": features.dim,
                               "candidates": cfg.best_of_n.candidates, "iql": to_jsonable(icfg),
                               "critic_check": check.to_dict(), "critic_acts": acts})
    return last
