"""Sweep stage: evaluate a policy run directory and write eval.json + metrics.csv.

Not a `postbc` subcommand of its own; the sweep runs it after each pretraining stage so the
report can show pretrained success next to finetuning curves, and (with `evaluate.final_episodes`)
after each finetuning stage on the finetuned run, for the final point's many-episode evaluation (a DSRL /
DSRL-NA run: its served deterministic actor in eval.json, and its stochastic actor, the reference's
evaluation, on the same episodes in eval_stochastic.json).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from postbc.finetune.config import DSRL_ACTORS
from postbc.io.config import require_positive

# Where each DSRL actor's evaluation goes: its metrics.csv columns' prefix (as in a finetune run's) and its JSON file.
ACTOR_OUTPUTS = {"deterministic": ("eval", "eval.json"), "stochastic": ("eval_stochastic", "eval_stochastic.json")}


@dataclasses.dataclass
class EvalPretrainedConfig:
    policy: Path
    """policy run directory: a pretrained one (policy.safetensors / policy.json) or a finetuned run."""
    task: str
    """registered task to evaluate on."""
    out: Path
    """directory for config.json, eval.json and metrics.csv."""
    episodes: int = 50
    """evaluation episodes."""
    num_envs: int = 1
    """parallel envs."""
    seed: int = 1000
    """evaluation seed."""
    stochastic_actor: bool = False
    """DSRL / DSRL-NA runs: also evaluate the stochastic actor on the same episodes (eval_stochastic.json)."""

    def __post_init__(self) -> None:
        require_positive("episodes", self.episodes)
        require_positive("num_envs", self.num_envs)
        self.policy, self.out = Path(self.policy), Path(self.out)


def run(cfg: EvalPretrainedConfig) -> dict:
    from postbc.evaluation.command import evaluate_checkpoint
    from postbc.io.atomic import atomic_write_json
    from postbc.io.runs import MetricsLogger, prepare_run_dir

    # An evaluation keeps nothing to resume: one that was killed starts over under the config it has now.
    (cfg.out / "config.json").unlink(missing_ok=True)
    prepare_run_dir(cfg.out, cfg, command="eval_pretrained")
    row = {"env_steps": 0}
    results = {}
    for actor in DSRL_ACTORS if cfg.stochastic_actor else DSRL_ACTORS[:1]:
        _, _, evaluation = evaluate_checkpoint(cfg.policy, cfg.task, cfg.episodes, cfg.seed, cfg.num_envs, quiet=True,
                                               actor=actor)
        results[actor] = result = evaluation.to_dict()
        prefix = ACTOR_OUTPUTS[actor][0]
        row.update({f"{prefix}_success": result["success_rate"], f"{prefix}_low": result["ci_low"],
                    f"{prefix}_high": result["ci_high"], f"{prefix}_length": result["mean_length"]})
        label = "" if actor == "deterministic" else f" ({actor} actor)"
        print(f"{cfg.policy}{label}: success {result['success_rate']:.1%} over {cfg.episodes} episodes")
    MetricsLogger(cfg.out, step_key="env_steps", resume_step=-1, tensorboard=False).log(row)
    for actor, result in results.items():
        atomic_write_json(cfg.out / ACTOR_OUTPUTS[actor][1], result)
    return results["deterministic"]
