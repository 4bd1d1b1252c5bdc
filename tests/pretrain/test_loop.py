"""The resumable epoch loop of pretraining: a killed run continues its epochs and its wall and CPU time."""

import math

import pytest
import torch
from postbc.io.checkpoint import load_checkpoint
from postbc.io.runs import read_metrics
from postbc.pretrain.loop import ResumableState, run_epochs


class Killed(Exception):
    pass


def _state(tmp_path) -> ResumableState:
    model = torch.nn.Linear(3, 1)
    return ResumableState(tmp_path / "ckpt" / "last", {"model": model}, torch.optim.SGD(model.parameters(), lr=0.1),
                          torch.Generator().manual_seed(0), {"dataset": "d"})


def _busy_epochs(kill_at: int | None = None):
    def train_epoch(epoch: int) -> dict[str, float]:
        if epoch == kill_at:
            raise Killed
        total = sum(i * i for i in range(200_000))  # CPU work the epoch's cpu_time must see
        return {"loss": float(total % 7)}
    return train_epoch


def test_a_killed_runs_cpu_time_continues_from_its_checkpoint(tmp_path):
    with pytest.raises(Killed):
        run_epochs(_state(tmp_path), 6, _busy_epochs(kill_at=4), log_dir=tmp_path, checkpoint_every=2, desc="t",
                   quiet=True, tensorboard=False)
    at_kill = load_checkpoint(tmp_path / "ckpt" / "last")[1]
    assert at_kill["epoch"] == 4 and at_kill["cpu_time"] > 0
    run_epochs(_state(tmp_path), 6, _busy_epochs(), log_dir=tmp_path, checkpoint_every=2, desc="t", quiet=True,
               tensorboard=False)
    rows = read_metrics(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    cpu = [float(r["cpu_time"]) for r in rows]
    assert cpu == sorted(cpu) and cpu[3] == pytest.approx(at_kill["cpu_time"], rel=1e-5)
    assert cpu[-1] > at_kill["cpu_time"] * 1.2  # the whole run's CPU: the two resumed epochs add to the first four


def test_a_run_killed_by_an_older_version_resumes_with_its_columns_and_an_unknown_cpu_time(tmp_path,
                                                                                           written_before_cpu_time):
    """Pretrainings started before `cpu_time` was kept (a grid part-way) must resume: no new column, CPU time NaN."""
    with pytest.raises(Killed):
        run_epochs(_state(tmp_path), 4, _busy_epochs(kill_at=2), log_dir=tmp_path, checkpoint_every=1, desc="t",
                   quiet=True, tensorboard=False)
    old_columns = written_before_cpu_time(tmp_path, tmp_path / "ckpt" / "last.json")
    run_epochs(_state(tmp_path), 4, _busy_epochs(), log_dir=tmp_path, checkpoint_every=1, desc="t", quiet=True,
               tensorboard=False)
    rows = read_metrics(tmp_path)
    assert list(rows[0]) == old_columns and [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert math.isnan(load_checkpoint(tmp_path / "ckpt" / "last")[1]["cpu_time"])
