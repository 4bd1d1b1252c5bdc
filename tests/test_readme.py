"""The README's two set-up commands are the contract with users and CI: keep them honest."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = setup_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert main_job.rstrip().endswith("postbc demo")
    assert "pytest" in tests
    for cmd in commands:
        assert "pip install -q torch==2.13.0" in cmd, "torch must be installed first from the CPU wheel"


def test_ci_calls_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci
