import json

import numpy as np
import pytest

from postbc.cli import main
from postbc.data.normalizer import MinMaxNormalizer
from postbc.envs.registry import get_task
from postbc.evaluation import evaluate
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.pretrained import PretrainedPolicy


@pytest.fixture(scope="module")
def toy_run_dir(tmp_path_factory):
    """An untrained but complete pretraining run directory for the toy task."""
    spec = get_task("toy")
    cfg = DiffusionConfig(obs_dim=spec.obs_dim, act_dim=spec.act_dim, chunk=2, hidden=16, layers=1, train_steps=10,
                          inference_steps=2)
    policy = PretrainedPolicy(
        DiffusionPolicy(cfg),
        MinMaxNormalizer(-np.ones(spec.obs_dim), np.ones(spec.obs_dim)),
        MinMaxNormalizer(-np.ones(spec.act_dim), np.ones(spec.act_dim)),
        spec.obs_keys, spec.obs_dims, spec.env_args,
    )
    run_dir = tmp_path_factory.mktemp("run")
    policy.save(run_dir / "policy")
    return run_dir


def test_eval_reads_the_task_from_the_checkpoint_and_writes_json(toy_run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["eval", "--checkpoint", str(toy_run_dir), "--episodes", "6", "--num-envs", "2", "--backend", "sync",
            "--seed", "3", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "toy: success" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["task"] == "toy" and result["episodes"] == 6 and len(result["episode_success"]) == 6
    assert 0 <= result["ci_low"] <= result["success_rate"] <= result["ci_high"] <= 1
    assert main(args[:-3] + ["--out", str(tmp_path / "again.json"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["episode_length"] == result["episode_length"]  # same seed, same episodes
    # the command reports what the library computes for that policy, seed and episodes
    direct = evaluate(PretrainedPolicy.load(toy_run_dir), "toy", episodes=6, seed=3, num_envs=1, backend="sync",
                      quiet=True)
    assert result["episode_success"] == direct.episode_success and result["episode_length"] == direct.episode_length
    assert result["success_rate"] == direct.success_rate


def test_eval_refuses_a_task_the_checkpoint_was_not_made_for(toy_run_dir, capsys):
    assert main(["eval", "--checkpoint", str(toy_run_dir), "--task", "lift", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not fit task 'lift'" in err and "data made for 'toy'" in err and "action dim" in err


def test_eval_refuses_a_missing_checkpoint(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_validates_its_options(capsys):
    with pytest.raises(SystemExit) as e:  # tyro reports config errors itself
        main(["eval", "--checkpoint", "x", "--backend", "threads"])
    assert e.value.code == 2 and "backend='threads' is not allowed" in capsys.readouterr().err
