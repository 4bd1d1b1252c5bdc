import numpy as np

from postbc.cli import main


def test_inspect_prints_demos_keys_shapes_and_ranges(demo_file, capsys):
    path, demos = demo_file
    assert main(["inspect", str(path), "--max-rows", "2"]) == 0
    out = capsys.readouterr().out
    assert "demos: 5, samples: 25" in out
    assert "obs/pos (2,)" in out and "obs/vel (3,)" in out and "actions (2,)" in out
    actions = np.concatenate([d.actions for d in demos])
    assert f"{actions[:, 0].min():.3g} .. {actions[:, 0].max():.3g}, {actions[:, 1].min():.3g} .. {actions[:, 1].max():.3g}" in out
    assert "demo_0" in out and "demo_1" in out and "demo_2" not in out and "3 more" in out
    assert "odd (2)" in out


def test_inspect_a_bad_file_exits_2_with_the_message(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.hdf5")]) == 2
    assert "does not exist" in capsys.readouterr().err
