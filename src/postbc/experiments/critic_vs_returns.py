"""The report's critic-vs-returns table: does each finished DSRL / DSRL-NA run's critic predict the returns its own
training episodes earned? The actor follows the critic's ranking of the noise, so a run whose critic ranks the stored
noise near chance (`corr` about 0) had nothing to learn from; `postbc.finetune.critic_returns` says how it is measured
(`benchmarks/critic_vs_returns.py RUN` prints the same comparison per chunk position and replay segment)."""

from __future__ import annotations

import json
from typing import Any

from postbc.experiments import record
from postbc.finetune.config import NOISE_ACTOR_ALGOS

COLUMNS = ("env_steps", "episodes", "mc", "q_data", "overestimate", "corr", "actor_gap", "last_chunk_gap", "solved",
           "unsolved_after_success")


def critic_rows(results) -> list[dict[str, Any]]:
    """One row per finished DSRL / DSRL-NA finetuning run of the sweep; a run the comparison cannot read (its replay
    wrapped, its episodes end at success, it bootstraps at the horizon) gets its reason in `note`."""
    import torch

    from postbc.finetune.critic_returns import SUMMARY_FILE, critic_summary_or_note

    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for run in results.of_kind("finetune"):
            p = run.stage.params
            if p["algo"] not in NOISE_ACTOR_ALGOS:
                continue
            row = {"task": p["task"], "demos": p["demos"], "algo": p["algo"], "method": p["method"], "seed": p["seed"]}
            kept = run.stage.dir / SUMMARY_FILE
            if kept.exists():  # the run's own, of its last checkpoint
                summary = json.loads(kept.read_text())
            elif record.missing(run.stage.dir):
                summary = {"note": "restored from a sweep record, which keeps no checkpoint: not measured here"}
            else:
                summary = critic_summary_or_note(run.stage.dir)
            rows.append({**row, **{c: None for c in COLUMNS}, "note": "", **summary})
    finally:
        torch.set_num_threads(threads)
    return rows
