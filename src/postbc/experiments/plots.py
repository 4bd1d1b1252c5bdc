"""Matplotlib figures of a sweep (Agg backend, PNG): success curves, training signals and pretrained success bars."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from postbc.experiments.results import STOCHASTIC_ACTOR  # noqa: E402

METHOD_COLORS = {"bc": "tab:blue", "sigma_bc": "tab:orange", "postbc": "tab:green"}


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def success_curves(curve_map: dict[tuple, dict[str, Any]], out_dir: Path) -> list[Path]:
    """One figure per (task, demos): a panel per finetuning algorithm, a mean line + 95% band per method."""
    by_setting: dict[tuple, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for (task, demos, algo, method), c in curve_map.items():
        by_setting[(task, demos)][algo][method] = c
    paths = []
    for (task, demos), algos in sorted(by_setting.items()):
        fig, axes = plt.subplots(1, len(algos), figsize=(4.2 * len(algos), 3.4), squeeze=False, sharey=True)
        for ax, (algo, methods) in zip(axes[0], sorted(algos.items())):
            for method, c in sorted(methods.items()):
                color = METHOD_COLORS.get(method)
                ax.plot(c["x"], c["mean"], label=f"{method} (n={c['n']})", color=color)
                ax.fill_between(c["x"], c["low"], c["high"], alpha=0.2, color=color)
                ax.set_xlabel(c["x_key"].replace("_", " "))
            ax.set_title(f"{task}, {demos} demos: {algo}")
            ax.set_ylim(-0.02, 1.02)
            then = "its stochastic actor" if algo.endswith(STOCHASTIC_ACTOR) else "served policy"
            ax.legend(fontsize=8, title=f"step 0: pretrained policy\nthen: {then}", title_fontsize=7)
        axes[0][0].set_ylabel("success rate (mean, 95% CI over seeds)")
        paths.append(save(fig, Path(out_dir) / f"curves_{task}_d{demos}.png"))
    return paths


# Where a signal has a bound the algorithm's reward implies, the figure draws it.
MINUS_ONE_REWARD_BOUND = (0.0, "0: the most a -1 / 0 reward returns")
SIGNAL_BOUNDS = {("dsrl", "q_mean"): MINUS_ONE_REWARD_BOUND, ("dsrl_na", "q_mean"): MINUS_ONE_REWARD_BOUND}


def training_signals(signal_map: dict[tuple, dict[str, Any]], out_dir: Path) -> list[Path]:
    """One figure per (task, demos, algo): a panel per logged training signal, a thin line per run (colour: method),
    since seeds differ in what their critics and temperatures do."""
    paths = []
    for (task, demos, algo), group in sorted(signal_map.items()):
        names = group["signals"]
        if not names:
            continue
        cols = min(3, len(names))
        rows = -(-len(names) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False)
        for ax in axes.flat[len(names):]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, names):
            labelled = set()
            for (method, seed), signals in sorted(group["runs"].items()):
                if name in signals:
                    x, y = signals[name]
                    ax.plot(x, y, color=METHOD_COLORS.get(method), lw=1, alpha=0.8, marker=".", ms=3,
                            label=method if method not in labelled else None)
                    labelled.add(method)
            bound = SIGNAL_BOUNDS.get((algo, name))
            if bound is not None:
                ax.axhline(bound[0], color="black", lw=0.8, ls="--", label=bound[1])
            ax.set_title(name.replace("_", " "), fontsize=9)
            ax.set_xlabel(group["x_key"].replace("_", " "))
            ax.legend(fontsize=6)
        fig.suptitle(f"{task}, {demos} demos, {algo}: training signals, one line per run (mean over each logging "
                     "interval)", fontsize=9)
        paths.append(save(fig, Path(out_dir) / f"signals_{task}_d{demos}_{algo}.png"))
    return paths


def pretrained_bars(rows: list[dict[str, Any]], out_dir: Path) -> Path | None:
    """Bars of pretrained success per (task, demos) group, one bar per method (its number of seeds at the foot),
    95% CI whiskers."""
    if not rows:
        return None
    settings = sorted({(r["task"], r["demos"]) for r in rows})
    methods = sorted({r["method"] for r in rows})
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(settings) * len(methods) / 2), 3.4))
    for j, m in enumerate(methods):
        vals = {(r["task"], r["demos"]): r for r in rows if r["method"] == m}
        xs = np.arange(len(settings)) + (j - (len(methods) - 1) / 2) * width
        mean = np.array([vals[s]["mean"] if s in vals else np.nan for s in settings])
        low = np.array([vals[s]["ci_low"] if s in vals else np.nan for s in settings])
        high = np.array([vals[s]["ci_high"] if s in vals else np.nan for s in settings])
        err = np.nan_to_num(np.vstack([mean - low, high - mean]))
        ax.bar(xs, np.nan_to_num(mean), width, label=m, color=METHOD_COLORS.get(m))
        ax.errorbar(xs, np.nan_to_num(mean), yerr=err, fmt="none", ecolor="black", capsize=3)
        seeds = [vals[s]["n"] if s in vals else 0 for s in settings]
        for x, v, n in zip(xs, mean, seeds):
            if np.isnan(v):
                ax.text(x, 0.02, "missing", rotation=90, ha="center", va="bottom", fontsize=7)
            else:  # a partial grid's methods may average different numbers of seeds
                ax.text(x, 0.02, f"n={n}", ha="center", va="bottom", fontsize=7, color="white")
    ax.set_xticks(np.arange(len(settings)), [f"{t}\n{d} demos" for t, d in settings])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pretrained success rate (mean, 95% CI over seeds)")
    ax.legend(fontsize=8)
    return save(fig, Path(out_dir) / "pretrained_success.png")
