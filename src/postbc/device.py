"""Which torch device a command computes on: `--device auto|cpu|cuda|cuda:N`.

`auto` is CUDA (device 0) when torch sees one, else the CPU. Networks, batches, replay samples and
the ensemble live on the device; simulators stay in CPU processes, so observations cross once per
env step (one batched transfer each way). Checkpoints are always written from CPU tensors and load
onto any device (`postbc.io.checkpoint.load_checkpoint(..., map_location=)`).

Mixed precision: on CUDA, `autocast(device, "bf16")` runs matmuls in bfloat16 and TF32 matmuls are
allowed (`configure`); on the CPU bf16 stays opt-in (12x slower than fp32 on CPUs without AMX,
docs/finetuning.md).
"""

from __future__ import annotations

import torch

from postbc.errors import PostBCError
from postbc.io.config import DEVICE_HELP


def available_devices() -> list[str]:
    """The device strings this machine accepts, e.g. ['cpu', 'cuda:0', 'cuda:1']."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["cpu", *(f"cuda:{i}" for i in range(n))]


def resolve_device(name: str) -> torch.device:
    """The torch device for a `--device` value, refused with what is available when it cannot be used."""
    text = str(name).strip().lower()
    available = available_devices()
    if text == "auto":
        return torch.device(available[1] if len(available) > 1 else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        index = text.partition(":")[2]
        if index and not index.isdigit():
            raise PostBCError(f"--device {name}: a CUDA device is written cuda or cuda:N with N a number")
        if len(available) == 1:
            build = torch.__version__
            raise PostBCError(f"--device {name}: this machine has no CUDA device (torch {build} sees none; available: cpu); "
                              "use --device cpu, or install a CUDA build of torch on a machine with a GPU (README)")
        want = f"cuda:{index or 0}"
        if want not in available:
            raise PostBCError(f"--device {name}: there is no {want}; available: {', '.join(available)}")
        return torch.device(want)
    raise PostBCError(f"--device {name} is not a device; use {DEVICE_HELP}")


def configure(device: torch.device) -> None:
    """Per-process settings for computing on `device`: TF32 matmuls on CUDA (as PyTorch's `high` precision)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.set_device(device)


def autocast(device: torch.device | str, precision: str):
    """Forward-pass context: bf16 autocast on `device`'s type when `precision` is "bf16", else a no-op."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=precision == "bf16")


def resolve_for_run(name: str) -> torch.device:
    """`resolve_device` plus `configure`: what a command calls once, before it writes anything."""
    device = resolve_device(name)
    configure(device)
    return device


def randn_like_on(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, I) of `shape` drawn from `generator` on its own device, then placed like `like` (device, dtype).

    Generators stay on the CPU, so a seeded run draws the same numbers on every device.
    """
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def randint_on(high: int, shape, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform integers in [0, high) drawn from `generator` on its device, then moved to `device`."""
    source = generator.device if generator is not None else device
    return torch.randint(0, high, shape, generator=generator, device=source).to(device)
