"""Typed command configs: validation helpers and JSON round trips.

Every command has one dataclass; its `__post_init__` calls these helpers so a bad option fails
with a message that names the field and the values it accepts.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

T = TypeVar("T")


def require_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")


def require_positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(f"{field}={value!r} must be {'>= 0' if allow_zero else '> 0'}")


def require_range(field: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise ValueError(f"{field}={value!r} must lie in [{low}, {high}]")


DEVICE_HELP = "auto | cpu | cuda | cuda:N (auto: the first CUDA device when there is one, else cpu)"


def require_device_name(field: str, value: str) -> None:
    """The form of a `--device` value (whether that device exists is `postbc.device.resolve_device`'s check)."""
    text = str(value).strip().lower()
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return
    raise ValueError(f"{field}={value!r} is not a device; use {DEVICE_HELP}")


def to_jsonable(cfg: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict (paths become strings, tuples lists)."""

    def convert(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if dataclasses.is_dataclass(v):
            return to_jsonable(v)
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v

    return {f.name: convert(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def from_jsonable(cls: type[T], data: dict[str, Any], *, recorded: bool = False) -> T:
    """Rebuild a (possibly nested) config dataclass from `to_jsonable` output; unknown keys are refused.

    `recorded=True` reads a config a run wrote earlier: a field missing from it takes the class's
    `LEGACY_DEFAULTS[field]` when it has one (what the run did before the field existed), not
    today's default. Options typed by a user always get today's defaults.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}; known fields: {sorted(names)}")
    legacy = getattr(cls, "LEGACY_DEFAULTS", {}) if recorded else {}
    kwargs = {name: value for name, value in legacy.items() if name not in data}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, recorded)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, recorded: bool = False) -> Any:
    origin = typing.get_origin(hint)
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return from_jsonable(hint, value, recorded=recorded)
    if hint is Path:
        return Path(value)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(args[0], value, recorded) if len(args) == 1 else value
    if origin is tuple:
        return tuple(value)
    return value


def dumps(cfg: Any) -> str:
    return json.dumps(to_jsonable(cfg), indent=2, sort_keys=True)
