import json
import pathlib

import pytest

from postbc.theory.command import TheoryConfig, run


def small(out: pathlib.Path, seed: int = 0) -> TheoryConfig:
    return TheoryConfig(out=out, quick=True, seed=seed, trials=200, finetune_trials=20)


def test_run_writes_tables_and_plots_and_repeats_itself(tmp_path, capsys):
    run(small(tmp_path / "a"))
    printed = capsys.readouterr().out
    assert "Result 1" in printed and "Result 4" in printed and "Finetuning on the chain" in printed
    names = {p.name for p in (tmp_path / "a").iterdir()}
    assert names == {"results.json", "result1.png", "result2.png", "result3.png", "result4.png", "finetune.png"}
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(first["tables"]) == {"result1", "result2", "result3", "result4", "finetune_bandit", "finetune_chain"}

    run(small(tmp_path / "b"))
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    assert first["tables"] == second["tables"]  # same seed, same numbers
    run(small(tmp_path / "c", seed=1))
    third = json.loads((tmp_path / "c" / "results.json").read_text())
    assert third["tables"]["result1"]["rows"] != first["tables"]["result1"]["rows"]


@pytest.mark.parametrize(
    "field, value",
    [("seed", -1), ("trials", 1), ("finetune_trials", 0), ("confidence", 1.5), ("confidence", 0.0), ("best_of_n", 0)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TheoryConfig(**{field: value})


def test_out_must_not_be_a_file(tmp_path):
    file = tmp_path / "taken"
    file.write_text("")
    with pytest.raises(ValueError, match="out must be a directory"):
        TheoryConfig(out=file)
