"""The README's two commands stay true: CI runs the very test command the README shows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _shell_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_readme_starts_with_demo_and_test_commands() -> None:
    demo, tests = _shell_blocks()[:2]
    assert demo.endswith("opstui demo")
    assert "pytest" in tests and "pip install" in tests and "venv" in tests


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _shell_blocks()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f'test_command="{test_command}"' in ci
    assert "OPSTUI_REQUIRE_SERVERS=1" in ci
    assert "mypy --strict src" in ci and "ruff check" in ci
