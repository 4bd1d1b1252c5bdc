"""A sweep as a DAG of stages: collect -> pretrain -> (evaluate, finetune per algorithm -> final evaluation).

Upstream stages are shared: one dataset per (task, demos, data seed) serves every method and
seed, and one pretrained policy per (task, demos, method, seed) serves every finetuning
algorithm. Each stage runs one command (`module`, `config_class`, `config`) in its own directory,
named by its parameters:

    SWEEP/data/toy-d5-s0/demos.hdf5
    SWEEP/pretrain/toy-d5-postbc-s0/
    SWEEP/eval/toy-d5-postbc-s0/
    SWEEP/finetune/toy-d5-postbc-dsrl-s0/
    SWEEP/final/toy-d5-postbc-dsrl-s0/      (when evaluate.final_episodes > 0)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from postbc.experiments import markers
from postbc.experiments.config import SweepConfig
from postbc.experiments.eval_pretrained import ACTOR_OUTPUTS
from postbc.finetune.config import NOISE_ACTOR_ALGOS

KINDS = ("collect", "pretrain", "eval", "finetune", "final")
DEVICE_KINDS = ("pretrain", "finetune")  # stages whose networks may compute on a GPU; collect and eval are env-bound


@dataclasses.dataclass(frozen=True)
class Stage:
    """One command run of a sweep; plain data, so it can be sent to a worker process."""

    name: str  # unique in the sweep, e.g. "pretrain/toy-d5-postbc-s0"
    kind: str
    dir: Path  # where the markers (DONE.json / FAILED.json) and the command's outputs live
    module: str
    config_class: str
    config: dict[str, Any]  # JSON-able keyword arguments of `config_class`
    params: dict[str, Any]  # grid coordinates, for the report
    deps: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # files a finished stage holds under this config (see `stage_complete`)
    extendable: tuple[str, ...] = ()  # budget options (config keys) that may grow after the stage finished
    dep_dirs: tuple[Path, ...] = ()  # the directories of `deps`, filled by `with_dep_dirs`

    @property
    def uses_device(self) -> bool:
        """Whether the stage trains networks (and so takes a GPU when the sweep gives it one)."""
        return self.kind in DEVICE_KINDS


def data_name(task: str, demos: int, data_seed: int) -> str:
    return f"{task}-d{demos}-s{data_seed}"


def policy_name(task: str, demos: int, method: str, seed: int) -> str:
    return f"{task}-d{demos}-{method}-s{seed}"


def finetune_name(task: str, demos: int, method: str, algo: str, seed: int) -> str:
    return f"{task}-d{demos}-{method}-{algo}-s{seed}"


def plan_sweep(cfg: SweepConfig, root: Path) -> list[Stage]:
    """Every stage of the sweep rooted at `root`, each after the stages it depends on."""
    root = Path(root)
    g = cfg.grid
    stages: list[Stage] = []
    for task in g.tasks:
        for demos in g.demos_for(task):
            data_dir = root / "data" / data_name(task, demos, g.data_seed)
            collect = Stage(
                name=f"data/{data_dir.name}", kind="collect", dir=data_dir,
                module="postbc.experts.command", config_class="CollectConfig",
                # A collect that did not finish starts over: its partial file is replaced.
                config={"task": task, "episodes": demos, "out": str(data_dir / "demos.hdf5"), "seed": g.data_seed,
                        "operator": cfg.collect.operator, "max_attempts": cfg.collect.max_attempts,
                        "hold_steps": cfg.collect.hold_steps, "overwrite": True, "quiet": True},
                params={"task": task, "demos": demos, "data_seed": g.data_seed},
            )
            stages.append(collect)
            for method in g.methods:
                for seed in g.seeds:
                    stages += _policy_stages(cfg, root, collect, task, demos, method, seed)
    return with_dep_dirs(stages)


def with_dep_dirs(stages: list[Stage]) -> list[Stage]:
    """The stages with `dep_dirs` filled from their deps' names (every dep must be among `stages`)."""
    dirs = {s.name: s.dir for s in stages}
    return [dataclasses.replace(s, dep_dirs=tuple(dirs[d] for d in s.deps)) for s in stages]


def _policy_stages(cfg: SweepConfig, root: Path, collect: Stage, task: str, demos: int, method: str,
                   seed: int) -> list[Stage]:
    name = policy_name(task, demos, method, seed)
    params = {"task": task, "demos": demos, "method": method, "seed": seed}
    pretrain_dir = root / "pretrain" / name
    pretrain = Stage(
        name=f"pretrain/{name}", kind="pretrain", dir=pretrain_dir,
        module="postbc.pretrain.command", config_class="PretrainConfig",
        config={**cfg.pretrain_options(task), "method": method, "dataset": collect.config["out"],
                "out": str(pretrain_dir), "seed": seed, "quiet": True},
        params=params, deps=(collect.name,),
    )
    evaluate = eval_stage(cfg, root / "eval" / name, "eval", pretrain_dir, task, cfg.evaluate.episodes, params, pretrain.name)
    stages = [pretrain, evaluate]
    for algo in cfg.grid.algos:
        ft_name = finetune_name(task, demos, method, algo, seed)
        ft_dir = root / "finetune" / ft_name
        finetune = Stage(
            name=f"finetune/{ft_name}", kind="finetune", dir=ft_dir,
            module="postbc.finetune.command", config_class="FinetuneConfig",
            config={**cfg.finetune_options(task, algo), "checkpoint": str(pretrain_dir), "task": task, "out": str(ft_dir),
                    "algo": algo, "seed": seed, "quiet": True},
            params={**params, "algo": algo}, deps=(pretrain.name,), extendable=("steps",),
        )
        stages.append(finetune)
        if cfg.evaluate.final_episodes:
            stages.append(eval_stage(cfg, root / "final" / ft_name, "final", ft_dir, task, cfg.evaluate.final_episodes,
                                     finetune.params, finetune.name, stochastic_actor=algo in NOISE_ACTOR_ALGOS))
    return stages


def stage_complete(stage: Stage) -> bool:
    """Whether a finished stage stands as it is. Not when it is not DONE; nor when it lacks an output its config
    writes now (a DSRL final evaluation from before it evaluated the stochastic actor); nor when its config
    asks a larger budget than it ran (`extendable`: a finetuning run whose `steps` grew continues from its
    checkpoints); nor when a stage it read finished after it started (the final evaluation of a run that
    has since been extended, the evaluation of a policy pretrained again)."""
    done = markers.read_marker(stage.dir, markers.DONE)
    if done is None or not all((stage.dir / name).exists() for name in stage.outputs):
        return False
    if grown_budgets(stage, done.get("config", {})):
        return False
    started = done.get("finished_at", 0.0) - done.get("wall_time_s", 0.0)
    return not any(upstream.get("finished_at", 0.0) > started
                   for upstream in (markers.read_marker(d, markers.DONE) for d in stage.dep_dirs) if upstream)


def grown_budgets(stage: Stage, ran: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(ran, asked) of each `extendable` budget that the stage's config asks larger than `ran` (the config of the run
    it finished) had."""
    return [(ran[key], stage.config[key]) for key in stage.extendable
            if key in ran and key in stage.config and ran[key] < stage.config[key]]


def eval_stage(cfg: SweepConfig, out: Path, kind: str, policy_dir: Path, task: str, episodes: int,
               params: dict[str, Any], dep: str, stochastic_actor: bool = False) -> Stage:
    """Evaluate the policy in `policy_dir` (pretrained or finetuned) on the sweep's evaluation seed (`stochastic_actor`:
    a DSRL run's sampled actor too, on the same episodes)."""
    return Stage(
        name=f"{kind}/{out.name}", kind=kind, dir=out,
        module="postbc.experiments.eval_pretrained", config_class="EvalPretrainedConfig",
        config={"policy": str(policy_dir), "task": task, "out": str(out), "episodes": episodes,
                "num_envs": cfg.evaluate.num_envs, "seed": cfg.evaluate.seed,
                **({"stochastic_actor": True} if stochastic_actor else {})},
        params=params, deps=(dep,),
        outputs=tuple(file for actor, (_, file) in ACTOR_OUTPUTS.items()
                      if stochastic_actor or actor == "deterministic"),
    )
