"""The runner is the only way to an executor; two concurrent runs of one token run once."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import opstui
from opstui.actions.runner import Refused
from tests.actions.support import AdminApp, make_config, make_runner
from tests.support import ServeApp

SRC = Path(opstui.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_only_the_runner_imports_executors() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("actions/executors/") or relative == "actions/runner.py":
            continue
        if any(name.startswith("opstui.actions.executors") for name in _imports(path)):
            offenders.append(relative)
    assert offenders == []
    assert "opstui.actions.executors" in _imports(SRC / "actions" / "runner.py")


async def test_two_concurrent_runs_with_one_token_run_once(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    app = AdminApp()
    url = await serve_app(app.app())
    config = make_config(
        {
            "connections": {"admin": {"kind": "http", "base_url": url}},
            "runbooks": [
                {
                    "id": "rb",
                    "title": "RB",
                    "actions": [
                        {
                            "id": "go",
                            "kind": "http",
                            "title": "Go",
                            "connection": "admin",
                            "method": "DELETE",
                            "path": "/jobs/failed",
                        },
                        {
                            "id": "call",
                            "kind": "manual",
                            "title": "Call the lead",
                            "text": "Phone the on-call lead",
                        },
                    ],
                }
            ],
        }
    )
    parts = make_runner(config, tmp_path)
    try:
        step = await parts.runner.prepare_action("rb", "go")
        token = parts.runner.confirm(step, via="modal")
        results = await asyncio.gather(
            parts.runner.run(step, token=token),
            parts.runner.run(step, token=token),
            return_exceptions=True,
        )
        assert sum(1 for r in results if isinstance(r, Refused)) == 1
        assert len(app.mutations()) == 1 and app.mutations()[0].method == "DELETE"

        manual = await parts.runner.prepare_action("rb", "call")
        outcome = await parts.runner.run(manual)  # nothing to confirm: a person does it
        assert not outcome.ok and outcome.summary.startswith("needs a person")
        assert outcome.output == "Phone the on-call lead"
        with pytest.raises(Refused):
            await parts.runner.run(step, token=token)
    finally:
        await parts.close()
