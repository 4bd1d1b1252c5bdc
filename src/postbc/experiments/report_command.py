"""`postbc report SWEEP_DIR`: tables, plots and a self-contained report.html from a sweep directory.

    postbc report runs/toy_tiny            # writes runs/toy_tiny/report/

Works on partial sweeps: unfinished or failed stages are listed with their status and left out
of the aggregates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import tyro

from postbc.io.config import require_positive, require_range


@dataclasses.dataclass
class ReportConfig:
    sweep_dir: Annotated[Path, tyro.conf.Positional]
    """directory written by `postbc sweep`."""
    out: Path | None = None
    """report directory (default: SWEEP_DIR/report)."""
    budgets: int = 4
    """finetuning budgets (logged steps, evenly spaced) shown in the finetuning table."""
    thresholds: tuple[float, ...] = (0.5, 0.9)
    """success thresholds of the steps-to-threshold table (first evaluation at or above each, per seed)."""
    coverage_states: int = 2
    """action-density plots: this many data-scarce and this many data-dense states."""
    samples: int = 256
    """actions sampled per state for the density plots."""
    seed: int = 0
    """seed of the sampled actions."""
    coverage: bool = True
    """draw the coverage diagnostics (needs finished postbc, and bc or sigma_bc, pretraining runs)."""
    region_episodes: int = 200
    """toy task only: evaluate every policy on this many pocket-only and common-only starts (0: skip)."""
    critic_vs_returns: bool = True
    """compare each finished DSRL / DSRL-NA run's critic with the returns its training episodes earned (reads the
    run's last checkpoint; a few seconds per run)."""

    def __post_init__(self) -> None:
        for name in ("budgets", "samples"):
            require_positive(name, getattr(self, name))
        require_positive("coverage_states", self.coverage_states, allow_zero=True)
        require_positive("region_episodes", self.region_episodes, allow_zero=True)
        for t in self.thresholds:
            require_range("thresholds[]", t, 0.0, 1.0)
        self.sweep_dir = Path(self.sweep_dir)
        self.out = Path(self.out) if self.out is not None else self.sweep_dir / "report"


def coverage_figures(results, cfg: ReportConfig) -> list[Path]:
    """For each (task, demos): the first seed with a finished postbc run on this machine (and a baseline for the
    densities)."""
    from postbc.experiments import coverage, record
    from postbc.policies.pretrained import PretrainedPolicy
    from postbc.pretrain.command import METHODS

    done = {(r.stage.params["task"], r.stage.params["demos"], r.stage.params["method"], r.stage.params["seed"]): r.stage.dir
            for r in results.of_kind("pretrain") if not record.missing(r.stage.dir)}  # restored ones lack their policies
    paths, covered = [], set()
    for (task, demos, method, seed), run_dir in sorted(done.items()):
        if method != "postbc" or (task, demos) in covered:
            continue
        covered.add((task, demos))
        std = coverage.ensemble_std_per_state(run_dir)
        dataset = coverage.load_run_dataset(run_dir)
        tag = f"{task}_d{demos}_s{seed}"
        paths.append(coverage.std_along_trajectories(
            std, dataset, f"{task}, {demos} demos, seed {seed}: posterior std along demos", cfg.out / f"ensemble_std_{tag}.png"))
        if cfg.coverage_states:
            policies = {m: PretrainedPolicy.load(done[(task, demos, m, seed)])
                        for m in METHODS if (task, demos, m, seed) in done}
            paths.append(coverage.action_density(
                policies, dataset, coverage.chosen_states(std, cfg.coverage_states), std, cfg.samples, cfg.seed,
                f"{task}, {demos} demos, seed {seed}: first action, dims 0-1 (x = demo action)",
                cfg.out / f"action_density_{tag}.png"))
    return paths


def toy_region_rows(results, cfg: ReportConfig) -> list[dict]:
    from postbc.experiments import toy_regions

    if not cfg.region_episodes or "toy" not in results.config.grid.tasks:
        return []
    return toy_regions.table_rows(toy_regions.sweep_region_table(results, cfg.region_episodes))


def run(cfg: ReportConfig) -> Path:
    from postbc.experiments import episode_pairs, html, plots, results as res
    from postbc.experiments.critic_vs_returns import critic_rows
    from postbc.experiments.tables import write_table

    results = res.load_results(cfg.sweep_dir)
    cfg.out.mkdir(parents=True, exist_ok=True)
    status = res.status_rows(results)
    pretrained = res.pretrained_rows(results)
    curve_map = res.curves(results)
    budget = res.budget_rows(curve_map, cfg.budgets)
    write_table(status, cfg.out / "status")
    write_table(pretrained, cfg.out / "pretrained_success")
    pretrained_paired = res.pretrained_paired_rows(results)
    write_table(pretrained_paired, cfg.out / "pretrained_paired_differences")
    write_table(budget, cfg.out / "finetune_success")
    paired = res.paired_rows(results, cfg.budgets)
    write_table(paired, cfg.out / "paired_differences")
    final_episodes = results.config.evaluate.final_episodes
    if final_episodes:
        final, final_paired = res.final_rows(results), res.final_paired_rows(results)
        write_table(final, cfg.out / "final_success")
        write_table(final_paired, cfg.out / "final_paired_differences")
        episode_gains, episode_differences = episode_pairs.gain_rows(results), episode_pairs.difference_rows(results)
        write_table(episode_gains, cfg.out / "final_episode_gains")
        write_table(episode_differences, cfg.out / "final_episode_differences")
    to_threshold = res.threshold_rows(results, cfg.thresholds)
    write_table(to_threshold, cfg.out / "steps_to_threshold")
    cost = res.cost_rows(results)
    write_table(cost, cfg.out / "cost")
    per_task = res.per_task_rows(results)
    if per_task:
        write_table(per_task, cfg.out / "pretrained_success_per_task")

    curve_pngs = plots.success_curves(curve_map, cfg.out)
    signal_pngs = plots.training_signals(res.signal_curves(results), cfg.out)
    bars = plots.pretrained_bars([r for r in pretrained if r["n"]], cfg.out)
    coverage_pngs = coverage_figures(results, cfg) if cfg.coverage else []
    regions = toy_region_rows(results, cfg)
    if regions:
        write_table(regions, cfg.out / "toy_success_by_start")
    critics = critic_rows(results) if cfg.critic_vs_returns else []
    if critics:
        write_table(critics, cfg.out / "critic_vs_returns")

    counts = {s: sum(r["status"] == s for r in status) for s in ("done", "failed", "started", "missing")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    sections = [
        ("Pretrained success", "Mean and 95% interval across seeds (n finished of planned), each seed's success; "
         "then the same-seed differences PostBC - BC and PostBC - sigma-BC over the seeds both finished (paired t-test "
         "p): in a partial grid the means may cover different seeds.",
         [html.table_html(pretrained)] + ([html.image_html(bars)] if bars else []) +
         [html.table_html(pretrained_paired) if pretrained_paired else
          "<p><em>no seed finished by both methods of a pair yet</em></p>"]),
    ] + ([("Pretrained success per task", "Multi-task envs: each sub-task's success, mean and 95% interval across seeds.",
           [html.table_html(per_task)])] if per_task else []) + [
        ("Finetuning success", "Evaluation success vs. env steps (Best-of-N: IQL updates); mean line, 95% band across seeds.",
         [html.table_html(budget)] + [html.image_html(p) for p in curve_pngs]),
        ("Training signals", "What each finished finetuning run logged about its own learning (training episodes' "
         "success, the critic's mean value, temperature, entropy, losses), one line per run: why a run moved or did not.",
         [html.image_html(p) for p in signal_pngs] or ["<p><em>no finished finetuning run yet</em></p>"]),
        ("Paired differences", "Same-seed differences of finetuning success, PostBC - BC and PostBC - sigma-BC "
         "(budget 0: the pretrained policies); gain_diff: the difference of the gains since budget 0. Mean, "
         "Student-t 95% interval and paired t-test p (two-sided) over the seeds both methods finished.",
         [html.table_html(paired) if paired else "<p><em>no seed finished by both methods of a pair yet</em></p>"]),
        ("Steps to a success threshold", "Per seed, the first evaluation at or above each threshold (0: the "
         "pretrained policy already was); the median counts a seed that never got there as infinitely slow.",
         [html.table_html(to_threshold)]),
    ] + ([("Critic vs returns", "Each finished DSRL / DSRL-NA run's critic against its own training episodes, over the "
           "episodes its replay holds whole: mean real discounted return (mc) and the critic's mean value of the "
           "stored noise (q_data), their difference (overestimate), their correlation (corr: does the critic rank "
           "what was stored as the returns did? the actor follows the ranking), how far above q_data it values the "
           "current actor's noise (actor_gap), and on the horizon's last chunks alone (last_chunk_gap: their target "
           "is the reward alone, so an excess there reaches every earlier chunk through the backup), the share of "
           "training episodes solved at some step, and of the steps after success those unsolved again.",
           [html.table_html(critics)])] if critics else []) + [
        ("Coverage diagnostics", "Posterior ensemble std along the demos, and sampled first actions at the demo "
         "states where it is largest (scarce data) and smallest (dense data).",
         [html.image_html(p) for p in coverage_pngs] or ["<p><em>no finished postbc run yet</em></p>"]),
        ("Cost", "Finished stages by kind: wall time (total, per run), CPU time (stages that recorded it; "
                 "env workers included), env steps per second of whole online finetuning runs.",
         [html.table_html(cost)]),
        ("Stages", summary, [html.table_html(status)]),
    ]
    if final_episodes:
        sections.insert(3, ("Final evaluation", f"Every finished finetuned policy on {final_episodes} episodes of the "
                            "pretrained evaluation's seed (actor: served, the policy `postbc eval` runs; stochastic, a "
                            "DSRL run's sampled actor on the same episodes, what the reference evaluates): mean and "
                            "95% interval across seeds, and the gain over the same seeds' pretrained evaluation; "
                            "then the same-seed differences PostBC - BC and PostBC - sigma-BC.",
                            [html.table_html(final) if final else "<p><em>no final evaluation finished yet</em></p>",
                             html.table_html(final_paired) if final_paired else
                             "<p><em>no seed with final evaluations of both methods of a pair yet</em></p>"]))
        sections.insert(4, ("Per-episode paired tests", "Within each seed, on the same episodes (same initial states "
                            "and sampler noise): the episodes finetuning gained (the finetuned policy solved, the "
                            "pretrained one failed) and lost, then those only PostBC's finetuned policy solved (a_only) "
                            "and only the baseline's (b_only); p: McNemar's exact test. It tests one seed's two "
                            "policies, not the seed-to-seed spread the table above carries.",
                            [html.table_html(episode_gains) if episode_gains else
                             "<p><em>no final evaluation with its pretrained evaluation's episodes yet</em></p>",
                             html.table_html(episode_differences) if episode_differences else
                             "<p><em>no seed with final evaluations of both methods of a pair yet</em></p>"]))
    if regions:
        sections.insert(3, ("Toy: success by start region", "Every pretrained and finetuned toy policy evaluated on "
                            f"{cfg.region_episodes} pocket-only (rare in the demos) and {cfg.region_episodes} common-only "
                            "starts; mean and 95% interval across seeds.", [html.table_html(regions)]))
    page = cfg.out / "report.html"
    html.write_page(page, f"postbc sweep report: {results.config.name}", sections)
    print(f"wrote {page} ({summary}; tables and PNGs in {cfg.out})")
    return page
