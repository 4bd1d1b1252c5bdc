"""`postbc demo`: the whole PostBC story on one task, from scripted demos to finetuned policies.

1. A scripted expert writes a few demos (robomimic HDF5).
2. BC and PostBC are pretrained on them with the same settings (`postbc.pretrain.command`).
3. Both are evaluated: success with a 95% (Wilson) interval (`evaluate_checkpoint`).
4. Both are finetuned with DSRL-SAC (`postbc.finetune.command`; training episodes end at success,
   without the entropy backup: docs/finetuning.md "Which objective"), which evaluates every
   `eval_every` env steps into its metrics.csv.
5. Coverage: how widely each pretrained policy samples actions where demos are scarce vs dense
   (`postbc.demo.coverage`); on the toy task also success from pocket (rare) and common starts,
   pretrained and finetuned (`start_regions`).
6. The results table is printed (and written to results.md), then the start-region and coverage
   tables and the per-phase wall times; demo.png shows pretrained vs finetuned success, the
   finetuning curves and (toy) success by start region.

The task and the size of every phase come from a preset (`postbc.demo.presets`): the toy task by
default, `--quick` a toy run sized for 2 minutes.

Re-running with the same --out and options reuses every finished phase (and resumes a killed
one); with other options the directory is refused, so one directory never mixes two demos.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from postbc.demo.presets import DemoSettings, choose_task, overridable, preset_for
from postbc.demo.report import MethodResult, Success
from postbc.io.config import require_device_name, require_positive

T = TypeVar("T")
METHODS = ("bc", "postbc")
TRAIN_THREADS = 1  # these networks are small: a second thread costs more in synchronisation than it gains
COVERAGE_STATES = 8  # scarce and dense demo states (each) of the posterior-std diagnostic (non-toy tasks)


@dataclasses.dataclass
class DemoConfig:
    """Collect demos, pretrain BC and PostBC, evaluate them, finetune both briefly with DSRL, and compare."""

    out: Path | None = None
    """Directory for the dataset, the run directories, the tables and the plots (re-running reuses it);
    default runs/demo, with --quick runs/demo-quick."""
    task: str = "toy"
    """toy (where finetuning improves within the demo's budget) | lift | any task with a scripted expert (lift's
    settings; on robot tasks the demo shows the pipeline, DSRL needs far longer to improve them)."""
    quick: bool = False
    """Toy task at a small size, sized for 2 minutes on 2 cores, finetuning included (too short to show gains)."""
    seed: int = 0
    """Seed of the demos, training, finetuning and evaluation."""
    demos: int | None = None
    """Demonstrations to train on (default: the preset's; toy 20, lift 5)."""
    epochs: int | None = None
    """Policy training epochs, both methods (default: the preset's)."""
    hidden: int | None = None
    """Width of the denoiser MLP (default: the preset's)."""
    ensemble_size: int | None = None
    """PostBC ensemble members (default: the preset's)."""
    ensemble_epochs: int | None = None
    """PostBC ensemble training epochs (default: the preset's)."""
    alpha: float | None = None
    """PostBC posterior noise weight (default: the preset's, 1)."""
    eval_episodes: int | None = None
    """Evaluation episodes per pretrained policy (default: the preset's)."""
    finetune_steps: int | None = None
    """DSRL-SAC env steps per method (default: the preset's)."""
    eval_every: int | None = None
    """Env steps between the finetuning runs' evaluations (default: the preset's)."""
    finetune_eval_episodes: int | None = None
    """Episodes per finetuning evaluation (default: the preset's)."""
    warmup: int | None = None
    """DSRL env steps with the base policy's own noise before learning starts (default: the preset's)."""
    probe_states: int | None = None
    """Toy task: rare and common probe states (each) at which the action spread is measured (default 64)."""
    region_episodes: int | None = None
    """Toy task: episodes per start region (pocket, common) for each pretrained and finetuned policy (default 200)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N: where pretraining, evaluation and finetuning compute (auto: CUDA when present)."""
    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        for name in ("demos", "epochs", "hidden", "ensemble_size", "ensemble_epochs", "eval_episodes", "finetune_steps",
                     "eval_every", "finetune_eval_episodes", "probe_states", "region_episodes"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name))
        for name in ("alpha", "warmup"):
            if getattr(self, name) is not None:
                require_positive(name, getattr(self, name), allow_zero=True)
        if self.ensemble_size is not None and self.ensemble_size < 2:
            raise ValueError(f"ensemble_size={self.ensemble_size} must be >= 2 for a posterior covariance")
        require_device_name("device", self.device)
        if self.quick and self.task != "toy":
            raise ValueError(f"quick runs the toy task; drop --quick to run task={self.task!r}")
        self.out = Path(self.out if self.out is not None else ("runs/demo-quick" if self.quick else "runs/demo"))

    def settings(self) -> DemoSettings:
        """The preset of the chosen task with this config's options applied."""
        preset = preset_for(choose_task(self.task, self.quick), self.quick)
        return dataclasses.replace(preset, **{name: getattr(self, name) for name in overridable()
                                              if getattr(self, name, None) is not None})


class Phases:
    """Wall time per phase, kept in phases.json so a re-run shows what the reused phases took."""

    def __init__(self, path: Path):
        self.path = path
        self.seconds: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
        self.reused: set[str] = set()
        self.order: list[str] = []  # phases in the order this run went through them

    def run(self, name: str, finished: bool, work: Callable[[], T]) -> T:
        """Run `work`, timed; when the phase `finished` earlier, `work` only loads its result."""
        from postbc.io.atomic import atomic_write_json

        t0 = time.perf_counter()
        result = work()
        self.order.append(name)
        if finished and name in self.seconds:
            self.reused.add(name)
        else:
            self.seconds[name] = time.perf_counter() - t0
            atomic_write_json(self.path, self.seconds)
        return result

    def total(self, *names: str) -> float:
        return sum(self.seconds.get(n, 0.0) for n in names)


def prepare_demo_dir(out: Path, settings: DemoSettings) -> None:
    """config.json of the demo; refuse a directory holding another demo's (or anything else's) files."""
    from postbc.errors import PostBCError
    from postbc.io.runs import prepare_run_dir

    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():
        raise PostBCError(f"{out} is not empty and holds no demo config.json (an older `postbc demo` or another command "
                          "wrote it); choose a new --out or delete the directory")
    prepare_run_dir(out, settings, command="demo")


def run(cfg: DemoConfig) -> list[MethodResult]:
    from postbc.device import resolve_device
    from postbc.envs.registry import get_task
    from postbc.experts.registry import expert_operators
    from postbc.io.checkpoint import checkpoint_exists
    from postbc.utils import is_quiet

    say = (lambda msg: None) if is_quiet(cfg.quiet) else print
    t_start = time.perf_counter()
    s = cfg.settings()
    resolve_device(cfg.device)  # refused before anything is written
    get_task(s.task)
    expert_operators(s.task)  # refuses a task without a scripted expert
    say(f"task: {s.task}" + (" (--task lift for the robot task: the pipeline end to end, too short a budget to improve "
                             "it)" if s.task == "toy" else ""))
    prepare_demo_dir(cfg.out, s)
    phases = Phases(cfg.out / "phases.json")

    dataset = cfg.out / "demos.hdf5"
    phases.run("collect", dataset.exists(), lambda: dataset.exists() or collect_demos(s, dataset, cfg.quiet))
    say(f"demos: {dataset}")
    policies, pretrained = {}, {}
    for method in METHODS:
        policies[method] = phases.run(f"pretrain {method}", checkpoint_exists(cfg.out / method / "policy"),
                                      lambda: pretrain(s, method, dataset, cfg.out / method, cfg.quiet, cfg.device))
        eval_path = cfg.out / f"{method}_eval.json"
        pretrained[method] = phases.run(f"eval {method}", eval_path.exists(),
                                        lambda: evaluate_pretrained(s, cfg.out / method, eval_path, cfg.quiet, cfg.device))
    curves = {}
    for method in METHODS:
        run_dir = cfg.out / f"{method}_dsrl"
        curves[method] = phases.run(f"finetune {method}", checkpoint_exists(run_dir / "finetuned"),
                                    lambda: finetune(s, cfg.out / method, run_dir, cfg.quiet, cfg.device))
    spread, coverage_plots = phases.run("coverage", False, lambda: coverage(s, policies, cfg.out))
    regions = (phases.run("start regions", False, lambda: start_regions(s, policies, cfg.out, cfg.device))
               if s.task == "toy" else {})

    results = []
    for method in METHODS:
        c = curves[method]
        results.append(MethodResult(
            method, pretrained[method], Success(float(c["success"][-1]), float(c["low"][-1]), float(c["high"][-1]),
                                                s.finetune_eval_episodes),
            s.finetune_steps, c, phases.total(f"pretrain {method}", f"eval {method}", f"finetune {method}"),
            spread[method], regions.get(method, {}),
        ))
    return report(results, s, phases, coverage_plots, cfg.out, time.perf_counter() - t_start)


def collect_demos(s: DemoSettings, path: Path, quiet: bool) -> None:
    """The expert's demos, written under a temporary name and renamed: a killed collection leaves no partial file."""
    from postbc.experts.collect import collect
    from postbc.io.atomic import atomic_write

    atomic_write(path, lambda tmp: collect(s.task, s.demos, tmp, seed=s.seed, overwrite=True, quiet=quiet))


def pretrain(s: DemoSettings, method: str, dataset: Path, out: Path, quiet: bool, device: str = "cpu"):
    from postbc.pretrain.command import PretrainConfig
    from postbc.pretrain.command import run as run_pretrain

    return run_pretrain(PretrainConfig(
        method=method, dataset=dataset, out=out, seed=s.seed, epochs=s.epochs, hidden=s.hidden,
        batch_size=s.batch_size, lr=s.lr, threads=TRAIN_THREADS, ensemble_size=s.ensemble_size,
        ensemble_epochs=s.ensemble_epochs, alpha=s.alpha, device=device, quiet=quiet,
    ))


def evaluate_pretrained(s: DemoSettings, run_dir: Path, path: Path, quiet: bool, device: str = "cpu") -> Success:
    """Success of a pretrained policy (its own noise ~ N(0, I)); the result is cached in `path`."""
    from postbc.evaluation.command import evaluate_checkpoint
    from postbc.io.atomic import atomic_write_json

    if not path.exists():
        _, _, result = evaluate_checkpoint(run_dir, s.task, s.eval_episodes, s.seed + 1000, s.eval_envs,
                                           backend=s.env_backend, quiet=quiet, device=device)
        atomic_write_json(path, result.to_dict())
    r = json.loads(path.read_text())
    return Success(r["success_rate"], r["ci_low"], r["ci_high"], r["episodes"])


def finetune(s: DemoSettings, checkpoint: Path, out: Path, quiet: bool, device: str = "cpu") -> dict[str, np.ndarray]:
    """DSRL-SAC from `checkpoint` (resumed or skipped when `out` holds it); its evaluations as arrays."""
    from postbc.finetune.command import run as run_finetune
    from postbc.finetune.config import FinetuneConfig, SACConfig
    from postbc.io.checkpoint import checkpoint_exists
    from postbc.io.runs import read_metrics

    if not checkpoint_exists(out / "finetuned"):
        run_finetune(FinetuneConfig(
            checkpoint=checkpoint, task=s.task, out=out, algo="dsrl", steps=s.finetune_steps, seed=s.seed,
            num_envs=s.finetune_envs, eval_every=s.eval_every, eval_episodes=s.finetune_eval_episodes,
            threads=TRAIN_THREADS, env_backend=s.env_backend, device=device, quiet=quiet,
            sac=SACConfig(hidden=s.sac_hidden, utd=s.sac_utd, warmup_steps=s.warmup, precision=s.sac_precision,
                          episode_end=s.episode_end, backup_entropy=s.episode_end == "horizon"),
        ))
    rows = [r for r in read_metrics(out) if r.get("eval_success") not in (None, "")]
    return {name: np.array([float(r[key]) for r in rows]) for name, key in
            (("env_steps", "env_steps"), ("success", "eval_success"), ("low", "eval_low"), ("high", "eval_high"))}


def start_regions(s: DemoSettings, policies: dict, out: Path, device: str) -> dict[str, dict[str, dict[str, Success]]]:
    """Toy task: {method: {"pretrained" | "after DSRL": {"pocket" | "common": Success}}} on the same episodes.

    Pocket starts are the 15% of episodes the demos barely cover: where PostBC's wider actions should
    give finetuning something to steer."""
    from postbc.device import resolve_device
    from postbc.experiments.toy_regions import evaluate_by_region
    from postbc.finetune.serve import load_finetuned_policy

    seed = s.seed + 2000
    out_regions = {}
    for method, policy in policies.items():
        finetuned = load_finetuned_policy(out / f"{method}_dsrl", device=resolve_device(device))
        out_regions[method] = {
            stage: {region: Success(r.success_rate, r.ci_low, r.ci_high, r.episodes)
                    for region, r in evaluate_by_region(p, s.region_episodes, seed).items()}
            for stage, p in (("pretrained", policy), ("after DSRL", finetuned))}
    return out_regions


def coverage(s: DemoSettings, policies: dict, out: Path) -> tuple[dict[str, dict[str, float]], list[Path]]:
    from postbc.demo.coverage import posterior_coverage, toy_coverage

    if s.task == "toy":
        return toy_coverage(policies, s.probe_states, s.seed + 1, out)
    return posterior_coverage(policies, out / "postbc", COVERAGE_STATES, s.seed + 1, out)


def report(results: list[MethodResult], s: DemoSettings, phases: Phases, plots: list[Path], out: Path,
           wall: float) -> list[MethodResult]:
    """Print the results table first, then coverage and timings; write results.md and demo.png."""
    from postbc.demo.report import format_coverage, format_phases, format_regions, format_table, plot_summary

    table = format_table(results)
    summary = plot_summary(results, s.task, s.demos, out / "demo.png")
    regions = ["Where the demos are scarce: success from the toy task's pocket starts (15% of episodes, few demos) "
               "and from its common starts (95% CI):", "", format_regions(results), ""] if results[0].regions else []
    lines = [
        f"## postbc demo: {s.task}, {s.demos} demos, seed {s.seed}", "", table, "", *regions,
        "Action spread of the pretrained policies (first action, root mean per-dimension variance):", "",
        format_coverage(results), "",
        f"Wall time per phase: {format_phases({n: phases.seconds[n] for n in phases.order}, phases.reused)}; this run {wall:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    (out / "results.md").write_text(text + "\n")
    print("\nfiles: " + ", ".join(str(p) for p in (out / "results.md", summary, *plots)))
    return results
