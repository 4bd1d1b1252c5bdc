"""`postbc demo`'s output: the results table, the coverage table and the figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

START_TITLES = {"pocket": "pocket starts (rare in the demos)", "common": "common starts"}
REGION_TITLES = {"rare": "rare (pocket) states", "common": "common (corridor) states",
                 "scarce": "scarce demo states (largest ensemble std)", "dense": "dense demo states (smallest ensemble std)"}


@dataclasses.dataclass
class Success:
    """A success rate with its Wilson 95% interval."""

    rate: float
    low: float
    high: float
    episodes: int

    def __str__(self) -> str:
        return f"{self.rate:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclasses.dataclass
class MethodResult:
    method: str
    pretrained: Success
    finetuned: Success
    finetune_steps: int  # env steps of finetuning (the last evaluation may be a few steps past: vector envs overshoot)
    curve: dict[str, np.ndarray]  # env_steps, success, low, high: the finetuning run's evaluations
    wall_seconds: float  # pretraining + evaluation + finetuning
    spread: dict[str, float]  # region -> action spread
    # toy only: {"pretrained" | "after DSRL": {"pocket" | "common": success}} from start-region-only episodes
    regions: dict[str, dict[str, Success]] = dataclasses.field(default_factory=dict)


def format_table(results: list[MethodResult]) -> str:
    """method | pretrained success | success after DSRL | wall time."""
    steps = results[0].finetune_steps
    lines = [
        f"| method | pretrained success (95% CI, {results[0].pretrained.episodes} episodes) | "
        f"after DSRL, {steps} env steps (95% CI, {results[0].finetuned.episodes} episodes) | wall time |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.method} | {r.pretrained} | {r.finetuned} | {r.wall_seconds:.0f} s |" for r in results]
    return "\n".join(lines)


def format_coverage(results: list[MethodResult]) -> str:
    """method | action spread per region (pretrained policies)."""
    regions = list(results[0].spread)
    lines = ["| method | " + " | ".join(f"action spread, {REGION_TITLES.get(r, r)}" for r in regions) + " |",
             "|---|" + "---|" * len(regions)]
    lines += ["| " + r.method + " | " + " | ".join(f"{r.spread[g]:.3f}" for g in regions) + " |" for r in results]
    return "\n".join(lines)


def format_regions(results: list[MethodResult]) -> str:
    """method | success from pocket starts, pretrained -> after DSRL | from common starts, the same."""
    first = results[0].regions["pretrained"]
    lines = ["| method | " + " | ".join(f"{START_TITLES[r]}: pretrained -> after DSRL ({first[r].episodes} episodes each)"
                                        for r in first) + " |",
             "|---|" + "---|" * len(first)]
    for r in results:
        cells = [f"{r.regions['pretrained'][g]} -> {r.regions['after DSRL'][g]}" for g in first]
        lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_phases(phases: dict[str, float], reused: set[str]) -> str:
    return ", ".join(f"{name} {seconds:.0f} s" + (" (reused)" if name in reused else "") for name, seconds in phases.items())


def plot_summary(results: list[MethodResult], task: str, demos: int, path: Path) -> Path:
    """Left: pretrained and finetuned success per method; right: eval success vs env steps while finetuning."""
    from postbc.experiments.plots import METHOD_COLORS, plt, save

    with_regions = bool(results[0].regions)
    fig, axes = plt.subplots(1, 3 if with_regions else 2, figsize=(15 if with_regions else 10, 3.8),
                             gridspec_kw={"width_ratios": [1, 1.6, 1.3] if with_regions else [1, 1.6]})
    bars, curves = axes[:2]
    for j, r in enumerate(results):
        color = METHOD_COLORS.get(r.method)
        for k, (label, s) in enumerate((("pretrained", r.pretrained), ("after DSRL", r.finetuned))):
            x = k + (j - (len(results) - 1) / 2) * 0.38
            bars.bar(x, s.rate, 0.36, color=color, alpha=1.0 if k else 0.55, label=r.method if k == 0 else None)
            bars.errorbar(x, s.rate, yerr=[[s.rate - s.low], [s.high - s.rate]], fmt="none", ecolor="black", capsize=3)
        c = r.curve
        curves.plot(c["env_steps"], c["success"], "o-", color=color, label=f"{r.method}: DSRL actor")
        curves.fill_between(c["env_steps"], c["low"], c["high"], color=color, alpha=0.2)
        curves.axhline(r.pretrained.rate, color=color, ls="--", lw=1, label=f"{r.method}: pretrained, noise ~ N(0, I)")
    bars.set_xticks([0, 1], [f"pretrained\n({results[0].pretrained.episodes} episodes)",
                             f"after DSRL\n({results[0].finetuned.episodes} episodes)"])
    bars.set(ylim=(0, 1.18), ylabel="success rate (95% CI)", title=f"{task}, {demos} demos")
    bars.legend(fontsize=8, loc="upper center", ncol=len(results))
    curves.set(ylim=(-0.02, 1.18), xlabel="env steps of DSRL-SAC finetuning", ylabel="eval success (95% CI)",
               title="finetuning")
    curves.legend(fontsize=7, loc="upper center", ncol=len(results))
    if with_regions:
        plot_regions(axes[2], results, METHOD_COLORS)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)


def plot_regions(ax, results: list[MethodResult], colors: dict) -> None:
    """Success by start region, pretrained (light) and after DSRL (dark), per method, with Wilson intervals."""
    regions = list(results[0].regions["pretrained"])
    width = 0.8 / (2 * len(results))
    for j, r in enumerate(results):
        for k, stage in enumerate(("pretrained", "after DSRL")):
            for i, region in enumerate(regions):
                sr = r.regions[stage][region]
                x = i + (2 * j + k - (2 * len(results) - 1) / 2) * width
                ax.bar(x, sr.rate, width * 0.95, color=colors.get(r.method), alpha=1.0 if k else 0.45,
                       label=f"{r.method}: {stage}" if i == 0 else None)
                ax.errorbar(x, sr.rate, yerr=[[sr.rate - sr.low], [sr.high - sr.rate]], fmt="none", ecolor="black",
                            capsize=2)
    episodes = results[0].regions["pretrained"][regions[0]].episodes
    ax.set_xticks(range(len(regions)), [START_TITLES[g].replace(" (", "\n(") for g in regions])
    ax.set(ylim=(0, 1.18), ylabel=f"success rate (95% CI, {episodes} episodes)", title="by start region")
    ax.legend(fontsize=7, loc="upper center", ncol=2)


def plot_action_samples(samples: dict, states: dict[str, np.ndarray], path: Path) -> Path:
    """Toy task. Rows: methods; columns: the arena with the probe states, then the first-action samples per state."""
    from matplotlib.patches import Rectangle

    from postbc.envs.toy import WALLS
    from postbc.experiments.plots import plt, save

    regions = list(states)
    fig, axes = plt.subplots(len(samples), 1 + len(regions), figsize=(4 * (1 + len(regions)), 4 * len(samples)),
                             squeeze=False)
    colors = {"rare": "tab:red", "common": "tab:blue"}
    for row, (method, by_region) in enumerate(samples.items()):
        arena = axes[row, 0]
        for x0, x1, y0, y1 in WALLS:
            arena.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, color="0.3"))
        for region, state in states.items():
            arena.plot(*state[:2], "o", color=colors[region], label=f"{region} state")
        arena.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", title=f"{method}: probe states")
        arena.legend(loc="upper left", fontsize=8)
        for col, region in enumerate(regions, start=1):
            ax = axes[row, col]
            a = by_region[region]
            ax.scatter(a[:, 0], a[:, 1], s=6, alpha=0.5, color=colors[region])
            ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xlabel="action x", ylabel="action y",
                   title=f"{method}: first action at the {region} state")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(fig, path)
