"""The loop every online algorithm shares: act, step envs, learn, evaluate, log, checkpoint, resume.

An algorithm supplies `reward_kind`, `episode_end` (`postbc.envs.episodes`: how its training
episodes end), `metric_names`, `act(obs, env_steps) -> chunks`, `observe(ChunkStep)`,
`update(env_steps) -> {name: tensor}` (empty when it did not learn), `eval_policy()` (an object
`postbc.evaluation.evaluate` can run; `eval_policies()`, when present, names several by their
metrics prefix, "eval" first), `state() -> (tensors, meta)`, `load_state(tensors, meta)` and
`export() -> tensors` (the finetuned weights). An off-policy algorithm may set
`learns_while_envs_step = True`: with env worker processes its update then runs while they
execute the chunk just sent (the update sees the replay up to the previous chunk), so learner and
simulators share the cores instead of taking turns.

Evaluation always runs episodes that end at success (success counted at its first occurrence),
whatever the training episodes do. The row at env step 0 also evaluates the pretrained policy
itself (`pretrained_*` columns), with the same episode seeds: every curve starts from it.

Resume: `checkpoints/last` (`postbc.io.resume.RunCheckpoint`) holds the algorithm state (networks,
optimizers, replay), RNG states and counters; a restarted run loads it, drops metrics rows written
after it, and continues. `wall_time` and `cpu_time` (of the training process and its joined
children: env worker processes count once they are closed) are carried across resumes, so the
last row says what the whole run cost.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from postbc.envs.registry import TaskSpec
from postbc.envs.vector import episode_seed
from postbc.errors import NonFiniteLoss
from postbc.evaluation.episodes import evaluate
from postbc.finetune.chunk_env import ChunkEnv, ChunkStep
from postbc.io.checkpoint import save_checkpoint
from postbc.io.resume import RunCheckpoint
from postbc.io.runs import MetricsLogger
from postbc.utils import cpu_seconds, progress, show

ENV_SEED_STREAM = 2
EVAL_SEED_STREAM = 3


class Algorithm(Protocol):
    reward_kind: str
    episode_end: str
    metric_names: tuple[str, ...]
    np_rng: np.random.Generator

    def act(self, obs: np.ndarray, env_steps: int) -> np.ndarray: ...
    def observe(self, step: ChunkStep) -> None: ...
    def update(self, env_steps: int) -> dict[str, torch.Tensor]: ...
    def eval_policy(self) -> Any: ...
    def state(self) -> tuple[dict[str, torch.Tensor], dict]: ...
    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None: ...
    def export(self) -> dict[str, torch.Tensor]: ...


class Trainer:
    """Runs one algorithm on one task into one run directory (see module docstring)."""

    def __init__(self, algo: Algorithm, spec: TaskSpec, out: Path, *, steps: int, num_envs: int, chunk: int,
                 seed: int, eval_every: int, eval_episodes: int, checkpoint_every: int, compat: dict,
                 backend: str = "auto", quiet: bool = False, pretrained: Any = None):
        self.algo, self.spec, self.out = algo, spec, Path(out)
        self.pretrained = pretrained
        self.steps, self.num_envs, self.chunk, self.seed = steps, num_envs, chunk, seed
        self.eval_every, self.eval_episodes, self.checkpoint_every = eval_every, eval_episodes, checkpoint_every
        self.compat, self.backend, self.quiet = compat, backend, quiet
        self.ckpt = self.out / "checkpoints" / "last"
        self.checkpoint = RunCheckpoint(self.ckpt, compat, np_rng=algo.np_rng)

    def _save(self, env_steps: int, updates: int, wall: float, cpu: float, crashes: int) -> None:
        tensors, algo_meta = self.algo.state()
        self.checkpoint.save(tensors, {"env_steps": env_steps, "updates": updates, "wall_time": wall, "cpu_time": cpu,
                                       "env_crashes": crashes, "algo": algo_meta}, where=f"env step {env_steps}")

    def _load(self) -> tuple[int, int, float, float, int]:
        """The checkpoint's counters; `cpu_time` is NaN (unknown, not 0) for checkpoints written before it was kept."""
        tensors, meta = self.checkpoint.load()
        self.algo.load_state(tensors, meta["algo"])
        return (meta["env_steps"], meta["updates"], meta["wall_time"], meta.get("cpu_time", math.nan),
                meta["env_crashes"])

    def run(self, resuming: bool, stop_at: int | None = None) -> dict[str, float]:
        """Train to `steps` env steps. `stop_at` ends the process-equivalent of a kill (tests only)."""
        env_steps = updates = crashes = 0
        wall0 = cpu0 = 0.0
        loaded = resuming and self.checkpoint.exists()
        if loaded:
            env_steps, updates, wall0, cpu0, crashes = self._load()
        # a run resumed from an older version's metrics.csv keeps its columns (without cpu_time)
        logger = MetricsLogger(self.out, step_key="env_steps", resume_step=env_steps if loaded else None,
                               keep_old_header=loaded)
        env = ChunkEnv(self.spec, self.num_envs, self.chunk, episode_seed(self.seed, env_steps, ENV_SEED_STREAM),
                       self.algo.reward_kind, self.backend, getattr(self.algo, "episode_end", "success"))
        t0 = time.perf_counter() - wall0
        cpu_start = cpu_seconds() - cpu0  # like wall_time, CPU time is carried across resumes
        acc: dict[str, list[torch.Tensor]] = defaultdict(list)
        finished: list[bool] = []
        last = {}
        if env_steps == 0:
            last = self._log(logger, 0, updates, time.perf_counter() - t0, cpu_seconds() - cpu_start, finished, acc,
                             crashes)
        next_eval = (env_steps // self.eval_every + 1) * self.eval_every
        next_ckpt = (env_steps // self.checkpoint_every + 1) * self.checkpoint_every
        bar = progress(range(self.steps), desc=f"finetune {self.spec.name}", total=self.steps, quiet=self.quiet)
        bar.update(env_steps)
        try:
            # in-process envs gain nothing from it: keep their runs in the plain order
            overlap = getattr(self.algo, "learns_while_envs_step", False) and env.vec.backend == "async"
            while env_steps < self.steps:
                chunks = self.algo.act(env.obs, env_steps)
                env.step_async(chunks)
                if overlap:  # off-policy: learn from what is stored while the env workers run this chunk
                    metrics = self.algo.update(env_steps)
                res = env.step_wait()
                self.algo.observe(res)
                env_steps += int(res.steps.sum())
                bar.update(int(res.steps.sum()))
                finished += res.finished
                if not overlap:
                    metrics = self.algo.update(env_steps)
                if metrics:
                    updates += 1
                    metrics = {k: v.detach().float().cpu() for k, v in metrics.items()}  # one copy per update
                    if not bool(torch.isfinite(torch.stack(list(metrics.values()))).all()):
                        bad = [k for k, v in metrics.items() if not torch.isfinite(v).all()]
                        raise NonFiniteLoss(
                            f"non-finite {', '.join(bad)} at env step {env_steps} (update {updates}); the run stopped and "
                            f"the last good checkpoint {self.ckpt} is kept. Lower the learning rate or check the rewards, "
                            "then start the same command again to resume from it")
                    for k, v in metrics.items():
                        acc[k].append(v)
                if stop_at is not None and env_steps >= stop_at:
                    return last
                done = env_steps >= self.steps
                if env_steps >= next_eval or done:
                    last = self._log(logger, env_steps, updates, time.perf_counter() - t0, cpu_seconds() - cpu_start,
                                     finished, acc, crashes + env.crashes)
                    show(bar, success=last["eval_success"], critic_loss=last.get("critic_loss"),
                         value_loss=last.get("value_loss"))
                    finished, acc = [], defaultdict(list)
                    next_eval = (env_steps // self.eval_every + 1) * self.eval_every
                if env_steps >= next_ckpt or done:
                    self._save(env_steps, updates, time.perf_counter() - t0, cpu_seconds() - cpu_start,
                               crashes + env.crashes)
                    next_ckpt = (env_steps // self.checkpoint_every + 1) * self.checkpoint_every
        finally:
            env.close()
            logger.close()
            getattr(bar, "close", lambda: None)()
        save_checkpoint(self.out / "finetuned", self.algo.export(), {"compat": self.compat, "env_steps": env_steps})
        return last

    def _evaluate(self, policy):
        return evaluate(policy, self.spec, self.eval_episodes, seed=episode_seed(self.seed, 0, EVAL_SEED_STREAM),
                        num_envs=self.num_envs, backend=self.backend, quiet=True)

    def _log(self, logger, env_steps, updates, wall, cpu, finished, acc, crashes) -> dict[str, float]:
        policies = self.algo.eval_policies() if hasattr(self.algo, "eval_policies") else {"eval": self.algo.eval_policy()}
        if self.pretrained is not None and env_steps == 0:  # later rows leave the pretrained_* columns empty
            policies["pretrained"] = self.pretrained
        results = {prefix: self._evaluate(policy) for prefix, policy in policies.items()}
        row: dict[str, Any] = {
            "env_steps": env_steps, "wall_time": wall, "cpu_time": cpu, "updates": updates,
            "train_success": float(np.mean(finished)) if finished else math.nan, "train_episodes": len(finished),
            "eval_length": results["eval"].mean_length, "env_crashes": crashes,
        }
        for prefix, res in results.items():
            row.update({f"{prefix}_success": res.success_rate, f"{prefix}_low": res.ci_low, f"{prefix}_high": res.ci_high})
            row.update(res.task_columns(prefix, self.spec.tasks))  # multi-task envs: success per task
        for k in self.algo.metric_names:
            row[k] = float(torch.stack(acc[k]).float().mean()) if acc.get(k) else math.nan
        logger.log(row)
        return row
