"""`--device`: names, refusals before anything is written, checkpoints across devices, sweep placement.

CI has no GPU: CUDA is imitated where only the bookkeeping is tested (which devices exist), never
for computing. What needs a real GPU is `benchmarks/bench_device.py`.
"""

import pytest
import torch

from postbc import device as device_mod
from postbc.device import autocast, randn_like_on, resolve_device
from postbc.errors import PostBCError
from postbc.experiments.plan import Stage
from postbc.experiments.scheduler import GpuSlots, LocalBackend, stage_devices
from postbc.io.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(device_mod, "available_devices", lambda: ["cpu", "cuda:0", "cuda:1"])


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(device_mod, "available_devices", lambda: ["cpu"])


def test_device_names_resolve(two_gpus):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda:0")
    assert resolve_device("CUDA:1") == torch.device("cuda:1")


def test_auto_is_the_cpu_without_cuda(no_gpu):
    assert resolve_device("auto") == torch.device("cpu")


def test_missing_devices_are_refused_naming_what_exists(two_gpus):
    with pytest.raises(PostBCError, match=r"no cuda:3; available: cpu, cuda:0, cuda:1"):
        resolve_device("cuda:3")
    with pytest.raises(PostBCError, match="not a device"):
        resolve_device("gpu")


def test_cuda_without_a_gpu_is_refused_with_the_fix(no_gpu):
    with pytest.raises(PostBCError, match=r"no CUDA device .*available: cpu.*--device cpu"):
        resolve_device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda0", ""])
def test_config_refuses_a_malformed_device(tmp_path, bad):
    from postbc.finetune.config import FinetuneConfig
    from postbc.pretrain.command import PretrainConfig

    with pytest.raises(ValueError, match="is not a device"):
        FinetuneConfig(checkpoint=tmp_path, task="toy", out=tmp_path / "o", device=bad)
    with pytest.raises(ValueError, match="is not a device"):
        PretrainConfig(method="bc", dataset=tmp_path / "d.hdf5", out=tmp_path / "o", device=bad)


def test_commands_refuse_a_missing_gpu_before_writing(tmp_path, no_gpu):
    from postbc.finetune.command import run as finetune
    from postbc.finetune.config import FinetuneConfig
    from postbc.pretrain.command import PretrainConfig
    from postbc.pretrain.command import run as pretrain

    with pytest.raises(PostBCError, match="no CUDA device"):
        finetune(FinetuneConfig(checkpoint=tmp_path / "policy", task="toy", out=tmp_path / "ft", device="cuda"))
    with pytest.raises(PostBCError, match="no CUDA device"):
        pretrain(PretrainConfig(method="bc", dataset=tmp_path / "demos.hdf5", out=tmp_path / "pt", device="cuda:0"))
    assert not (tmp_path / "ft").exists() and not (tmp_path / "pt").exists()


def test_checkpoints_are_written_from_cpu_and_load_onto_another_device(tmp_path):
    module = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "m", module.state_dict(), {"kind": "test"})
    cpu, _ = load_checkpoint(tmp_path / "m")
    moved, meta = load_checkpoint(tmp_path / "m", map_location="meta")  # any other device: the format is device-free
    assert meta == {"kind": "test"}
    assert all(t.device.type == "cpu" for t in cpu.values()) and all(t.device.type == "meta" for t in moved.values())
    assert {k: v.shape for k, v in moved.items()} == {k: v.shape for k, v in module.state_dict().items()}
    torch.testing.assert_close(cpu["weight"], module.weight.detach())


def test_seeded_draws_do_not_depend_on_the_device():
    """Draws come from the CPU generator and are then moved: the same numbers wherever they land."""
    like_cpu = torch.zeros(1)
    like_meta = torch.zeros(1, device="meta")
    a = randn_like_on((4, 3), like_cpu, torch.Generator().manual_seed(3))
    b = randn_like_on((4, 3), like_meta, torch.Generator().manual_seed(3))
    c = randn_like_on((4, 3), like_cpu, torch.Generator().manual_seed(3))
    assert b.device.type == "meta" and b.shape == a.shape
    torch.testing.assert_close(a, c)


def test_bf16_autocast_follows_the_device():
    with autocast("cpu", "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_gpu_slots_place_each_stage_on_the_least_busy_gpu():
    slots = GpuSlots(["cuda:0", "cuda:1"])
    assert [slots.acquire() for _ in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    slots.release("cuda:0")
    slots.release("cuda:0")  # cuda:0 idle, cuda:1 busy
    assert slots.acquire() == "cuda:0" and slots.running == {"cuda:0": 1, "cuda:1": 1}


def test_a_gpu_sweep_without_gpus_is_refused(no_gpu):
    assert stage_devices(0) == []
    with pytest.raises(PostBCError, match="no CUDA device.*drop the option"):
        stage_devices(1)


def test_gpu_sweep_places_training_stages_on_gpus_and_the_rest_on_cpu(tmp_path, two_gpus, monkeypatch):
    from postbc.experiments.scheduler import run_stages

    import pathlib

    here = pathlib.Path(__file__).resolve().parent / "experiments"
    monkeypatch.syspath_prepend(str(here))

    def stage(name, kind):
        d = tmp_path / name
        return Stage(name=name, kind=kind, dir=d, module="standin_stage", config_class="StandinConfig",
                     config={"out": str(d)}, params={})

    # Two waves, each launched at once: which GPU a stage gets must not depend on when others finish.
    together = [stage("p0", "pretrain"), stage("p1", "pretrain")]
    mixed = [stage("e0", "eval"), stage("f0", "finetune")]
    backend = LocalBackend(max_workers=2, cpus_per_run=1, gpus=stage_devices(1))
    try:
        assert run_stages(together, backend).ok
        assert run_stages(mixed, backend).ok
    finally:
        backend.close()
    placed = {s.name: (s.dir / "device.txt").read_text() for s in together + mixed}
    assert {placed["p0"], placed["p1"]} == {"cuda:0", "cuda:1"}  # two at once go to different GPUs
    assert placed["e0"] == "cpu" and placed["f0"] == "cuda:0"  # all idle again: the first GPU
    assert not backend.placed and set(backend.gpus.running.values()) == {0}


def test_cpu_sweep_runs_every_stage_on_the_cpu(tmp_path, monkeypatch):
    import pathlib

    from postbc.experiments.scheduler import run_stages

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parent / "experiments"))
    d = tmp_path / "p"
    s = Stage(name="p", kind="pretrain", dir=d, module="standin_stage", config_class="StandinConfig",
              config={"out": str(d)}, params={})
    backend = LocalBackend(max_workers=1, cpus_per_run=1)
    try:
        assert run_stages([s], backend).ok
    finally:
        backend.close()
    assert (d / "device.txt").read_text() == "cpu"  # never "auto": a GPU machine's CPU sweep stays on CPUs


def test_ray_backend_requests_gpus_only_for_training_stages():
    ray = pytest.importorskip("ray")
    from postbc.experiments.scheduler import RayBackend

    backend = RayBackend(None, 1, init_kwargs={"num_cpus": 1, "num_gpus": 0}, gpus_per_run=0.5)
    try:
        assert backend.remote_gpu._default_options["num_gpus"] == 0.5
        assert backend.remote._default_options.get("num_gpus") in (None, 0)
    finally:
        ray.shutdown()
