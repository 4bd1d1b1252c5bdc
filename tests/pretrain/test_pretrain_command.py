"""`postbc pretrain` end to end on tiny toy data: files, resume, refusals."""

import json
import os

import pytest

from postbc.cli import main
from postbc.errors import PostBCError
from postbc.experts.collect import collect
from postbc.io.runs import read_metrics
from postbc.policies.pretrained import PretrainedPolicy
from postbc.pretrain.command import PretrainConfig, run

TINY = ["--chunk", "2", "--hidden", "32", "--layers", "2", "--train-steps", "20", "--inference-steps", "4",
        "--epochs", "4", "--batch-size", "64", "--ensemble-size", "4", "--ensemble-epochs", "3",
        "--checkpoint-every", "2", "--quiet"]


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "toy.hdf5"
    collect("toy", 6, path, seed=0, quiet=True)
    return path


@pytest.fixture(scope="module")
def postbc_run(demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "postbc"
    assert main(["pretrain", "--method", "postbc", "--dataset", str(demos), "--out", str(out), *TINY]) == 0
    return out


def test_postbc_run_writes_the_contracted_files(postbc_run):
    for name in ("config.json", "metrics.csv", "policy.safetensors", "policy.json", "ensemble.safetensors",
                 "posterior.safetensors", "checkpoints/last.json", "checkpoints/ensemble_last.json", "ensemble_log/metrics.csv"):
        assert (postbc_run / name).exists(), name
    assert [r["epoch"] for r in read_metrics(postbc_run)] == ["1", "2", "3", "4"]
    policy = PretrainedPolicy.load(postbc_run)
    assert (policy.chunk, policy.act_dim, policy.obs_dim) == (2, 2, 6)
    assert policy.config["method"] == "postbc" and policy.env_args["env_kwargs"]["task"] == "toy"


def test_rerun_of_a_finished_run_does_nothing(postbc_run, demos):
    before = (postbc_run / "policy.safetensors").stat().st_mtime_ns
    assert main(["pretrain", "--method", "postbc", "--dataset", str(demos), "--out", str(postbc_run), *TINY]) == 0
    assert (postbc_run / "policy.safetensors").stat().st_mtime_ns == before


def test_a_different_config_is_refused(postbc_run, demos, capsys):
    assert main(["pretrain", "--method", "postbc", "--dataset", str(demos), "--out", str(postbc_run), *TINY, "--alpha", "2"]) == 2
    assert "differs in: alpha" in capsys.readouterr().err


def test_resume_reuses_the_finished_ensemble(demos, tmp_path):
    out = tmp_path / "run"
    cfg = PretrainConfig(method="postbc", dataset=demos, out=out, chunk=2, hidden=32, layers=2, train_steps=20,
                         inference_steps=4, epochs=4, batch_size=64, ensemble_size=4, ensemble_epochs=3,
                         checkpoint_every=2, quiet=True)
    run(cfg)
    ensemble_log = (out / "ensemble_log" / "metrics.csv").stat().st_mtime_ns
    for name in ("policy.json", "policy.safetensors"):  # as if killed before the policy was written
        os.remove(out / name)
    run(cfg)
    assert (out / "ensemble_log" / "metrics.csv").stat().st_mtime_ns == ensemble_log
    assert PretrainedPolicy.load(out).config["method"] == "postbc"


def test_a_changed_dataset_is_refused_on_resume(tmp_path):
    data = tmp_path / "toy.hdf5"
    collect("toy", 3, data, seed=0, quiet=True)
    cfg = PretrainConfig(method="bc", dataset=data, out=tmp_path / "run", chunk=2, hidden=16, layers=1, train_steps=10,
                         inference_steps=2, epochs=2, checkpoint_every=1, quiet=True)
    run(cfg)
    collect("toy", 3, data, seed=1, overwrite=True, quiet=True)
    with pytest.raises(PostBCError, match="policy.json was made from other data.*dataset_sha256"):
        run(cfg)  # finished run
    os.remove(tmp_path / "run" / "policy.json")
    with pytest.raises(PostBCError, match=r"resume checkpoint .* \(differs in: dataset_sha256"):
        run(cfg)  # killed run


def test_config_validation_names_the_allowed_values():
    with pytest.raises(ValueError, match="'bc', 'sigma_bc', 'postbc'"):
        PretrainConfig(method="gail", dataset="d.hdf5", out="o")
    with pytest.raises(ValueError, match="covariance"):
        PretrainConfig(method="postbc", dataset="d.hdf5", out="o", covariance="banded")
    with pytest.raises(ValueError, match="ensemble_size"):
        PretrainConfig(method="postbc", dataset="d.hdf5", out="o", ensemble_size=1)


def test_a_bad_dataset_leaves_no_run_directory(tmp_path, capsys):
    assert main(["pretrain", "--method", "bc", "--dataset", str(tmp_path / "missing.hdf5"), "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()
    assert "missing.hdf5" in capsys.readouterr().err


def test_config_json_records_the_command(postbc_run):
    record = json.loads((postbc_run / "config.json").read_text())
    assert record["command"] == "pretrain" and record["config"]["ensemble_size"] == 4


@pytest.fixture(scope="module")
def image_demos(tmp_path_factory):
    """Three lift-like demos with a 16x16 camera key beside the low-dim keys (synthetic frames)."""
    import numpy as np

    from postbc.data.robomimic import Demo, write_demos
    from postbc.envs.cameras import with_cameras
    from postbc.envs.registry import get_task

    rng = np.random.default_rng(0)
    spec = with_cameras(get_task("lift"), ["agentview"], 16)
    demos = []
    for i in range(3):
        obs = {k: rng.normal(size=(8, d)).astype(np.float32) for k, d in zip(spec.obs_keys[:-1], spec.obs_dims[:-1])}
        obs["agentview_image"] = rng.integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8)
        demos.append(Demo(obs=obs, next_obs=obs, actions=rng.uniform(-1, 1, (8, 7)).astype(np.float32),
                          rewards=np.zeros(8, np.float32), dones=np.zeros(8, np.int64)))
    path = tmp_path_factory.mktemp("images") / "lift_images.hdf5"
    write_demos(path, demos, spec.env_args, obs_keys=spec.obs_keys)
    return path


def test_image_postbc_trains_a_shared_ensemble_and_an_encoder_policy(image_demos, tmp_path):
    import numpy as np

    from postbc.finetune.base import load_base_policy, refuse_image_policy
    from postbc.envs.registry import get_task

    out = tmp_path / "img"
    assert main(["pretrain", "--method", "postbc", "--dataset", str(image_demos), "--out", str(out), *TINY,
                 "--ensemble-kind", "shared", "--bootstrap", "state_action", "--image-features", "8"]) == 0
    assert json.loads((out / "ensemble.json").read_text())["meta"]["ensemble"]["kind"] == "shared"
    policy = PretrainedPolicy.load(out)
    assert policy.model.cfg.images == ((19, 16),) and hasattr(policy.model.denoiser, "encoder")
    assert policy.act(np.zeros((3, policy.obs_dim), np.float32)).shape == (3, 2, 7)
    load_base_policy(out, get_task("lift"))  # DSRL and Best-of-N finetune it through its encoder
    with pytest.raises(PostBCError, match="--algo dppo cannot finetune image policies"):
        refuse_image_policy(policy, str(out), "dppo")
    refuse_image_policy(policy, str(out), "dsrl")


def test_image_postbc_with_independent_members_is_refused_by_name(image_demos, tmp_path, capsys):
    out = tmp_path / "independent"
    assert main(["pretrain", "--method", "postbc", "--dataset", str(image_demos), "--out", str(out), *TINY]) == 2
    assert "--ensemble-kind shared" in capsys.readouterr().err
    assert not out.exists()
