"""One PNG per experiment, drawn from its table (prediction as a line, measurement with its interval)."""

from __future__ import annotations

import pathlib

import numpy as np
from matplotlib.figure import Figure

from postbc.stats import Estimate
from postbc.theory.table import Table

COLORS = {"BC": "tab:gray", "uniform noise": "tab:orange", "PostBC": "tab:blue"}


def _errorbar(ax, x, estimates: list[Estimate], **kwargs) -> None:
    values = np.array([e.value for e in estimates])
    spread = np.array([[e.value - e.low for e in estimates], [e.high - e.value for e in estimates]])
    ax.errorbar(x, values, yerr=np.maximum(spread, 0), fmt="o", capsize=3, **kwargs)


def _save(fig: Figure, path: pathlib.Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def result1(table: Table, path: pathlib.Path) -> None:
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    demos = table.column("T")
    ax.plot(demos, table.column("P(BC misses 2,3) pred"), "-", color="k", label="predicted $(1-4\\epsilon)^T$")
    _errorbar(ax, demos, table.column("P(BC misses 2,3) meas"), color=COLORS["BC"], label="BC, measured")
    _errorbar(ax, demos, table.column("P(PostBC misses) meas"), color=COLORS["PostBC"], label="PostBC, measured")
    ax.axhline(0.5, ls=":", color="k", lw=0.8)
    ax.set(xlabel="demonstrations T", ylabel="P(arms 2 and 3 get probability 0)", title="Result 1: BC loses coverage")
    ax.legend()
    _save(fig, path)


def result2(table: Table, path: pathlib.Path) -> None:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for method in ("uniform noise", "PostBC"):
        where = {"method": method}
        returns = [e.value for e in table.column("E J meas", where)]
        covers = [e.value for e in table.column("coverage meas", where)]
        ax.plot(returns, covers, "o-", color=COLORS[method], label=method)
        for alpha, x, y in zip(table.column("alpha", where), returns, covers):
            ax.annotate(f"{alpha:.2g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_yscale("log")
    ax.set(
        xlabel="expected return E J",
        ylabel="coverage where BC collapsed",
        title="Result 2: return/coverage trade-off (labels: alpha)",
    )
    ax.legend()
    _save(fig, path)


def result3(table: Table, path: pathlib.Path) -> None:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    demos = np.array(table.column("T"), dtype=float)
    gaps = table.column("gap PostBC")
    _errorbar(ax, demos, gaps, color=COLORS["PostBC"], label="$J(\\pi_\\beta) - E J$(PostBC)")
    ax.plot(demos, [e.value for e in table.column("PostBC-BC")], "s--", color="tab:green", ms=4, label="E J(BC) - E J(PostBC)")
    if "slope" in table.summary:
        slope, intercept = table.summary["slope"].value, table.summary["intercept"]
        ax.plot(demos, np.exp(intercept) * demos**slope, "-", color=COLORS["PostBC"], lw=0.8, label=f"fit: slope {slope:.2f}")
        shape = np.log(demos) / demos
        ax.plot(demos, shape * gaps[0].value / shape[0], ":", color="k", label="log(T)/T (rate of the bound)")
    ax.set(xscale="log", yscale="log", xlabel="demonstrations T", ylabel="suboptimality",
           title="Result 3: PostBC keeps BC-level return")
    ax.legend(fontsize=8)
    _save(fig, path)


def result4(table: Table, path: pathlib.Path) -> None:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    xis = np.array([e.value for e in table.column("xi meas")])
    order = np.argsort(xis)
    ax.plot(xis[order], np.array(table.column("bound(xi meas)"))[order], "-", color="k", label="bound for any estimator")
    ax.plot(xis, table.column("gamma meas"), "o", color=COLORS["PostBC"], label="PostBC, measured")
    ax.plot(xis, table.column("gamma pred"), "x", color="tab:red", label="PostBC, predicted")
    ax.set(xlabel="return lost to the demonstrator, xi", ylabel="coverage gamma",
           title="Result 4: PostBC near the best trade-off")
    ax.legend()
    _save(fig, path)


def finetuning(tables: list[Table], path: pathlib.Path) -> None:
    fig = Figure(figsize=(5 * len(tables), 4))
    for ax, table in zip(np.atleast_1d(fig.subplots(1, len(tables))), tables):
        for method in dict.fromkeys(table.column("method")):
            where = {"method": method}
            estimates = table.column("E J meas", where)
            budgets = table.column("rollouts", where)
            ax.plot(budgets, [e.value for e in estimates], "o-", color=COLORS[method], label=method)
            ax.fill_between(budgets, [e.low for e in estimates], [e.high for e in estimates], color=COLORS[method], alpha=0.2)
            ax.axhline(table.column("limit (exact critic)", where)[0].value, ls=":", color=COLORS[method], lw=0.8)
        ax.set_xscale("symlog", linthresh=max(1, table.column("rollouts")[1]))  # budget 0 stays on the axis
        ax.set_xlim(left=0)
        ax.set(xlabel="rollouts of the pretrained policy", ylabel="E J after Best-of-N", title=table.title.split(":")[0])
        ax.legend()
    _save(fig, path)
