"""`postbc eval`: success rate of a pretrained or finetuned policy on its task, with a 95% interval."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from postbc.finetune.config import DSRL_ACTORS
from postbc.io.config import require_choice, require_device_name, require_positive


@dataclasses.dataclass
class EvalConfig:
    checkpoint: Path
    """pretraining run directory (holding policy.json / policy.safetensors), a policy checkpoint stem, or a
    finished `postbc finetune` / `postbc best-of-n-fit` run directory (its finetuned policy is evaluated)."""
    task: str | None = None
    """registered task to evaluate on; default: the task named in the (base) checkpoint's env_args."""
    base: Path | None = None
    """finetune runs only: the pretrained policy run directory the run was finetuned from; default: the
    `checkpoint` recorded in the run's config.json."""
    episodes: int = 200
    """evaluation episodes (exactly episodes 0..N-1 of the seed count)."""
    num_envs: int = 2
    """envs stepped side by side."""
    seed: int = 0
    """seed of the episodes' initial states and of the policy's sampling noise (same seed, same result;
    DSRL / DSRL-NA policies act deterministically unless --actor stochastic, DPPO and Best-of-N draw their
    noise from this seed)."""
    actor: str = "deterministic"
    """DSRL / DSRL-NA runs only: the noise actor that steers the base policy: deterministic (the served one,
    w = m tanh(mu(s))) or stochastic (w sampled from the actor, its eps seeded per episode; what the
    reference evaluates and reports)."""
    backend: str = "auto"
    """auto | async (one worker process per env) | sync (all envs in this process)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N: where the policy computes (auto: CUDA when present); envs run on CPU processes."""
    out: Path | None = None
    """also write the result (with per-episode success and length) to this JSON file."""
    frames: Path | None = None
    """also save an image strip of episode 0 to this PNG (offscreen rendering; MUJOCO_GL=egl is set if unset)."""
    quiet: bool = False
    """no progress bar."""

    def __post_init__(self) -> None:
        require_positive("episodes", self.episodes)
        require_positive("num_envs", self.num_envs)
        require_choice("backend", self.backend, ("auto", "async", "sync"))
        require_choice("actor", self.actor, DSRL_ACTORS)
        require_device_name("device", self.device)


def load_policy(checkpoint: Path, *, base: Path | None = None, seed: int | None = None, device: str = "cpu",
                actor: str = "deterministic"):
    """The policy any postbc run directory serves, on `device` (a `--device` value, refused when absent).

    `checkpoint`: a pretraining run (its `PretrainedPolicy`) or a finetune / best-of-n-fit run (its
    `FinetunedPolicy`, on `base`, default: the pretrained policy recorded in its config.json; `seed`:
    DPPO's and Best-of-N's sampling noise; `actor`: DSRL's, see `load_finetuned_policy`). Both follow
    `postbc.evaluation.episodes.ChunkPolicy`; `takes_noise` says whether evaluation may seed their noise.
    """
    from postbc.device import resolve_for_run
    from postbc.errors import PostBCError
    from postbc.finetune.serve import is_finetune_run, load_finetuned_policy
    from postbc.policies.pretrained import PretrainedPolicy

    torch_device = resolve_for_run(device)
    if is_finetune_run(checkpoint):
        return load_finetuned_policy(checkpoint, base, seed=seed, device=torch_device, actor=actor)
    if actor != "deterministic":
        raise PostBCError(f"--actor {actor} applies to DSRL / DSRL-NA finetune runs; {checkpoint} is a pretrained "
                          "policy (drop --actor)")
    if base is not None:
        raise PostBCError(f"--base applies to finetune run directories; {checkpoint} is not one (drop --base to "
                          "evaluate it as a pretrained policy)")
    return PretrainedPolicy.load(checkpoint, device=torch_device)


def evaluate_checkpoint(checkpoint: Path, task: str | None, episodes: int, seed: int, num_envs: int, *,
                        backend: str = "auto", quiet: bool = False, base: Path | None = None, device: str = "cpu",
                        actor: str = "deterministic"):
    """Load a policy (`load_policy`), check it fits `task` (default: the one it was trained for), evaluate it.

    Returns (policy, task spec, EvalResult). Shared by `postbc eval`, the demo and the sweep's eval stage.
    """
    from postbc.envs.conditioning import spec_for_policy
    from postbc.envs.compat import check_dataset_matches_task
    from postbc.envs.registry import get_task
    from postbc.errors import PostBCError
    from postbc.evaluation.episodes import evaluate

    policy = load_policy(checkpoint, base=base, seed=seed, device=device, actor=actor)
    task = task or (policy.env_args.get("env_kwargs") or {}).get("task") or getattr(policy, "task", None)
    if not task:
        raise PostBCError(f"checkpoint {checkpoint} does not name the task it was trained for; pass --task")
    spec = spec_for_policy(get_task(task), policy)
    check_dataset_matches_task(policy.env_args, policy.obs_keys, policy.act_dim, spec, obs_dims=policy.obs_dims,
                               source=f"checkpoint {checkpoint}")
    policy.check_task(spec)
    return policy, spec, evaluate(policy, spec, episodes, seed, num_envs, backend=backend, quiet=quiet)


def run(cfg: EvalConfig) -> None:
    if cfg.frames is not None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # must precede the first simulator import
    from postbc.evaluation.episodes import save_episode_strip
    from postbc.io.atomic import atomic_write_json

    policy, spec, result = evaluate_checkpoint(cfg.checkpoint, cfg.task, cfg.episodes, cfg.seed, cfg.num_envs,
                                               backend=cfg.backend, quiet=cfg.quiet, base=cfg.base, device=cfg.device,
                                               actor=cfg.actor)
    print(result.summary())
    if cfg.out is not None:
        finetuned = {"algo": policy.algo, "actor": cfg.actor} if hasattr(policy, "algo") else {}
        atomic_write_json(cfg.out, {"checkpoint": str(cfg.checkpoint), **finetuned, **result.to_dict()})
    if cfg.frames is not None:
        length = save_episode_strip(policy, spec, cfg.frames, seed=cfg.seed)
        print(f"image strip of episode 0 ({length} steps) written to {cfg.frames}")
