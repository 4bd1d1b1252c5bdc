"""Every third-party module the package imports is declared in pyproject.toml (base or an extra)."""

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = {}  # import name -> distribution name, where they differ


def imported_modules() -> set[str]:
    names = set()
    for path in (ROOT / "src" / "postbc").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "postbc"}


def declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda req: re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()  # noqa: E731
    base = {name(r) for r in project["dependencies"]}
    extras = {name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    return base, extras


def test_every_imported_module_is_declared():
    base, extras = declared()
    missing = sorted(m for m in imported_modules() if DISTRIBUTION.get(m, m).lower() not in base | extras)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_toy_path_needs_no_extra():
    """stats (every interval) and the toy task run on a base install: what they import is a base dependency."""
    base, _ = declared()
    assert {"scipy", "numpy", "torch", "gymnasium"} <= base
