"""A sweep's record: the small files of its finished stages, in a directory that can be committed, so a long grid
outlives the machine (or the run directory) it ran on.

`postbc sweep CONFIG --record DIR` copies each stage's directory into DIR/<stage name>/ as soon as the stage is DONE,
without its artifacts (safetensors, HDF5, TensorBoard events, files over `SMALL_BYTES`), and writes `RECORD.json`
there with the size and sha256 of every file left out. A later sweep on a machine that lacks a stage's directory
copies the record back: the stage is DONE again (its metrics, evaluations and markers are the recorded run's) but
*hollow*: its artifacts are missing (`missing`). A hollow stage that a pending stage needs (a pretrained policy still
to be finetuned) is run again to refill them; collection and pretraining are deterministic on the same software, so
the refill is checked against the recorded sha256 of the artifacts (`needed`; logs and events vary). When they match,
the recorded files are put back, so the stage and everything after it stand as recorded; when they differ, the new
run stands, the recorded one is kept under `superseded/<finished_at>/`, and the stages after it run again on the
next sweep (`plan.stage_complete`).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from postbc.experiments import markers
from postbc.io.atomic import atomic_write_json

MANIFEST = "RECORD.json"
SMALL_BYTES = 256 * 1024  # metrics, configs, evaluations and logs fit; policies and replay buffers do not
ARTIFACT_SUFFIXES = (".safetensors", ".hdf5", ".h5", ".npz", ".pt")  # what a dependent stage reads; a refill checks them
SKIP = {".lock", ".refill"}  # a stage's lock file, and a refill's parking place for the recorded files (`parking`)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(stage_dir: Path) -> list[Path]:
    """The stage's files, relative to its directory (markers, outputs, checkpoints, superseded results)."""
    return sorted(p.relative_to(stage_dir) for p in stage_dir.rglob("*")
                  if p.is_file() and not SKIP & set(p.relative_to(stage_dir).parts) and p.name != MANIFEST)


def left_out(rel: Path, size: int) -> bool:
    return "tb" in rel.parts or rel.suffix in ARTIFACT_SUFFIXES or size > SMALL_BYTES


def save(stage_dir: Path, dest: Path) -> None:
    """Record the DONE stage in `stage_dir` at `dest` (replacing an earlier record of it)."""
    stage_dir, dest = Path(stage_dir), Path(dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dropped = {rel: info for rel, info in manifest(stage_dir)["left_out"].items() if not (stage_dir / rel).exists()}
    for rel in _files(stage_dir):
        src = stage_dir / rel
        size = src.stat().st_size
        if left_out(rel, size):
            dropped[str(rel)] = {"bytes": size, "sha256": sha256(src)}
        else:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp / rel)
    atomic_write_json(tmp / MANIFEST, {"left_out": dropped})
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def recorded_at(dest: Path) -> float | None:
    """When the recorded run finished (its DONE marker), None when `dest` holds no complete record."""
    if not (Path(dest) / MANIFEST).exists():
        return None
    done = markers.read_marker(dest, markers.DONE)
    return None if done is None else done.get("finished_at", 0.0)


def sync(stage_dir: Path, dest: Path) -> bool:
    """Record the stage if it is DONE and its record is missing or older; returns whether it wrote one. (A record
    newer than the directory's run, from another machine, is kept.)"""
    done, recorded = markers.read_marker(stage_dir, markers.DONE), recorded_at(dest)
    if done is None or (recorded is not None and recorded >= done.get("finished_at", 0.0)):
        return False
    save(stage_dir, dest)
    return True


def restore(dest: Path, stage_dir: Path) -> bool:
    """Copy the record at `dest` into `stage_dir` when that directory holds nothing yet; returns whether it did.
    A directory with anything in it (a run under way, a partial extension) is the newer truth and is left alone."""
    stage_dir = Path(stage_dir)
    if recorded_at(dest) is None or (stage_dir.exists() and any(p.name not in SKIP for p in stage_dir.iterdir())):
        return False
    for src in sorted(Path(dest).rglob("*")):
        if src.is_file():
            target = stage_dir / src.relative_to(dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return True


def manifest(stage_dir: Path) -> dict[str, Any]:
    return markers.read_marker(stage_dir, MANIFEST) or {"left_out": {}}


def needed(rel: str) -> bool:
    """Whether a left-out file is one a later stage reads (an artifact of the stage's own run, not an earlier
    result under superseded/, a log or TensorBoard events, whose names change from run to run)."""
    return Path(rel).suffix in ARTIFACT_SUFFIXES and "superseded" not in Path(rel).parts


def missing(stage_dir: Path) -> list[str]:
    """The artifacts a restored stage's record left out that are not here (none for a stage that ran here)."""
    stage_dir = Path(stage_dir)
    return [rel for rel in manifest(stage_dir)["left_out"] if needed(rel) and not (stage_dir / rel).exists()]


def parking(stage_dir: Path) -> Path:
    """Where a refill parks the recorded files while the stage runs again (they stay there if it is killed)."""
    return Path(stage_dir) / ".refill"


def park(stage_dir: Path) -> Path:
    """Before a hollow stage runs again: move its recorded files out of the command's way (to .refill/)."""
    stage_dir = Path(stage_dir)
    parked = parking(stage_dir)
    shutil.rmtree(parked, ignore_errors=True)
    for rel in _files(stage_dir) + [Path(MANIFEST)]:
        if "superseded" in rel.parts or not (stage_dir / rel).exists():
            continue
        (parked / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage_dir / rel).replace(parked / rel)
    return parked


def mismatches(stage_dir: Path, parked: Path) -> list[str]:
    """The refilled artifacts whose sha256 differs from the record's (or that the run did not write)."""
    recorded = manifest(parked)["left_out"]
    return [rel for rel, info in recorded.items() if needed(rel)
            and (not (stage_dir / rel).exists() or sha256(stage_dir / rel) != info["sha256"])]


def unpark(stage_dir: Path, parked: Path, keep: bool) -> None:
    """After a refill: `keep` (the artifacts matched) puts the recorded files back over the new run's, so the stage
    stands as recorded; otherwise they go to superseded/<the recorded finished_at>/ beside earlier results."""
    done = markers.read_marker(parked, markers.DONE) or {}
    target = stage_dir if keep else stage_dir / "superseded" / str(int(done.get("finished_at", 0)))
    for src in sorted(parked.rglob("*")):
        if src.is_file():
            rel = src.relative_to(parked)
            if not keep and rel.name == MANIFEST:
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            src.replace(target / rel)
    shutil.rmtree(parked, ignore_errors=True)
