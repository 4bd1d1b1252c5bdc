"""On the toy task: PostBC spreads its actions where demos are scarce, and succeeds as often as BC.

Small CPU budget (a few seconds per method), so absolute success is modest for both; the claims
checked are relative, on the same demos, settings and seeds.
"""

import numpy as np
import pytest

from postbc.data import DemoDataset
from postbc.evaluation.diagnostics import action_spread, sample_actions, spread_by_region
from postbc.envs.toy import toy_state_region
from postbc.evaluation.episodes import evaluate
from postbc.experts.collect import collect
from postbc.io.checkpoint import load_checkpoint
from postbc.pretrain.command import PretrainConfig, run

SEED = 0
SETTINGS = dict(chunk=4, hidden=128, layers=3, epochs=300, batch_size=64, lr=3e-3, alpha=1.0, ensemble_size=16,
                ensemble_epochs=100, checkpoint_every=1000, seed=SEED, quiet=True)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    collect("toy", 20, root / "demos.hdf5", seed=SEED, quiet=True)
    dataset = DemoDataset.load(root / "demos.hdf5")
    policies = {m: run(PretrainConfig(method=m, dataset=root / "demos.hdf5", out=root / m, **SETTINGS)) for m in ("bc", "postbc")}
    return root, dataset, policies


def test_posterior_is_wide_exactly_where_demos_are_scarce(toy):
    root, dataset, _ = toy
    tensors, _ = load_checkpoint(root / "postbc" / "posterior")
    std = np.sqrt((tensors["factor"].numpy() ** 2).sum(-1)).mean(-1)  # per-sample posterior std
    by_region = spread_by_region(std, toy_state_region(dataset.obs))
    assert by_region["rare"] > 2.5 * by_region["common"], by_region


def test_postbc_spreads_actions_in_rare_states_and_keeps_success(toy):
    _, dataset, policies = toy
    rare = toy_state_region(dataset.obs) == "rare"
    spread, success = {}, {}
    for method, policy in policies.items():
        spread[method] = action_spread(sample_actions(policy, dataset.obs[rare], 32, seed=1))  # per rare state
        success[method] = evaluate(policy, "toy", episodes=60, seed=2, num_envs=10, backend="sync", quiet=True).success_rate
    wider = spread["postbc"] > spread["bc"]
    assert wider.mean() >= 0.7, f"PostBC wider than BC in only {wider.mean():.0%} of the {rare.sum()} rare states"
    assert spread["postbc"].mean() > 1.1 * spread["bc"].mean(), {m: s.mean() for m, s in spread.items()}
    assert success["bc"] >= 0.15, success  # BC succeeds at all (0.25 here): "keeps success" then means something
    assert success["postbc"] >= success["bc"] - 0.15, success
