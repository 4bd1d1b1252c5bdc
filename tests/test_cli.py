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

    from postbc.demo import DemoConfig

    assert DemoConfig().out == Path("runs/demo") and DemoConfig(quick=True).out == Path("runs/demo-quick")
    assert DemoConfig(quick=True, out=Path("mine")).out == Path("mine")
