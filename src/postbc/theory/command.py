"""`postbc theory`: run the tabular experiments, print the tables, save PNGs and results.json."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import numpy as np

from postbc.theory import experiments, plots


@dataclasses.dataclass
class TheoryConfig:
    """Run the tabular theory experiments of Posterior BC (results 1-4 and Best-of-N finetuning):
    exact estimators, Monte-Carlo over sampled demonstration sets, predicted next to measured."""

    out: pathlib.Path = pathlib.Path("runs/theory")
    """Directory for results.json and the PNG plots (created if missing)."""
    quick: bool = False
    """Fewer datasets and rollouts: finishes in seconds instead of minutes."""
    seed: int = 0
    """Seed of all sampling; the same seed gives the same numbers."""
    trials: int | None = None
    """Datasets per Monte-Carlo estimate in results 1-4 (default 5000 with --quick, else 50000)."""
    finetune_trials: int | None = None
    """Datasets per finetuning curve (default 300 with --quick, else 2000)."""
    confidence: float = 0.95
    """Level of every confidence interval, in (0, 1)."""
    best_of_n: int = 16
    """Actions drawn from the pretrained policy per decision in Best-of-N finetuning (>= 1)."""

    def __post_init__(self) -> None:
        self.out = pathlib.Path(self.out)
        if self.out.exists() and not self.out.is_dir():
            raise ValueError(f"out must be a directory, but {self.out} is a file; pass another --out")
        if self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed}")
        for name in ("trials", "finetune_trials"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"{name} must be >= 2 (a confidence interval needs two samples) or unset, got {value}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {self.confidence}")
        if self.best_of_n < 1:
            raise ValueError(f"best_of_n must be >= 1, got {self.best_of_n}")


def _experiments(cfg: TheoryConfig):
    """(name, function, keyword arguments) per experiment, sized by --quick."""
    trials = cfg.trials or (5000 if cfg.quick else 50000)
    finetune_trials = cfg.finetune_trials or (300 if cfg.quick else 2000)
    common = {"confidence": cfg.confidence}
    bandit_budgets = (0, 3, 10, 30, 100, 300) if cfg.quick else (0, 3, 10, 30, 100, 300, 1000)
    chain_budgets = (0, 100, 300, 1000, 3000) if cfg.quick else (0, 100, 300, 1000, 3000, 10000)
    return [
        ("result1", experiments.result1, {"trials": trials, **common}),
        ("result2", experiments.result2, {"trials": trials, **common}),
        ("result3", experiments.result3, {"trials": trials, **common}),
        ("result4", experiments.result4, {"trials": trials, **common}),
        ("finetune_bandit", experiments.finetune_bandit,
         {"trials": finetune_trials, "budgets": bandit_budgets, "n": cfg.best_of_n, **common}),
        ("finetune_chain", experiments.finetune_chain,
         {"trials": finetune_trials, "budgets": chain_budgets, "n": cfg.best_of_n, **common}),
    ]


def run(cfg: TheoryConfig) -> None:
    """Compute every table, then write the outputs (nothing is written if a computation fails)."""
    start = time.perf_counter()
    plan = _experiments(cfg)
    # One independent stream per experiment: its numbers do not depend on which others ran before.
    streams = np.random.SeedSequence(cfg.seed).spawn(len(plan))
    tables = {}
    for (name, experiment, kwargs), stream in zip(plan, streams):
        began = time.perf_counter()
        tables[name] = experiment(np.random.default_rng(stream), **kwargs)
        print(tables[name].render())
        print(f"  [{name}: {time.perf_counter() - began:.1f} s]\n", flush=True)

    cfg.out.mkdir(parents=True, exist_ok=True)
    for name in ("result1", "result2", "result3", "result4"):
        getattr(plots, name)(tables[name], cfg.out / f"{name}.png")
    plots.finetuning([tables["finetune_bandit"], tables["finetune_chain"]], cfg.out / "finetune.png")
    results = {
        "config": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in dataclasses.asdict(cfg).items()},
        "tables": {name: table.to_dict() for name, table in tables.items()},
    }
    partial = cfg.out / "results.json.tmp"
    partial.write_text(json.dumps(results, indent=1))
    os.replace(partial, cfg.out / "results.json")
    print(f"wrote {cfg.out}/results.json and 5 PNGs in {time.perf_counter() - start:.1f} s")
