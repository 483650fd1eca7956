"""The audit log: intent and result per mutation, fsync'd, 0600, and never a secret value."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from opstui.actions import audit as audit_module
from opstui.actions.audit import AuditLog, report_unfinished
from opstui.engine.events import EventKind
from tests.actions.support import AdminApp, make_config, make_runner
from tests.support import ServeApp

SECRETS = {
    "OPSTUI_T_CONN_KEY": "conn-key-91b2c3d4",
    "OPSTUI_T_STEP_TOKEN": "step-token-5e6f7a8b",
    "OPSTUI_T_URL_PASSWORD": "url-pass-0c1d2e3f",
    "OPSTUI_T_SHELL_ENV": "shell-env-4a5b6c7d",
}


def secret_config(url: str, marker: Path) -> dict[str, Any]:
    host = url.removeprefix("http://")
    return {
        "environment": "production",
        "connections": {
            "admin": {
                "kind": "http",
                "base_url": f"http://ops:${{OPSTUI_T_URL_PASSWORD}}@{host}",
                "headers": {"X-Admin-Key": "${OPSTUI_T_CONN_KEY}"},
            }
        },
        "runbooks": [
            {
                "id": "rb",
                "title": "Secrets everywhere",
                "actions": [
                    {
                        "id": "post",
                        "kind": "http",
                        "title": "Post",
                        "connection": "admin",
                        "method": "POST",
                        "path": "/admin/x?note={{ params.note }}",
                        "headers": {"X-Step-Token": "${OPSTUI_T_STEP_TOKEN}"},
                        "json": {"note": "{{ params.note }}"},
                        "params": {"note": {"type": "str"}},
                    },
                    {
                        "id": "leak",
                        "kind": "http",
                        "title": "Echo",
                        "connection": "admin",
                        "method": "PUT",
                        "path": "/echo-key",
                    },
                    {
                        "id": "sh",
                        "kind": "shell",
                        "title": "Shell",
                        "argv": [
                            "sh",
                            "-c",
                            'echo $TOKEN; echo $TOKEN >&2; touch "$1"; exit 4',
                            "sh",
                            str(marker),
                        ],
                        "env": {"TOKEN": "${OPSTUI_T_SHELL_ENV}"},
                    },
                ],
            }
        ],
    }


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("secrets_env")
async def test_intent_and_result_lines_fsynced_and_no_secret_anywhere(
    serve_app: ServeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = AdminApp()
    url = await serve_app(app.app())
    marker = tmp_path / "marker"
    parts = make_runner(make_config(secret_config(url, marker)), tmp_path)
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(audit_module.os, "fsync", counting_fsync)
    monkeypatch.setenv("SSH_CLIENT", "203.0.113.7 51000 22")
    try:
        # a param whose value is a secret (pasted by mistake) is scrubbed too
        step = await parts.runner.prepare_action(
            "rb", "post", {"note": SECRETS["OPSTUI_T_STEP_TOKEN"]}
        )
        assert (await parts.runner.run(step, token=parts.runner.confirm(step, via="modal"))).ok
        leak = await parts.runner.prepare_action("rb", "leak")
        outcome = await parts.runner.run(leak, token=parts.runner.confirm(leak, via="--yes"))
        assert not outcome.ok
        sh = await parts.runner.prepare_action("rb", "sh")
        outcome = await parts.runner.run(sh, token=parts.runner.confirm(sh, via="prompt"))
        assert marker.exists() and outcome.summary == "exit 4"
        assert SECRETS["OPSTUI_T_SHELL_ENV"] not in outcome.output
        parts.runner.tick_checklist("rb", "Call the on-call lead", True)
    finally:
        await parts.close()

    # the requests really carried the secrets...
    [first, _] = app.mutations()
    assert first.headers["x-admin-key"] == SECRETS["OPSTUI_T_CONN_KEY"]
    assert first.headers["x-step-token"] == SECRETS["OPSTUI_T_STEP_TOKEN"]

    # ...and the audit file has none of them
    text = parts.audit.path.read_text()
    for name, value in SECRETS.items():
        assert value not in text, name
    for event in parts.timeline.events():
        for value in SECRETS.values():
            assert value not in event.message

    records = [json.loads(line) for line in text.splitlines()]
    assert [r["phase"] for r in records] == [
        "intent",
        "result",
        "intent",
        "result",
        "intent",
        "result",
        "checklist",
    ]
    assert len(synced) == len(records)  # one fsync per line
    intent, result = records[0], records[1]
    assert result["id"] == intent["id"]
    for key in (
        "ts",
        "user",
        "host",
        "environment",
        "runbook",
        "action",
        "kind",
        "target",
        "params",
        "equivalent",
        "classification",
        "reason",
        "via",
    ):
        assert key in intent, key
    assert intent["ts"].endswith("Z") and intent["ssh_origin"] == "203.0.113.7"
    assert intent["environment"] == "production" and intent["via"] == "modal"
    assert intent["classification"] == "mutating" and intent["params"] == {"note": "***"}
    assert "X-Admin-Key: ***" in intent["equivalent"]
    assert result["ok"] is True and result["summary"].startswith("HTTP 200")
    assert isinstance(result["duration_s"], float)
    assert records[5]["ok"] is False and records[5]["error"] == "exit 4"
    assert records[6]["done"] is True and records[6]["target"] == "Call the on-call lead"
    assert stat.S_IMODE(parts.audit.path.stat().st_mode) == 0o600
    assert [e.kind for e in parts.timeline.events()].count(EventKind.CHECKLIST) == 1


def test_unfinished_intents_are_reported(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "deep" / "dir" / "audit.jsonl")
    done = log.intent({"action": "pause", "target": "POST http://x/p", "environment": "prod"})
    log.result(done, {"ok": True})
    log.intent(
        {
            "action": "scale-up",
            "target": "anclora-production/anclora-whatsapp",
            "environment": "production",
        }
    )
    with log.path.open("a") as handle:  # a line torn by a crash mid-write
        handle.write('{"phase": "intent", "id": "tor')
    [open_one] = log.unfinished()
    assert open_one["action"] == "scale-up"
    [line] = report_unfinished(log)
    assert line == (
        f"audit: an action started at {open_one['ts']} (scale-up on "
        "anclora-production/anclora-whatsapp) has no result: it may or may not have run"
    )
    assert AuditLog(tmp_path / "none.jsonl").unfinished() == []


def test_default_path(tmp_path: Path) -> None:
    configured = make_config({"audit_log": str(tmp_path / "a.jsonl")})
    assert AuditLog.default_path(configured) == tmp_path / "a.jsonl"
    assert AuditLog.default_path(make_config({})).name == "audit.jsonl"
