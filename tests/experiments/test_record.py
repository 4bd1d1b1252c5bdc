"""`postbc sweep --record` with the real commands (the record's mechanics: test_scheduler.py, "Sweep records")."""

import shutil
from pathlib import Path

from postbc.cli import main
from postbc.experiments import markers

REPO = Path(__file__).resolve().parents[2]


def test_sweep_record_on_the_toy_grid_refills_collect_and_pretrain_as_recorded(tmp_path, capsys):
    """The real commands: the demos and the pretrained policy, refilled on a fresh directory, match the record's
    sha256 (collection and pretraining are deterministic on one machine), so finetuning continues from them."""
    config, rec = str(REPO / "configs" / "toy_tiny.toml"), tmp_path / "record"
    first = tmp_path / "a"
    assert main(["sweep", config, "--out", str(first), "--only", "pretrain/toy-d4-bc-s0", "--record", str(rec)]) == 0
    assert (rec / "pretrain" / "toy-d4-bc-s0" / markers.DONE).exists()
    assert not list(rec.rglob("*.safetensors")) and not list(rec.rglob("*.hdf5"))
    recorded_done = markers.read_marker(rec / "pretrain" / "toy-d4-bc-s0", markers.DONE)
    shutil.rmtree(first)
    capsys.readouterr()

    second = tmp_path / "b"
    assert main(["sweep", config, "--out", str(second), "--only", "final/toy-d4-bc-dsrl-s0", "--dry-run",
                 "--record", str(rec)]) == 0
    out = capsys.readouterr().out
    # the plan is the one the sweep will run: the recorded demos and policy are refilled (priced at what they cost)
    assert "refill   data/toy-d4-s0" in out and "refill   pretrain/toy-d4-bc-s0" in out
    assert "2 missing, 2 refill of 4 stages" in out
    assert "4 stage(s) to run: 2 priced at about" in out and "2 not priced" in out
    assert main(["sweep", config, "--out", str(second), "--only", "final/toy-d4-bc-dsrl-s0", "--record", str(rec)]) == 0
    out = capsys.readouterr().out
    assert "2 finished stage(s) restored" in out
    assert "done     data/toy-d4-s0" in out and "done     pretrain/toy-d4-bc-s0" in out and "as recorded" in out
    assert markers.read_marker(second / "pretrain" / "toy-d4-bc-s0", markers.DONE) == recorded_done
    assert (rec / "final" / "toy-d4-bc-dsrl-s0" / markers.DONE).exists()  # the new stages were recorded as they landed

    # a third machine: every stage is in the record, so the sweep runs nothing and the report reads the record
    third = tmp_path / "c"
    assert main(["sweep", config, "--out", str(third), "--only", "final/toy-d4-bc-dsrl-s0", "--record", str(rec)]) == 0
    assert "0 run, 4 already done" in capsys.readouterr().out
    assert main(["report", str(third), "--region-episodes", "0"]) == 0
    # the DSRL run's critic summary came with the record, so the table has its numbers without the run's checkpoint
    assert main(["report", str(second), "--region-episodes", "0"]) == 0
    critic = (third / "report" / "critic_vs_returns.csv").read_text()
    assert "restored from a sweep record" not in critic
    assert critic == (second / "report" / "critic_vs_returns.csv").read_text()
    final = (third / "report" / "final_success.csv").read_text()
    assert "dsrl,bc,served,8,1," in final
    # and the record alone (what is committed) makes the same report
    assert main(["report", str(rec), "--out", str(tmp_path / "from_record"), "--region-episodes", "0"]) == 0
    assert (tmp_path / "from_record" / "final_success.csv").read_text() == final
