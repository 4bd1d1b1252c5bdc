"""Settings of `postbc demo`: which task it runs and how big each phase is.

The default is the toy task: it is where finetuning visibly improves a pretrained policy within the
15-minute budget on 2 cores, and where PostBC's coverage of the rare (pocket) starts can be seen.
On robosuite lift DSRL needs far more (docs/results/lift_dsrl_na.md: no gain within 80 minutes of
a run here), so `--task lift` shows the pipeline end to end, not an improvement. `--quick` runs the
toy task sized for 2 minutes (1 min 45 s of its own CPU time, measured beside other runs). Any other registered task with a scripted
expert (e.g. `can`, `mw-drawer-open`) runs with the lift preset's settings. Each `DemoConfig`
option left unset takes the preset's value.
"""

from __future__ import annotations

import dataclasses

QUICK = "quick"


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Everything that decides a demo's numbers; the demo directory's config.json records it."""

    task: str
    seed: int
    demos: int
    # pretraining, both methods (postbc.pretrain.command.PretrainConfig)
    epochs: int
    hidden: int
    batch_size: int
    lr: float
    ensemble_size: int
    ensemble_epochs: int
    alpha: float
    # evaluation of the pretrained policies
    eval_episodes: int
    eval_envs: int
    env_backend: str  # sync: in-process envs (toy); auto: one worker process per env (simulators)
    # DSRL-SAC finetuning, both methods (postbc.finetune.config.FinetuneConfig / SACConfig)
    finetune_steps: int
    eval_every: int
    finetune_eval_episodes: int
    finetune_envs: int
    warmup: int
    sac_utd: int
    sac_hidden: int
    sac_precision: str
    # toy only: rare and common probe states of the action-spread diagnostic
    probe_states: int = 64
    # DSRL's training episodes: "success" (end at success, no entropy backup) or "horizon" (the reference's);
    # docs/finetuning.md "Which objective"
    episode_end: str = "success"
    # toy only: episodes per start region (pocket, common) and policy for the by-region success table
    region_episodes: int = 200


TOY = DemoSettings(
    task="toy", seed=0, demos=20, epochs=2000, hidden=128, batch_size=64, lr=3e-3, ensemble_size=32,
    ensemble_epochs=200, alpha=1.0, eval_episodes=200, eval_envs=25, env_backend="sync",
    finetune_steps=20_000, eval_every=4000, finetune_eval_episodes=100, finetune_envs=4, warmup=1000,
    sac_utd=4, sac_hidden=128, sac_precision="fp32",
)
PRESETS: dict[str, DemoSettings] = {
    QUICK: dataclasses.replace(
        TOY, epochs=600, ensemble_size=16, ensemble_epochs=100, eval_episodes=100, finetune_steps=8000,
        eval_every=4000, finetune_eval_episodes=50, warmup=500, region_episodes=50, sac_utd=2,
    ),
    "toy": TOY,
    # pretraining as configs/baseline_lift.toml (5 demos: BC 0.835, PostBC 0.810 pretrained success)
    "lift": DemoSettings(
        task="lift", seed=0, demos=5, epochs=1000, hidden=256, batch_size=64, lr=1e-3, ensemble_size=100,
        ensemble_epochs=300, alpha=1.0, eval_episodes=50, eval_envs=2, env_backend="auto",
        finetune_steps=8000, eval_every=4000, finetune_eval_episodes=30, finetune_envs=2, warmup=1000,
        sac_utd=4, sac_hidden=256, sac_precision="fp32",
    ),
}
FALLBACK = "lift"  # settings for any other task with a scripted expert


def choose_task(task: str, quick: bool) -> str:
    """The task a demo runs: `--quick` -> toy, else the one asked for (default toy)."""
    return "toy" if quick else task


def preset_for(task: str, quick: bool) -> DemoSettings:
    if quick:
        return PRESETS[QUICK]
    return dataclasses.replace(PRESETS.get(task, PRESETS[FALLBACK]), task=task)


def overridable() -> tuple[str, ...]:
    """DemoSettings fields a DemoConfig option may override (all but the task)."""
    return tuple(f.name for f in dataclasses.fields(DemoSettings) if f.name != "task")
