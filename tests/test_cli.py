from postbc.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_names_known_ones(capsys):
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'nope'" in err and "theory" in err


def test_version_is_printed(capsys):
    from postbc import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"postbc {__version__}"


def test_demo_and_quick_demo_default_to_different_directories():
    from pathlib import Path

    from postbc.demo.command import DemoConfig

    assert DemoConfig().out == Path("runs/demo") and DemoConfig(quick=True).out == Path("runs/demo-quick")
    assert DemoConfig(quick=True, out=Path("mine")).out == Path("mine")


def test_an_unknown_task_suggests_the_closest_names_and_groups_meta_world(capsys):
    from postbc.envs.registry import unknown_task_message

    message = unknown_task_message("mw-dor-open")
    assert "did you mean 'mw-door-open'" in message
    assert "mw-<name> for the 50 Meta-World MT1 tasks" in message and "mw-basketball" not in message


def test_a_missing_checkpoint_or_a_dataset_as_checkpoint_is_named_as_such(tmp_path):
    import pytest

    from postbc.errors import PostBCError
    from postbc.policies.pretrained import PretrainedPolicy

    with pytest.raises(PostBCError, match=r"checkpoint .*nope does not exist \(no run directory or checkpoint file"):
        PretrainedPolicy.load(tmp_path / "nope")
    (tmp_path / "drawer.hdf5").write_bytes(b"")
    with pytest.raises(PostBCError, match=r"drawer.hdf5 is a dataset, not a pretrained policy; pretrain on it first"):
        PretrainedPolicy.load(tmp_path / "drawer.hdf5")


def test_progress_bars_show_the_latest_values():
    from postbc.utils import show

    class Bar:
        def set_postfix(self, values, refresh=False):
            self.values = values

    bar = Bar()
    show(bar, loss=0.12345, success=float("nan"), q=None)
    assert bar.values == {"loss": "0.123"}
    show(object(), loss=1.0)  # a disabled (quiet) bar without set_postfix is left alone


def test_an_unknown_method_and_an_unknown_algo_answer_alike(capsys):
    import pytest

    for argv in (["pretrain", "--method", "foo", "--dataset", "d", "--out", "o"],
                 ["finetune", "--algo", "foo", "--checkpoint", "c", "--task", "toy", "--out", "o"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "invalid choice 'foo' for argument" in " ".join(capsys.readouterr().err.split())
