"""A stand-in sweep stage for scheduler tests: counts to `steps`, checkpointing each step, or fails; may write an
artifact and read its dependency's."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path


@dataclasses.dataclass
class StandinConfig:
    out: Path
    steps: int = 3
    sleep: float = 0.0
    fail: bool = False
    device: str = "auto"
    artifact: str = ""  # when set, also writes it to model.safetensors (what a sweep record leaves out)
    reads: str = ""  # a file that must exist (a stage's input from the stage it depends on)


def run(cfg: StandinConfig) -> None:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "starts.txt", "a") as f:
        f.write("start\n")
    (out / "device.txt").write_text(cfg.device)
    if cfg.fail:
        raise RuntimeError("stand-in stage asked to fail")
    if cfg.reads and not Path(cfg.reads).exists():
        raise FileNotFoundError(cfg.reads)
    if cfg.artifact:
        (out / "model.safetensors").write_text(cfg.artifact)
    ckpt = out / "step.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    while step < cfg.steps:
        time.sleep(cfg.sleep)
        step += 1
        ckpt.write_text(json.dumps({"step": step}))
