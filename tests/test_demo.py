"""`postbc demo` end to end at a tiny budget: files, table and the resume-safe re-run."""

import pytest

from postbc.cli import main

TINY = ["--demos", "4", "--epochs", "5", "--ensemble-size", "4", "--ensemble-epochs", "5", "--eval-episodes", "10",
        "--probe-states", "4", "--quiet"]


def test_demo_writes_dataset_runs_table_and_plot(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "| bc |" in printed and "| postbc |" in printed
    for path in ("demos.hdf5", "bc/policy.safetensors", "postbc/posterior.safetensors", "results.md", "demo.png"):
        assert (out / path).exists(), path
    # Run again on the same directory: everything is reused, nothing is refused.
    assert main(["demo", "--out", str(out), *TINY]) == 0


def test_demo_refuses_bad_options(capsys):
    with pytest.raises(SystemExit) as exit_info:  # tyro reports config errors and exits 2
        main(["demo", "--demos", "0"])
    assert exit_info.value.code == 2
    assert "demos=0 must be > 0" in capsys.readouterr().err
