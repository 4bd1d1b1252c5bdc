"""`postbc best-of-n-fit`: fit the Best-of-N IQL critic on labelled rollouts, no simulator needed.

The real-robot workflow: roll the pretrained policy out, label each chunk with success, write the
file in the `postbc.finetune.rollouts` format, fit here, then serve actions with
`postbc.finetune.best_of_n.load_best_of_n_policy(OUT, PretrainedPolicy.load(CHECKPOINT))`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from postbc.finetune.config import IQLConfig
from postbc.io.config import require_positive


@dataclasses.dataclass
class BestOfNFitConfig:
    """Fit an IQL critic on a rollouts file for Best-of-N action selection."""

    rollouts: Path
    """HDF5 rollouts file (datasets obs, actions, rewards, next_obs, dones, episode; see postbc.finetune.rollouts)."""
    out: Path
    """Run directory to write (critic.*, metrics.csv, checkpoints/)."""
    checkpoint: Path | None = None
    """Optional pretrained policy run directory: its obs dim / action dim / chunk must match the rollouts."""
    steps: int = 20_000
    """IQL gradient steps."""
    candidates: int = 8
    """N recorded with the critic: chunks sampled per decision when serving (paper: 4-32)."""
    seed: int = 0
    """Seed for network init and minibatches."""
    log_every: int = 1000
    """Write a metrics row every this many gradient steps."""
    threads: int = 1
    """torch CPU threads."""
    iql: IQLConfig = dataclasses.field(default_factory=IQLConfig)
    quiet: bool = False
    """No progress bar."""

    def __post_init__(self):
        for name in ("steps", "candidates", "log_every", "threads"):
            require_positive(name, getattr(self, name))


def run(cfg: BestOfNFitConfig) -> dict:
    import torch

    from postbc.errors import PostBCError
    from postbc.finetune.best_of_n import fit_iql, rollout_buffer, save_critic
    from postbc.finetune.iql import iql_from_config
    from postbc.finetune.rollouts import load_rollouts
    from postbc.io.config import to_jsonable
    from postbc.io.runs import prepare_run_dir

    data, meta = load_rollouts(cfg.rollouts)
    if cfg.checkpoint is not None:
        from postbc.policies.pretrained import PretrainedPolicy

        policy = PretrainedPolicy.load(cfg.checkpoint)
        for what, mine, theirs in (("obs dim", policy.obs_dim, meta["obs_dim"]), ("action dim", policy.act_dim, meta["act_dim"]),
                                   ("chunk", policy.chunk, meta["chunk"])):
            if int(mine) != int(theirs):
                raise PostBCError(f"checkpoint {cfg.checkpoint} has {what} {mine}, rollouts {cfg.rollouts} have {what} {theirs}; "
                                  "fit on rollouts of this policy")
    resuming = prepare_run_dir(cfg.out, cfg, command="best-of-n-fit")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    iql = iql_from_config(cfg.iql, meta["obs_dim"], meta["chunk"] * meta["act_dim"])
    last = fit_iql(iql, rollout_buffer(data), cfg.out, steps=cfg.steps, batch_size=cfg.iql.batch_size,
                   log_every=cfg.log_every, checkpoint_every=cfg.log_every, resuming=resuming, quiet=cfg.quiet)
    save_critic(cfg.out, iql, {"obs_dim": meta["obs_dim"], "act_dim": meta["act_dim"], "chunk": meta["chunk"],
                               "obs_keys": meta["obs_keys"], "candidates": cfg.candidates, "iql": to_jsonable(cfg.iql)})
    return last
