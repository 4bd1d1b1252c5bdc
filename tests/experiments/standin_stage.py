"""A stand-in sweep stage for scheduler tests: counts to `steps`, checkpointing each step, or fails."""

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


def run(cfg: StandinConfig) -> None:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "starts.txt", "a") as f:
        f.write("start\n")
    (out / "device.txt").write_text(cfg.device)
    if cfg.fail:
        raise RuntimeError("stand-in stage asked to fail")
    ckpt = out / "step.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    while step < cfg.steps:
        time.sleep(cfg.sleep)
        step += 1
        ckpt.write_text(json.dumps({"step": step}))
