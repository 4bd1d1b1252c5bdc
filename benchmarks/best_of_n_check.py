"""The current Best-of-N critic check on a finetune run's last IQL checkpoint (states and actions).

Re-checks a critic fitted by `postbc finetune --algo best_of_n` with today's `heldout_check`, on the
run's own held-out split, for instance one fitted before the check ranked actions:

    python benchmarks/best_of_n_check.py runs/bon_pick_place/finetune/mw-pick-place-d10-bc-best_of_n-s0 \
        runs/bon_pick_place/pretrain/mw-pick-place-d10-bc-s0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def main() -> None:
    from postbc.finetune.best_of_n import heldout_check, select_rows
    from postbc.finetune.config import IQLConfig
    from postbc.finetune.critic_check import split_episodes
    from postbc.finetune.iql import iql_from_config
    from postbc.finetune.rollouts_file import load_rollouts
    from postbc.io.checkpoint import load_checkpoint
    from postbc.io.config import from_jsonable
    from postbc.policies.pretrained import PretrainedPolicy

    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, policy = Path(sys.argv[1]), PretrainedPolicy.load(Path(sys.argv[2]))
    torch.set_num_threads(1)
    cfg = json.loads((run / "config.json").read_text())["config"]
    data, meta = load_rollouts(run / "rollouts.h5")
    held = split_episodes(data["rewards"], data["episode"], cfg["best_of_n"]["heldout"], cfg["seed"])
    iql = iql_from_config(from_jsonable(IQLConfig, cfg["best_of_n"]["iql"]), meta["obs_dim"],
                          meta["chunk"] * meta["act_dim"], policy.obs_normalizer)
    tensors, ckpt = load_checkpoint(run / "checkpoints" / "last")
    iql.load_state_dict({k[len("iql."):]: v for k, v in tensors.items() if k.startswith("iql.")})
    print(f"{run}: IQL after {ckpt.get('updates', '?')} updates")
    print(heldout_check(iql, select_rows(data, held), policy, cfg["best_of_n"]["candidates"], cfg["seed"]).reason)


if __name__ == "__main__":
    main()
