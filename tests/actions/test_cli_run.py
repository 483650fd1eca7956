"""`opstui runbooks` and `opstui run`: the same runner and audit log, from the command line.

Non-terminal cases call main() in-process; the terminal prompt runs a child on a pty and
the crash case SIGKILLs a child mid-action.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opstui.actions.audit import AuditLog
from opstui.cli import main
from tests.support import free_port, run_on_pty

SLEEPER = (
    "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
    "print('sleeping', flush=True); time.sleep(120)"
)


def write_config(tmp_path: Path, **extra: Any) -> Path:
    marker = tmp_path / "marker"
    data: dict[str, Any] = {
        "environment": "staging",
        "audit_log": str(tmp_path / "audit" / "audit.jsonl"),
        "connections": {
            "admin": {"kind": "http", "base_url": f"http://127.0.0.1:{free_port()}"},
            "cache": {
                "kind": "redis",
                "url": f"redis://127.0.0.1:{free_port()}/0",
                "timeout": "1s",
            },
        },
        "runbooks": [
            {
                "id": "ops",
                "title": "Operations",
                "severity": "critical",
                "diagnose": [
                    {
                        "kind": "shell",
                        "title": "Look",
                        "argv": ["echo", "looked"],
                        "readonly": True,
                    },
                ],
                "actions": [
                    {
                        "id": "mark",
                        "key": "M",
                        "kind": "shell",
                        "title": "Write the marker",
                        "verb": "Mark",
                        "argv": [
                            "sh",
                            "-c",
                            'echo "$0" > "$1"; echo wrote',
                            "{{ params.text }}",
                            str(marker),
                        ],
                        "params": {
                            "text": {"type": "str", "default": "hello", "pattern": "[a-z]+"}
                        },
                    },
                    {
                        "id": "nuke",
                        "key": "N",
                        "kind": "shell",
                        "title": "Danger",
                        "danger": "high",
                        "argv": ["touch", str(marker)],
                    },
                    {
                        "id": "pause",
                        "key": "P",
                        "kind": "http",
                        "title": "Pause",
                        "connection": "admin",
                        "method": "POST",
                        "path": "/pause",
                    },
                    {
                        "id": "peek",
                        "key": "p",
                        "kind": "http",
                        "title": "Peek",
                        "connection": "admin",
                        "path": "/queue",
                    },
                    {
                        "id": "flush",
                        "key": "F",
                        "kind": "redis",
                        "title": "Flush",
                        "connection": "cache",
                        "command": ["DEL", "bull:q:failed"],
                        "readonly": True,
                    },
                    {
                        "id": "sleep",
                        "key": "S",
                        "kind": "shell",
                        "title": "Sleep",
                        "argv": [sys.executable, "-c", SLEEPER, str(tmp_path / "sleeper.pid")],
                    },
                ],
            }
        ],
        **extra,
    }
    path = tmp_path / "opstui.yaml"
    path.write_text(json.dumps(data))
    return path


def test_runbooks_lists_classification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["runbooks", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "ops: Operations (critical)" in out
    assert "diagnose 1  Look  [shell]  read-only (declared readonly: true (not verifiable))" in out
    assert "action M mark  Write the marker  [shell]  mutating (" in out
    assert "action N nuke  Danger  [shell]  mutating (" in out and "danger high" in out
    assert "action P pause  Pause  [http]  mutating (POST changes state)" in out
    assert "action p peek  Peek  [http]  read-only (GET does not change state)" in out
    flush = next(line for line in out.splitlines() if " flush " in line)
    assert "mutating? (" in flush and "assumed mutating" in flush

    assert main(["runbooks", "--config", str(config), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    actions = {a["id"]: a for a in listed["actions"]}
    assert actions["pause"]["classification"] == "mutating"
    assert actions["peek"]["classification"] == "read-only"
    assert actions["flush"]["assumed"] is True and actions["flush"]["classification"] == "mutating"


def test_run_refuses_a_mutation_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["run", "--config", str(config), "ops", "mark"]) == 3
    err = capsys.readouterr().err
    assert "refused: a mutation needs a terminal to confirm, or --yes" in err
    assert "command:     sh -c" in err
    assert not (tmp_path / "marker").exists()
    [refused] = AuditLog(tmp_path / "audit" / "audit.jsonl").records()  # nothing ran
    assert (refused["phase"], refused["why"]) == ("refused", "no terminal to confirm and no --yes")


def test_run_yes_runs_and_audits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code = main(["run", "--config", str(config), "ops", "mark", "--param", "text=world", "--yes"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == "wrote\n"
    assert (tmp_path / "marker").read_text() == "world\n"
    records = AuditLog(tmp_path / "audit" / "audit.jsonl").records()
    assert [(r["phase"], r["via"], r["params"]) for r in records] == [
        ("intent", "--yes", {"text": "world"}),
        ("result", "--yes", {"text": "world"}),
    ]


def test_run_read_only_refuses_always(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["run", "--config", str(config), "ops", "mark", "--yes", "--read-only"]) == 3
    assert "read-only mode" in capsys.readouterr().err
    ro_config = write_config(tmp_path, read_only=True)
    assert main(["run", "--config", str(ro_config), "ops", "mark", "--yes"]) == 3
    assert not (tmp_path / "marker").exists()
    # reads still run
    assert main(["run", "--config", str(config), "ops", "diagnose:1", "--read-only"]) == 0
    assert capsys.readouterr().out == "looked\n"


def test_run_usage_errors_and_danger_high(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["run", "--config", str(config), "ops", "mark", "--param", "oops"]) == 2
    assert main(["run", "--config", str(config), "ops", "mark", "-p", "text=UP", "--yes"]) == 2
    assert main(["run", "--config", str(config), "ops", "missing", "--yes"]) == 2
    assert main(["run", "--config", str(config), "nope", "mark"]) == 2
    err = capsys.readouterr().err
    assert "bad --param 'oops': expected NAME=VALUE" in err
    assert "param text: 'UP' does not match [a-z]+" in err
    assert "has no action 'missing'" in err
    assert main(["run", "--config", str(config), "ops", "nuke", "--yes"]) == 3
    assert "--confirm-target" in capsys.readouterr().err
    args = ["run", "--config", str(config), "ops", "nuke", "--yes", "--confirm-target"]
    assert main([*args, "tuch"]) == 3
    assert not (tmp_path / "marker").exists()
    assert main([*args, "touch"]) == 0
    assert (tmp_path / "marker").exists()



def test_terminal_prompt_yes_and_no(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, screen = run_on_pty(["--config", str(config), "ops", "mark"], "no")
    assert code == 3, screen
    assert "environment: staging" in screen and "Type yes to mark:" in screen
    assert "cancelled: nothing was run" in screen
    assert not (tmp_path / "marker").exists()
    code, screen = run_on_pty(["--config", str(config), "ops", "mark"], "yes")
    assert code == 0, screen
    assert (tmp_path / "marker").read_text() == "hello\n"
    assert AuditLog(tmp_path / "audit" / "audit.jsonl").records()[0]["via"] == "prompt"


def test_terminal_prompt_danger_high_types_the_target(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, screen = run_on_pty(["--config", str(config), "ops", "nuke"], "tuch")
    assert code == 3 and "Type the target's name (touch) to run:" in screen, screen
    assert not (tmp_path / "marker").exists()
    code, screen = run_on_pty(["--config", str(config), "ops", "nuke"], "touch")
    assert code == 0, screen
    assert (tmp_path / "marker").exists()


def test_sigkill_mid_action_leaves_an_unfinished_intent_reported_next_start(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
    pidfile = tmp_path / "sleeper.pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opstui", "run", "--config", str(config), "ops", "sleep", "--yes"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"sleeping\n"  # the action is running
        assert [r["phase"] for r in audit.records()] == ["intent"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pidfile.exists():  # the command's own session outlives the killed opstui
            with_pid = int(pidfile.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(with_pid, signal.SIGKILL)
    [unfinished] = audit.unfinished()
    assert unfinished["action"] == "sleep"
    again = subprocess.run(
        [sys.executable, "-m", "opstui", "run", "--config", str(config), "ops", "diagnose:1"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 0, again.stderr
    assert (
        f"audit: an action started at {unfinished['ts']} (sleep on {sys.executable}) has no "
        "result: it may or may not have run"
    ) in again.stderr
