"""Sweep stage: evaluate a policy run directory and write eval.json + metrics.csv.

Not a `postbc` subcommand of its own; the sweep runs it after each pretraining stage so the
report can show pretrained success next to finetuning curves, and (with `evaluate.final_episodes`)
after each finetuning stage on the finetuned run, for the final point's many-episode evaluation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from postbc.io.config import require_positive


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

    def __post_init__(self) -> None:
        require_positive("episodes", self.episodes)
        require_positive("num_envs", self.num_envs)
        self.policy, self.out = Path(self.policy), Path(self.out)


def run(cfg: EvalPretrainedConfig) -> dict:
    from postbc.evaluation.command import evaluate_checkpoint
    from postbc.io.atomic import atomic_write_json
    from postbc.io.runs import MetricsLogger, prepare_run_dir

    prepare_run_dir(cfg.out, cfg, command="eval_pretrained")
    _, _, evaluation = evaluate_checkpoint(cfg.policy, cfg.task, cfg.episodes, cfg.seed, cfg.num_envs, quiet=True)
    result = evaluation.to_dict()
    logger = MetricsLogger(cfg.out, step_key="env_steps", resume_step=-1, tensorboard=False)
    logger.log({"env_steps": 0, "eval_success": result["success_rate"], "eval_low": result["ci_low"],
                "eval_high": result["ci_high"], "eval_length": result["mean_length"]})
    atomic_write_json(cfg.out / "eval.json", result)
    print(f"{cfg.policy}: success {result['success_rate']:.1%} over {cfg.episodes} episodes")
    return result
