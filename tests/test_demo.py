"""`postbc demo` end to end at a tiny budget: files, tables, plot, re-runs, task choice."""

import dataclasses
import json

import pytest

from postbc.cli import main
from postbc.demo.command import DemoConfig
from postbc.demo.presets import PRESETS, QUICK, choose_task

TINY = ["--demos", "4", "--epochs", "5", "--hidden", "32", "--ensemble-size", "4", "--ensemble-epochs", "5",
        "--eval-episodes", "10", "--finetune-steps", "96", "--eval-every", "48", "--finetune-eval-episodes", "4",
        "--warmup", "32", "--region-episodes", "4", "--quiet"]


def test_toy_demo_pretrains_finetunes_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), *TINY, "--probe-states", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.index("| method | pretrained success") < printed.index("action spread")  # the table comes first
    assert "| bc |" in printed and "| postbc |" in printed and "after DSRL, " in printed
    assert "pocket starts (rare in the demos): pretrained -> after DSRL (4 episodes each)" in printed
    assert printed.count(" -> ") >= 4  # pocket and common, pretrained -> finetuned, per method
    for path in ("demos.hdf5", "bc/policy.safetensors", "postbc/posterior.safetensors", "bc_eval.json",
                 "bc_dsrl/finetuned.safetensors", "postbc_dsrl/metrics.csv", "results.md", "demo.png",
                 "action_samples.png", "phases.json"):
        assert (out / path).exists(), path
    metrics = (out / "postbc_dsrl" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 1 + 3  # header, evaluations at 0, ~48 and ~96 env steps
    phases = json.loads((out / "phases.json").read_text())
    assert {"collect", "pretrain bc", "eval postbc", "finetune postbc"} <= set(phases)

    # Run again on the same directory: every phase is reused, nothing is refused.
    assert main(["demo", "--quick", "--out", str(out), *TINY, "--probe-states", "4"]) == 0
    assert "pretrain bc" in (rerun := capsys.readouterr().out) and "(reused)" in rerun
    assert json.loads((out / "phases.json").read_text())["pretrain bc"] == phases["pretrain bc"]

    # Other settings on the same directory: refused with what to do, before anything is written.
    assert main(["demo", "--quick", "--out", str(out), *TINY, "--probe-states", "4", "--demos", "5"]) == 2
    err = capsys.readouterr().err
    assert "demos" in err and "choose a new --out or delete the directory" in err


def test_demo_refuses_a_directory_it_did_not_write(tmp_path, capsys):
    (tmp_path / "stale.txt").write_text("an older demo's file")
    assert main(["demo", "--quick", "--out", str(tmp_path), *TINY]) == 2
    assert "holds no demo config.json" in capsys.readouterr().err


def test_the_default_task_is_toy_and_other_tasks_take_lift_settings():
    assert choose_task("toy", quick=False) == "toy" and DemoConfig().settings() == PRESETS["toy"]
    assert choose_task("toy", quick=True) == "toy" and DemoConfig(quick=True).settings() == PRESETS[QUICK]
    assert choose_task("can", quick=False) == "can"
    can = DemoConfig(task="can", demos=7).settings()
    assert (can.task, can.demos, can.finetune_steps) == ("can", 7, PRESETS["lift"].finetune_steps)


def test_demo_refuses_bad_options(capsys):
    with pytest.raises(SystemExit) as exit_info:  # tyro reports config errors and exits 2
        main(["demo", "--demos", "0"])
    assert exit_info.value.code == 2
    assert "demos=0 must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--quick", "--task", "lift"])
    assert "quick runs the toy task" in capsys.readouterr().err


@pytest.mark.sim
def test_lift_demo_end_to_end(tmp_path, capsys, monkeypatch):
    pytest.importorskip("robosuite")
    # one in-process env: spawning workers that import robosuite would take most of this test's time
    monkeypatch.setitem(PRESETS, "lift", dataclasses.replace(PRESETS["lift"], env_backend="sync", eval_envs=1,
                                                             finetune_envs=1))
    out = tmp_path / "demo"
    assert main(["demo", "--task", "lift", "--out", str(out), "--demos", "1", "--epochs", "2", "--hidden", "32", "--ensemble-size", "2",
                 "--ensemble-epochs", "2", "--eval-episodes", "1", "--finetune-steps", "16", "--eval-every", "16",
                 "--finetune-eval-episodes", "1", "--warmup", "8", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "## postbc demo: lift, 1 demos" in printed and "scarce demo states" in printed
    for path in ("bc_dsrl/finetuned.safetensors", "demo.png", "posterior_std.png", "action_density.png"):
        assert (out / path).exists(), path
