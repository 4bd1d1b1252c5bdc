"""`postbc finetune` options: the reference preset, and combinations refused before any env step."""

import pytest

from postbc.cli import main
from postbc.envs.testing import fake_task_spec
from postbc.errors import PostBCError
from postbc.finetune import command
from postbc.finetune.config import FinetuneConfig, SACConfig

from .conftest import NoisePuppet


@pytest.fixture
def parsed(monkeypatch):
    """The config `postbc finetune ARGS` would run, captured instead of run."""
    seen = []
    monkeypatch.setattr(command, "run", lambda cfg: seen.append(cfg))
    return seen


def test_reference_preset_sets_the_reference_settings_and_options_still_override(parsed):
    assert main(["finetune", "--preset", "reference", "--checkpoint", "p", "--task", "lift", "--out", "o",
                 "--sac.utd", "30"]) == 0
    (cfg,) = parsed
    assert (cfg.algo, cfg.num_envs, cfg.eval_episodes, cfg.steps) == ("dsrl_na", 4, 200, 500_000)
    sac = cfg.sac
    assert (sac.hidden, sac.layers, sac.activation, sac.layer_norm, sac.normalize_obs) == (2048, 3, "tanh", True, True)
    assert (sac.utd, sac.batch_size, sac.lr, sac.tau, sac.gamma, sac.warmup_steps) == (30, 256, 3e-4, 0.005, 0.99, 24_000)
    assert (sac.target_entropy, sac.action_magnitude, sac.num_critics, sac.noise_critic_steps) == (0.0, 1.5, 2, 10)


def test_reference_preset_takes_another_algorithm_when_asked(parsed):
    assert main(["finetune", "--preset", "reference", "--algo", "dsrl", "--checkpoint", "p", "--task", "lift",
                 "--out", "o"]) == 0
    assert parsed[0].algo == "dsrl" and parsed[0].sac.hidden == 2048


def test_reference_preset_on_square_uses_its_discount_and_warmup(parsed):
    assert main(["finetune", "--task=square", "--preset=reference", "--checkpoint", "p", "--out", "o"]) == 0
    assert (parsed[0].sac.gamma, parsed[0].sac.warmup_steps) == (0.999, 32_000)


def test_an_unknown_preset_is_refused_by_name(parsed, capsys):
    assert main(["finetune", "--preset", "fast", "--checkpoint", "p", "--task", "lift", "--out", "o"]) == 2
    assert "preset='fast' is not allowed; choose one of 'reference'" in capsys.readouterr().err
    assert not parsed


@pytest.mark.parametrize("args,message", [
    (["--sac.warmup-steps", "5000", "--steps", "5000"], "sac.warmup_steps=5000 is not below steps=5000"),
    (["--sac.utd", "0"], "sac.utd=0 must be > 0"),
    (["--sac.episode-end", "success"], "add --sac.no-backup-entropy"),
    (["--sac.episode-end", "first"], "sac.episode_end='first' is not allowed"),
    (["--sac.episode-end", "success", "--sac.no-backup-entropy", "--sac.horizon-bootstrap"],
     "already bootstrap at the horizon; drop --sac.horizon-bootstrap"),
])
def test_options_that_make_no_sense_together_are_refused(parsed, capsys, args, message):
    try:
        code = main(["finetune", "--checkpoint", "p", "--task", "lift", "--out", "o", *args])
    except SystemExit as e:  # tyro reports a nested config's error itself
        code = e.code
    assert code == 2 and not parsed
    assert message in " ".join(capsys.readouterr().err.split())


def test_a_horizon_shorter_than_one_chunk_is_refused_before_anything_is_written(tmp_path):
    cfg = FinetuneConfig(checkpoint="puppet", task="line", out=tmp_path / "run", steps=500, num_envs=1,
                         env_backend="sync", quiet=True, sac=SACConfig(warmup_steps=100))
    with pytest.raises(PostBCError, match=r"horizon of 3 steps, shorter than one action chunk \(4 steps\)"):
        command.run(cfg, base=NoisePuppet(chunk=4), spec=fake_task_spec("line", horizon=3))
    assert not (tmp_path / "run").exists()


def test_options_of_another_algorithm_are_refused_not_ignored():
    with pytest.raises(ValueError, match=r"--sac\.\* options are read by --algo dsrl, dsrl_na, not by --algo dppo"):
        command.run(FinetuneConfig(checkpoint="p", task="lift", out="o", algo="dppo", sac=SACConfig(hidden=64)))


def test_a_sweep_gives_each_finetune_stage_only_its_algorithms_options():
    from postbc.experiments.config import parse_sweep_config

    cfg = parse_sweep_config({"name": "t", "grid": {"tasks": ["toy"], "demos": [5], "methods": ["bc"],
                                                       "algos": ["dsrl", "best_of_n"], "seeds": [0]},
                                 "finetune": {"steps": 100, "sac": {"hidden": 64}, "best_of_n": {"rollouts": 10}}})
    assert cfg.finetune_options("toy", "dsrl") == {"steps": 100, "sac": {"hidden": 64}}
    assert cfg.finetune_options("toy", "best_of_n") == {"steps": 100, "best_of_n": {"rollouts": 10}}
