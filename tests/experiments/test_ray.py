"""The Ray backend on a local instance: the tiny toy grid runs to completion, a rerun skips it all."""

from pathlib import Path

import pytest

from postbc.experiments import markers
from postbc.experiments.sweep_command import SweepCommandConfig, run

REPO = Path(__file__).resolve().parents[2]


def test_ray_backend_runs_the_tiny_grid(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = SweepCommandConfig(config=REPO / "configs" / "toy_tiny.toml", out=tmp_path / "sweep", backend="ray",
                             only="-s0")
    try:
        result = run(cfg, ray_init={"num_cpus": 2, "runtime_env": {"env_vars": {"POSTBC_QUIET": "1"}}})
        assert result.ok and len(result.done) == 9  # 1 dataset, 2 policies, 2 evaluations, 2 finetuning runs, 2 final evaluations
        assert all(markers.is_done(tmp_path / "sweep" / name) for name in result.done)
        again = run(cfg)
        assert not again.done and len(again.skipped) == 9
    finally:
        ray.shutdown()


def test_ray_missing_is_a_clear_error(monkeypatch):
    import builtins

    from postbc.errors import PostBCError
    from postbc.experiments.scheduler import import_ray

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "ray" else real_import(name, *a, **k))
    with pytest.raises(PostBCError, match=r'pip install -e "\.\[ray\]"'):
        import_ray()
