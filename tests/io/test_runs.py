import dataclasses
from pathlib import Path

import pytest

from postbc.errors import PostBCError
from postbc.io.config import from_jsonable, require_choice, to_jsonable
from postbc.io.runs import MetricsLogger, prepare_run_dir, read_metrics


@dataclasses.dataclass
class Cfg:
    out: Path = Path("x")
    lr: float = 1e-3
    sizes: tuple[int, ...] = (1, 2)


def test_config_json_round_trip():
    cfg = Cfg(out=Path("/tmp/a"), lr=0.5, sizes=(3,))
    assert from_jsonable(Cfg, to_jsonable(cfg)) == cfg
    with pytest.raises(ValueError, match="has no field"):
        from_jsonable(Cfg, {"nope": 1})


def test_require_choice_lists_allowed_values():
    with pytest.raises(ValueError, match="method='x' is not allowed; choose one of 'bc', 'postbc'"):
        require_choice("method", "x", ["bc", "postbc"])


def test_run_dir_resumes_same_config_and_refuses_another(tmp_path):
    assert prepare_run_dir(tmp_path / "run", Cfg(), command="c") is False
    assert prepare_run_dir(tmp_path / "run", Cfg(), command="c") is True
    with pytest.raises(PostBCError, match="differs in: lr"):
        prepare_run_dir(tmp_path / "run", Cfg(lr=1.0), command="c")


def test_a_run_written_before_an_option_existed_resumes_under_todays_code(tmp_path):
    """The running sweep's finetune dirs hold config.json files without options added since: resuming them must
    not be refused, unless the option's value then (LEGACY_DEFAULTS) differs from what is asked now."""
    import json

    from postbc.finetune.config import FinetuneConfig, SACConfig

    cfg = FinetuneConfig(checkpoint=Path("ck"), task="toy", out=tmp_path / "run")
    prepare_run_dir(cfg.out, cfg, command="finetune")
    path = cfg.out / "config.json"
    record = json.loads(path.read_text())
    del record["config"]["sac"]["horizon_bootstrap"], record["config"]["sac"]["warmup_noise"]
    path.write_text(json.dumps(record))
    assert prepare_run_dir(cfg.out, cfg, command="finetune") is True
    with pytest.raises(PostBCError, match="differs in: sac"):
        prepare_run_dir(cfg.out, dataclasses.replace(cfg, sac=SACConfig(horizon_bootstrap=True)), command="finetune")
    del record["config"]["sac"]["layer_norm"]  # runs from before LayerNorm had none (LEGACY_DEFAULTS)
    path.write_text(json.dumps(record))
    with pytest.raises(PostBCError, match="differs in: sac"):
        prepare_run_dir(cfg.out, cfg, command="finetune")


def test_metrics_resume_drops_rows_past_checkpoint(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(5):
        log.log({"step": step, "loss": 1.0 / (step + 1)})
    log.close()
    resumed = MetricsLogger(tmp_path, resume_step=2, tensorboard=False)
    resumed.log({"step": 3, "loss": 9.0})
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[-1]["loss"] == "9"
    with pytest.raises(ValueError, match="were not in the first row"):
        resumed.log({"step": 4, "new": 1})


def test_a_run_resumed_from_an_older_header_keeps_it_and_drops_the_new_columns(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.log({"step": 0, "loss": 1.0})
    log.close()
    resumed = MetricsLogger(tmp_path, resume_step=0, tensorboard=False, keep_old_header=True)
    resumed.log({"step": 1, "loss": 0.5, "heldout_td_error": 0.1})
    assert read_metrics(tmp_path) == [{"step": "0", "loss": "1"}, {"step": "1", "loss": "0.5"}]
    fresh = MetricsLogger(tmp_path / "new", tensorboard=False, keep_old_header=True)  # no older file: the usual rule
    fresh.log({"step": 0, "loss": 1.0})
    with pytest.raises(ValueError, match="were not in the first row"):
        fresh.log({"step": 1, "new": 1})


def test_a_run_that_starts_over_drops_an_older_files_header_with_its_rows(tmp_path):
    """Killed before its first checkpoint under an older version, a run restarts from step 0 with today's columns."""
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.log({"step": 0, "loss": 1.0})
    log.close()
    restarted = MetricsLogger(tmp_path, tensorboard=False)
    restarted.log({"step": 0, "loss": 1.0, "cpu_time": 0.5})
    assert read_metrics(tmp_path) == [{"step": "0", "loss": "1", "cpu_time": "0.5"}]
