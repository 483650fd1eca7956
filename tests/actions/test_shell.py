"""The shell executor through the Runner: real commands, real files, real process groups."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from opstui.actions.base import Progress
from opstui.actions.runner import Refused
from tests.actions.support import make_config, make_runner


def shell_config(tmp_path: Path) -> dict[str, Any]:
    marker = tmp_path / "touched"
    pidfile = tmp_path / "sleeper.pid"
    child = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "print('started', flush=True); time.sleep(60)"
    )
    return {
        "environment": "staging",
        "runbooks": [
            {
                "id": "ops",
                "title": "Ops",
                "diagnose": [
                    {
                        "kind": "shell",
                        "title": "List",
                        "argv": ["ls", str(tmp_path)],
                        "readonly": True,
                    },
                ],
                "actions": [
                    {
                        "id": "touch",
                        "kind": "shell",
                        "title": "Write the marker",
                        "argv": [
                            "sh",
                            "-c",
                            'echo one; echo two; echo "$WHO" > "$1"',
                            "sh",
                            str(marker),
                        ],
                        "env": {"WHO": "{{ params.who }}"},
                        "params": {"who": {"type": "str", "pattern": "[a-z]+", "default": "ana"}},
                    },
                    {
                        "id": "fail",
                        "kind": "shell",
                        "title": "Fail",
                        "argv": ["sh", "-c", "echo nope >&2; exit 3"],
                    },
                    {
                        "id": "sleep",
                        "kind": "shell",
                        "title": "Sleep",
                        "timeout": "1s",
                        "argv": [sys.executable, "-c", child, str(pidfile)],
                    },
                    {
                        "id": "long",
                        "kind": "shell",
                        "title": "Sleep long",
                        "argv": [sys.executable, "-c", child, str(pidfile)],
                    },
                    {
                        "id": "piped",
                        "kind": "shell",
                        "title": "Piped",
                        "shell": True,
                        "readonly": True,
                        "argv": ["echo abc | tr a-z A-Z"],
                        "cwd": str(tmp_path),
                    },
                ],
            }
        ],
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _gone(pid: int) -> bool:
    for _ in range(100):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_mutating_command_refused_without_token_then_runs_with_one(tmp_path: Path) -> None:
    parts = make_runner(make_config(shell_config(tmp_path)), tmp_path)
    marker = tmp_path / "touched"
    try:
        step = await parts.runner.prepare_action("ops", "touch", {"who": "bea"})
        assert step.equivalent.startswith("WHO=*** sh -c ")
        assert step.target == "sh"
        verdict = await parts.runner.classify(step)
        assert verdict.mutating
        with pytest.raises(Refused):
            await parts.runner.run(step)
        assert not marker.exists()
        lines: list[str] = []
        outcome = await parts.runner.run(
            step, token=parts.runner.confirm(step, via="prompt"), output=lines.append
        )
        assert outcome.ok and outcome.summary == "exit 0"
        assert lines == ["one", "two"]
        assert marker.read_text() == "bea\n"
    finally:
        await parts.close()


async def test_declared_readonly_runs_without_token_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "visible.txt").write_text("x")
    parts = make_runner(make_config(shell_config(tmp_path)), tmp_path, read_only=True)
    try:
        step = await parts.runner.prepare_diagnose("ops", 0)
        verdict = await parts.runner.classify(step)
        assert not verdict.mutating
        assert verdict.reason == "declared readonly: true (not verifiable)"
        outcome = await parts.runner.run(step)
        assert outcome.ok and "visible.txt" in outcome.output
        piped = await parts.runner.prepare_action("ops", "piped")
        assert piped.equivalent == f"(cd {tmp_path} && /bin/sh -c 'echo abc | tr a-z A-Z')"
        assert (await parts.runner.run(piped)).output == "ABC"
    finally:
        await parts.close()


async def test_exit_code_is_in_the_summary(tmp_path: Path) -> None:
    parts = make_runner(make_config(shell_config(tmp_path)), tmp_path)
    try:
        step = await parts.runner.prepare_action("ops", "fail")
        outcome = await parts.runner.run(step, token=parts.runner.confirm(step, via="modal"))
        assert not outcome.ok and outcome.summary == "exit 3" and outcome.output == "nope"
    finally:
        await parts.close()


async def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    parts = make_runner(make_config(shell_config(tmp_path)), tmp_path)
    try:
        step = await parts.runner.prepare_action("ops", "sleep")
        outcome = await parts.runner.run(step, token=parts.runner.confirm(step, via="modal"))
        assert not outcome.ok and outcome.summary.startswith("timed out after 1s")
        assert outcome.output == "started"
        assert await _gone(int((tmp_path / "sleeper.pid").read_text()))
        [result] = [r for r in parts.audit.records() if r["phase"] == "result"]
        assert result["ok"] is False and result["summary"].startswith("timed out")
    finally:
        await parts.close()


async def test_cancel_terminates_the_command(tmp_path: Path) -> None:
    parts = make_runner(make_config(shell_config(tmp_path)), tmp_path)
    try:
        step = await parts.runner.prepare_action("ops", "long")
        progress = Progress()
        started = asyncio.Event()

        def seen(line: str) -> None:
            if line == "started":
                started.set()

        task = asyncio.create_task(
            parts.runner.run(
                step,
                token=parts.runner.confirm(step, via="modal"),
                output=seen,
                progress=progress,
            )
        )
        await asyncio.wait_for(started.wait(), 10)
        pid = int((tmp_path / "sleeper.pid").read_text())
        assert _alive(pid)
        progress.cancel.set()
        outcome = await asyncio.wait_for(task, 10)
        assert outcome.cancelled and outcome.summary == "cancelled"
        assert await _gone(pid)
    finally:
        await parts.close()
