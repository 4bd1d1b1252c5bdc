"""`postbc best-of-n-fit`: fit the Best-of-N IQL critic on labelled rollouts, no simulator needed.

The real-robot workflow: roll the pretrained policy out, label each chunk with success, write the
file in the `postbc.finetune.rollouts_file` format, fit here, then serve actions with
`postbc.finetune.best_of_n.load_best_of_n_policy(OUT, PretrainedPolicy.load(CHECKPOINT))`.
Rollouts without a success or without a failure are refused (a critic learns nothing from them);
otherwise the critic is checked on held-out episodes (`postbc.finetune.critic_check`) and, if it
ranks no better than chance, the fitted critic serves the pretrained policy unless `--force`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from postbc.finetune.config import IQLConfig
from postbc.io.config import require_positive, require_range


@dataclasses.dataclass
class BestOfNFitConfig:
    """Fit an IQL critic on a rollouts file for Best-of-N action selection."""

    rollouts: Path
    """HDF5 rollouts file (datasets obs, actions, rewards, next_obs, dones, episode; see postbc.finetune.rollouts_file)."""
    out: Path
    """Run directory to write (critic.*, metrics.csv, checkpoints/)."""
    checkpoint: Path | None = None
    """Optional pretrained policy run directory: its obs dim / action dim / chunk must match the rollouts."""
    steps: int = 20_000
    """IQL gradient steps."""
    candidates: int = 8
    """N recorded with the critic: chunks sampled per decision when serving (paper: 4-32)."""
    heldout: float = 0.2
    """Fraction of the successful and of the failed episodes held out to check the critic."""
    force: bool = False
    """Serve the critic's argmax even when the held-out check says it ranks no better than chance."""
    seed: int = 0
    """Seed for network init and minibatches."""
    log_every: int = 1000
    """Write a metrics row (with the held-out TD error, mean V and critic AUC) every this many gradient steps."""
    patience: int = 0
    """Stop before --steps once the held-out TD error has not fallen by 1% for this many rows in a row
    (IQL's own convergence signal; 0: always train the full --steps)."""
    threads: int = 1
    """torch CPU threads."""
    iql: IQLConfig = dataclasses.field(default_factory=IQLConfig)
    quiet: bool = False
    """No progress bar."""

    def __post_init__(self):
        for name in ("steps", "candidates", "log_every", "threads"):
            require_positive(name, getattr(self, name))
        require_positive("patience", self.patience, allow_zero=True)
        require_range("heldout", self.heldout, 0.0, 0.9)


def run(cfg: BestOfNFitConfig) -> dict:
    import torch

    from postbc.errors import PostBCError
    from postbc.finetune.best_of_n import (IMAGE_UNRANKED, critic_verdict, fit_iql, heldout_check, heldout_signals,
                                           rollout_buffer, save_critic, select_rows)
    from postbc.finetune.critic_check import rollout_counts, split_episodes, unrankable_reason
    from postbc.finetune.iql import iql_from_config
    from postbc.finetune.rollouts_file import load_rollouts
    from postbc.io.config import to_jsonable
    from postbc.io.runs import prepare_run_dir
    from postbc.utils import seed_everything

    data, meta = load_rollouts(cfg.rollouts)
    successes, failures = rollout_counts(data["rewards"], data["episode"])
    print(f"rollouts {cfg.rollouts}: {successes + failures} episodes, {successes} successful and {failures} failed, "
          f"{len(data['obs'])} chunks")
    unrankable = unrankable_reason(successes, failures)
    if unrankable:
        raise PostBCError(f"rollouts {cfg.rollouts}: {unrankable}; nothing was written")
    if meta["encoded"] and cfg.checkpoint is None:
        raise PostBCError(f"rollouts {cfg.rollouts} hold the encoder features of the image policy that collected them "
                          f"(weights {meta['base_weights']}), not observations; pass that policy's run directory as "
                          "--checkpoint. Nothing was written")
    policy_obs_dim = meta["obs_dim"]
    policy = ranker = None
    unranked_why = "pass --checkpoint to draw candidates from the pretrained policy"
    if cfg.checkpoint is not None:
        from postbc.finetune.features import PolicyFeatures
        from postbc.policies.pretrained import PretrainedPolicy

        policy = PretrainedPolicy.load(cfg.checkpoint)
        policy_obs_dim = policy.obs_dim
        ranker = None if meta["encoded"] else policy  # candidates to rank actions among
        if meta["encoded"]:
            unranked_why = IMAGE_UNRANKED
        seen = PolicyFeatures(policy, policy.obs_dim)
        if seen.encodes != meta["encoded"]:
            raise PostBCError(f"checkpoint {cfg.checkpoint} {'acts from images' if seen.encodes else 'acts from low-dim observations'}"
                              f" but rollouts {cfg.rollouts} hold {'encoder features' if meta['encoded'] else 'raw observations'}; "
                              "fit on rollouts collected by this policy (postbc finetune --algo best_of_n writes them)")
        for what, mine, theirs in (("obs dim", seen.dim, meta["obs_dim"]), ("action dim", policy.act_dim, meta["act_dim"]),
                                   ("chunk", policy.chunk, meta["chunk"])):
            if int(mine) != int(theirs):
                raise PostBCError(f"checkpoint {cfg.checkpoint} has {what} {mine}, rollouts {cfg.rollouts} have {what} {theirs}; "
                                  "fit on rollouts of this policy")
        from postbc.finetune.base import check_base_fingerprint

        check_base_fingerprint(policy, meta.get("base_weights"), f"rollouts file {cfg.rollouts}",
                               relation="was collected by", other_fix=", or fit on rollouts of this policy")
    resuming = prepare_run_dir(cfg.out, cfg, command="best-of-n-fit")
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    from postbc.data.normalizer import MinMaxNormalizer

    # the policy's own scaling when it is given, else the rollouts' range
    # (encoder features come from demo-normalized observations already)
    normalizer = (None if meta["encoded"] else policy.obs_normalizer if cfg.checkpoint is not None
                  else MinMaxNormalizer.fit(data["obs"]))
    iql = iql_from_config(cfg.iql, meta["obs_dim"], meta["chunk"] * meta["act_dim"], normalizer)
    held = split_episodes(data["rewards"], data["episode"], cfg.heldout, cfg.seed)
    heldout = select_rows(data, held)

    def heldout_row(step: int) -> dict:
        """No simulator here: each row reports the critic on the held-out episodes instead of a success rate."""
        check = heldout_check(iql, heldout, ranker, cfg.candidates, cfg.seed, unranked_why)
        return {"critic_auc": check.auc, "critic_auc_low": check.auc_low, "action_auc": check.action_auc,
                "action_auc_low": check.action_auc_low, **heldout_signals(iql, heldout)}

    last = fit_iql(iql, rollout_buffer(select_rows(data, ~held)), cfg.out, steps=cfg.steps,
                   batch_size=cfg.iql.batch_size, log_every=cfg.log_every, checkpoint_every=cfg.log_every,
                   resuming=resuming, evaluate_fn=heldout_row, quiet=cfg.quiet, patience=cfg.patience)
    check = heldout_check(iql, heldout, ranker, cfg.candidates, cfg.seed, unranked_why)
    acts, sentence = critic_verdict(check, cfg.force)
    print(sentence.replace("--best-of-n.force", "--force"))
    save_critic(cfg.out, iql, {"obs_dim": policy_obs_dim, "critic_obs_dim": meta["obs_dim"], "act_dim": meta["act_dim"],
                               "chunk": meta["chunk"],
                               "obs_keys": meta["obs_keys"], "candidates": cfg.candidates, "iql": to_jsonable(cfg.iql),
                               "critic_check": check.to_dict(), "critic_acts": acts,
                               # features of one policy's encoder: only that policy may serve the critic
                               **({"base_weights": meta["base_weights"]} if meta["encoded"] else {})})
    return {**last, "critic_auc": check.auc, "critic_acts": acts}
