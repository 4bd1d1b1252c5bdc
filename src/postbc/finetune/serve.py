"""Serve a finished finetune run: `load_finetuned_policy(RUN)` acts like a `PretrainedPolicy`.

A `postbc finetune` run directory names its algorithm and pretrained checkpoint in config.json and,
once finished, holds what the algorithm exported: `finetuned.*` (DSRL / DSRL-NA: the noise actor
`actor.*`; DPPO: the split denoiser `policy.*`) or `critic.*` (Best-of-N, also written by
`postbc best-of-n-fit`). Each algorithm module rebuilds its own serving object from those tensors;
this module finds the files and the base policy, checks they fit, and dispatches:

| algo | served policy |
|---|---|
| dsrl, dsrl_na | `SteeredPolicy(base, actor's deterministic noise)`, as the run's own `eval_success`; with `actor="stochastic"` the actor's sampled noise (eps from evaluation's seeded noise), as its `eval_stochastic_success` and the reference's evaluation |
| dppo | the finetuned diffusion policy's stochastic DDPM sampler (min std, seeded noise), as the run's evaluation |
| best_of_n | `BestOfNPolicy`: argmax of the critic over N chunks sampled from the base |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError
from postbc.finetune.config import DSRL_ACTORS, NOISE_ACTOR_ALGOS

FINETUNE_COMMANDS = ("finetune", "best-of-n-fit")


def run_record(run_dir: Path) -> dict | None:
    """The run's config.json record ({"command", "config"}) when `run_dir` is a finetune run directory, else None."""
    path = Path(run_dir) / "config.json"
    if not (Path(run_dir).is_dir() and path.is_file()):
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PostBCError(f"{path} is not valid JSON ({e}); the run directory is damaged") from e
    return record if isinstance(record, dict) and record.get("command") in FINETUNE_COMMANDS else None


def is_finetune_run(path: Path) -> bool:
    return run_record(path) is not None


class FinetunedPolicy:
    """A finetuned policy with the interface of `PretrainedPolicy` that evaluation uses.

    `act(obs_flat (B, obs_dim) raw) -> (B, chunk, act_dim)` raw actions (no `noise` argument: the
    algorithm's policy draws or computes its own). Obs keys, sizes, `env_args` and `check_task`
    are the base policy's; `algo`, `run_dir` and `task` (the task it was finetuned on) describe the run.
    """

    def __init__(self, inner: Any, base: Any, algo: str, run_dir: Path, task: str | None):
        self.inner, self.base, self.algo, self.run_dir, self.task = inner, base, algo, Path(run_dir), task
        # Only DSRL's stochastic actor takes evaluation's noise (its eps); the others draw or compute their own.
        self.takes_noise = bool(getattr(inner, "takes_noise", False))
        self.obs_keys = getattr(base, "obs_keys", None)
        self.obs_dims = getattr(base, "obs_dims", None)
        self.env_args = dict(getattr(base, "env_args", None) or {})

    @property
    def chunk(self) -> int:
        return int(self.base.chunk)

    @property
    def act_dim(self) -> int:
        return int(self.base.act_dim)

    @property
    def obs_dim(self) -> int:
        return int(self.base.obs_dim)

    def act(self, obs_flat: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        obs = np.asarray(obs_flat, np.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise PostBCError(f"finetuned policy {self.run_dir}: act expects observations of shape (B, {self.obs_dim}) "
                              f"(keys {list(self.obs_keys or [])} flattened), got {obs.shape}")
        if noise is not None and not self.takes_noise:
            raise PostBCError(f"finetuned policy {self.run_dir} ({self.algo}) draws its own noise; call act(obs) without noise=")
        actions = self.inner.act(obs) if noise is None else self.inner.act(obs, noise=noise)
        return np.asarray(actions, np.float32)

    def check_task(self, spec: TaskSpec) -> None:
        from postbc.finetune.base import check_policy_task

        check_policy_task(self.base, spec, f"the base policy of {self.run_dir}")


def load_finetuned_policy(run_dir: Path, base: Any = None, *, seed: int | None = None,
                          candidates: int | None = None, device: Any = None,
                          actor: str = "deterministic") -> FinetunedPolicy:
    """The policy a finished `postbc finetune` (or `postbc best-of-n-fit`) run directory serves.

    `base`: the pretrained policy it was finetuned from, as an object (`PretrainedPolicy`) or a
    path; default: the `checkpoint` recorded in the run's config.json.
    `seed`: sampling noise of DPPO and Best-of-N (default: what the run's own evaluation used:
    DPPO's fixed evaluation seed, Best-of-N's run seed); DSRL / DSRL-NA act deterministically.
    `candidates`: Best-of-N's N (default: the run's).
    `device`: where the base policy and the finetuned networks compute (default: where `base` is; CPU
    for a base loaded from a path).
    `actor`: DSRL / DSRL-NA runs: "deterministic" (served, w = m tanh(mu(s))) or "stochastic" (w sampled
    from the actor; `act(obs, noise=eps)` takes its eps, so evaluation's seeded noise makes it
    reproducible; the reference reports this one).
    """
    if actor not in DSRL_ACTORS:
        raise PostBCError(f"actor {actor!r} is not one of {', '.join(DSRL_ACTORS)}")
    run_dir = Path(run_dir)
    record = run_record(run_dir)
    if record is None:
        raise PostBCError(f"{run_dir} is not a finetune run directory (no config.json written by `postbc finetune` or "
                          "`postbc best-of-n-fit`); pass the --out directory of a finetune run")
    cfg = recorded_config(record, run_dir)
    algo = getattr(cfg, "algo", "best_of_n")  # best-of-n-fit has no --algo
    if actor != "deterministic" and algo not in NOISE_ACTOR_ALGOS:
        raise PostBCError(f"the {actor} actor is DSRL's noise actor; {run_dir} is a {algo} run, whose policy has no "
                          "such choice: drop the actor option")
    stem = run_dir / ("critic" if algo == "best_of_n" else "finetuned")
    meta = _finished_meta(stem, record, run_dir)
    compat = meta.get("compat", meta)  # finetuned.* nests it; critic.* holds the sizes at the top level
    base = _base(base, getattr(cfg, "checkpoint", None), run_dir)
    _check_base(base, compat, stem)
    if device is not None and hasattr(base, "to"):
        base.to(device)
    source = f"finetuned weights {stem}.safetensors"
    if algo in NOISE_ACTOR_ALGOS:
        from postbc.finetune.dsrl import load_steered_policy
        from postbc.io.checkpoint import load_checkpoint

        inner = load_steered_policy(load_checkpoint(stem)[0], cfg.sac, base, source, stochastic=actor == "stochastic")
    elif algo == "dppo":
        from postbc.finetune.dppo import EVAL_NOISE_SEED, load_dppo_policy
        from postbc.io.checkpoint import load_checkpoint

        inner = load_dppo_policy(load_checkpoint(stem)[0], cfg.dppo, base, source,
                                 EVAL_NOISE_SEED if seed is None else seed)
    else:
        from postbc.finetune.best_of_n import load_best_of_n_policy

        inner = load_best_of_n_policy(run_dir, base, candidates, cfg.seed if seed is None else seed)
    return FinetunedPolicy(inner, base, algo, run_dir, compat.get("task"))


def recorded_config(record: dict, run_dir: Path):
    from postbc.io.config import from_jsonable

    if record["command"] == "finetune":
        from postbc.finetune.config import FinetuneConfig as cls
    else:
        from postbc.finetune.best_of_n_fit import BestOfNFitConfig as cls
    try:
        return from_jsonable(cls, record.get("config") or {}, recorded=True)
    except (TypeError, ValueError) as e:
        raise PostBCError(f"{run_dir / 'config.json'} does not hold a valid {cls.__name__} ({e}); it was written by "
                          "another postbc version: serve it with that version, or finetune again") from e


def _finished_meta(stem: Path, record: dict, run_dir: Path) -> dict:
    """The finetuned checkpoint's JSON meta; refuses an unfinished run, saying how to finish it."""
    from postbc.io.checkpoint import checkpoint_exists, checkpoint_paths

    if not checkpoint_exists(stem):
        weights, meta_path = checkpoint_paths(stem)
        last = run_dir / "checkpoints" / "last.json"
        resume = (f"resume it from checkpoints/last{_progress(last)} and finish it" if last.is_file()
                  else "finish it (it wrote no checkpoint yet)")
        raise PostBCError(f"{run_dir} holds no {meta_path.name} / {weights.name}: the finetune run has not finished; "
                          f"start the same `postbc {record['command']} ... --out {run_dir}` command again to {resume}")
    try:
        return json.loads(checkpoint_paths(stem)[1].read_text())["meta"]
    except (json.JSONDecodeError, KeyError) as e:
        raise PostBCError(f"{checkpoint_paths(stem)[1]} is damaged ({e}); finetune again") from e


def _progress(last_json: Path) -> str:
    """A resume checkpoint's progress as ' (env step N)' or ' (update N)'; '' when its JSON cannot be read."""
    try:
        meta = json.loads(last_json.read_text())["meta"]
        return f" (env step {meta['env_steps']})" if "env_steps" in meta else f" (update {meta['updates']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return ""


def _base(base: Any, checkpoint: Path | None, run_dir: Path):
    from postbc.policies.pretrained import PretrainedPolicy

    if base is not None and not isinstance(base, (str, Path)):
        return base
    fix = (f"pass the pretrained policy explicitly: load_finetuned_policy({str(run_dir)!r}, base=PRETRAIN_RUN) or "
           f"`postbc eval --checkpoint {run_dir} --base PRETRAIN_RUN`")
    if base is None:
        if checkpoint is None:
            raise PostBCError(f"{run_dir / 'config.json'} names no pretrained checkpoint (no 'checkpoint'); {fix}")
        path = _recorded_checkpoint(Path(checkpoint), run_dir)
        if path is None:
            raise PostBCError(f"the pretrained checkpoint {checkpoint} named in {run_dir / 'config.json'} ('checkpoint') "
                              f"is missing (moved or deleted?); {fix}")
        base = path
    return PretrainedPolicy.load(Path(base))


def _recorded_checkpoint(path: Path, run_dir: Path) -> Path | None:
    """Where the recorded pretrained checkpoint is now, or None.

    A relative path was recorded as typed, relative to the directory `postbc finetune` (or a sweep)
    ran in, which is often an ancestor of the run directory (`runs/SWEEP/finetune/RUN` records
    `runs/SWEEP/pretrain/...`): try the current directory first, then each ancestor of the run.
    A wrong match is caught later by the base-weights hash.
    """
    from postbc.io.checkpoint import checkpoint_paths

    roots = [Path()] if path.is_absolute() else [Path(), *Path(run_dir).resolve().parents]
    for root in roots:
        candidate = root / path
        if candidate.exists() or checkpoint_paths(candidate)[1].exists():  # a run directory, a file or a stem
            return candidate
    return None


def _check_base(base: Any, compat: dict, stem: Path) -> None:
    """The base policy must have the obs / action sizes and chunk the finetuned weights were made for."""
    from postbc.finetune.base import check_base_fingerprint, check_chunk

    source = f"{stem}.json"
    for what, key, mine in (("obs dim", "obs_dim", base.obs_dim), ("action dim", "act_dim", base.act_dim)):
        if key in compat and int(compat[key]) != int(mine):
            raise PostBCError(f"{source} was finetuned with {what} {compat[key]}, the base policy has {what} {mine}; "
                              "pass the pretrained policy the run was finetuned from")
    if "chunk" in compat:
        check_chunk(base.chunk, compat["chunk"], "finetune run", source)
    check_base_fingerprint(base, compat.get("base_weights"), source)
