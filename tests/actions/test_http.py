"""The http executor through the Runner, against a real local aiohttp server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opstui.actions.audit import AuditLog
from opstui.actions.runner import ActionError, Refused
from opstui.actions.tokens import ConfirmToken
from opstui.engine.events import EventKind
from tests.actions.support import AdminApp, make_config, make_runner
from tests.support import ServeApp

ADMIN_KEY = "adm-key-7f3a9c2e11"
BEARER = "bearer-5d1e88c4aa"


def config(base_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "environment": "production",
        "connections": {
            "admin": {
                "kind": "http",
                "base_url": base_url,
                "headers": {"X-Admin-Key": "${OPSTUI_T_ADMIN_KEY}"},
                "timeout": "3s",
            }
        },
        "probes": [{"id": "api", "kind": "health", "connection": "admin"}],
        "runbooks": [
            {
                "id": "queue",
                "title": "Queue backlog",
                "diagnose": [
                    {
                        "kind": "http",
                        "title": "Queue counts",
                        "connection": "admin",
                        "path": "/admin/queue",
                    },
                ],
                "actions": [
                    {
                        "id": "pause-low",
                        "key": "P",
                        "kind": "http",
                        "title": "Pause low-priority jobs",
                        "connection": "admin",
                        "method": "POST",
                        "path": "/admin/queue/pause-priority",
                        "headers": {"Authorization": "${OPSTUI_T_BEARER}"},
                        "json": {"priority": "{{ params.priority }}", "note": "{{ params.note }}"},
                        "params": {
                            "priority": {
                                "type": "choice",
                                "choices": ["low", "normal"],
                                "default": "low",
                            },
                            "note": {"type": "str", "default": "by opstui"},
                        },
                        "verb": "Pause",
                    },
                    {
                        "id": "peek",
                        "kind": "http",
                        "title": "Peek (GET)",
                        "connection": "admin",
                        "path": "/admin/queue",
                    },
                    {
                        "id": "leak",
                        "kind": "http",
                        "title": "A server echoing the key",
                        "connection": "admin",
                        "method": "PUT",
                        "path": "/echo-key",
                    },
                ],
                **extra,
            }
        ],
    }


@pytest.fixture
async def admin(serve_app: ServeApp, monkeypatch: pytest.MonkeyPatch) -> tuple[AdminApp, str]:
    monkeypatch.setenv("OPSTUI_T_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("OPSTUI_T_BEARER", BEARER)
    app = AdminApp()
    return app, await serve_app(app.app())


async def test_post_is_refused_without_token_and_runs_once_with_one(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    app, url = admin
    parts = make_runner(make_config(config(url)), tmp_path)
    runner = parts.runner
    try:
        step = await runner.prepare_action("queue", "pause-low")
        assert step.equivalent == (
            f"curl -X POST {url}/admin/queue/pause-priority -H 'X-Admin-Key: ***' "
            '-H \'Authorization: ***\' -d \'{"priority": "low", "note": "by opstui"}\''
        )
        assert step.target == f"POST {url}/admin/queue/pause-priority"
        verdict = await runner.classify(step)
        assert verdict.mutating and "POST" in verdict.reason

        with pytest.raises(Refused, match="needs a confirmation"):
            await runner.run(step)
        assert app.mutations() == []

        token = runner.confirm(step, via="modal")
        outcome = await runner.run(step, token=token)
        assert outcome.ok, outcome
        assert outcome.summary.startswith("HTTP 200 in ")
        assert '"paused": "low"' in outcome.output
        [sent] = app.mutations()
        assert sent.headers["x-admin-key"] == ADMIN_KEY
        assert sent.headers["authorization"] == BEARER
        assert json.loads(sent.body) == {"priority": "low", "note": "by opstui"}

        with pytest.raises(Refused, match="already used"):  # double Enter runs once
            await runner.run(step, token=token)
        assert len(app.mutations()) == 1
        kinds = [e.kind for e in parts.timeline.events()]
        assert EventKind.ACTION in kinds and EventKind.RESULT in kinds
    finally:
        await parts.close()


async def test_token_is_bound_to_the_exact_params(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    app, url = admin
    parts = make_runner(make_config(config(url)), tmp_path)
    try:
        low = await parts.runner.prepare_action("queue", "pause-low", {"priority": "low"})
        normal = await parts.runner.prepare_action("queue", "pause-low", {"priority": "normal"})
        token = parts.runner.confirm(low, via="modal")
        with pytest.raises(Refused, match="different action or different params"):
            await parts.runner.run(normal, token=token)
        forged = ConfirmToken(token.token_id + "0", normal.fingerprint(), "modal", "0" * 64)
        with pytest.raises(Refused, match="not issued by this runner"):
            await parts.runner.run(normal, token=forged)
        other = make_runner(make_config(config(url)), tmp_path / "other")
        foreign = other.runner.confirm(normal, via="modal")
        with pytest.raises(Refused, match="not issued by this runner"):
            await parts.runner.run(normal, token=foreign)
        await other.close()
        assert app.mutations() == []
        outcome = await parts.runner.run(low, token=token)  # the refusals did not spend it
        assert outcome.ok
        assert len(app.mutations()) == 1
    finally:
        await parts.close()


async def test_read_only_mode_refuses_even_with_a_token(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    app, url = admin
    for cfg, flag in ((config(url), True), ({**config(url), "read_only": True}, False)):
        parts = make_runner(make_config(cfg), tmp_path, read_only=flag)
        try:
            assert parts.runner.read_only
            step = await parts.runner.prepare_action("queue", "pause-low")
            token = parts.runner.confirm(step, via="modal")
            with pytest.raises(Refused, match="read-only mode"):
                await parts.runner.run(step, token=token)
            # reads still run in read-only mode, without a token
            diagnose = await parts.runner.prepare_diagnose("queue", 0)
            outcome = await parts.runner.run(diagnose)
            assert outcome.ok and "12408" in outcome.output
        finally:
            await parts.close()
    assert app.mutations() == []
    records = AuditLog(tmp_path / "state" / "audit.jsonl").records()  # nothing ran:
    assert [(r["phase"], r["why"]) for r in records] == [("refused", "read-only mode")] * 2


async def test_get_runs_without_token_and_is_on_the_timeline_not_in_the_audit(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    app, url = admin
    parts = make_runner(make_config(config(url)), tmp_path)
    try:
        step = await parts.runner.prepare_action("queue", "peek")
        assert step.equivalent.startswith(f"curl {url}/admin/queue")
        verdict = await parts.runner.classify(step)
        assert not verdict.mutating
        outcome = await parts.runner.run(step)
        assert outcome.ok
        assert json.loads(outcome.output.split("\n\n", 1)[1]) == {
            "queues": {"low": 12408, "high": 3}
        }
        assert [r.method for r in app.requests] == ["GET"]
        [event] = parts.timeline.events()
        assert event.kind is EventKind.DIAGNOSE and event.runbook_id == "queue"
        assert not parts.audit.path.exists()
    finally:
        await parts.close()


async def test_expected_status_and_secret_scrubbed_from_output(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    _, url = admin
    parts = make_runner(make_config(config(url)), tmp_path)
    try:
        step = await parts.runner.prepare_action("queue", "leak")
        outcome = await parts.runner.run(step, token=parts.runner.confirm(step, via="--yes"))
        assert not outcome.ok
        assert "HTTP 500" in outcome.summary and "expected 2xx" in outcome.summary
        assert ADMIN_KEY not in outcome.output and "***" in outcome.output
    finally:
        await parts.close()


async def test_unknown_names_are_one_line_errors(
    admin: tuple[AdminApp, str], tmp_path: Path
) -> None:
    _, url = admin
    parts = make_runner(make_config(config(url)), tmp_path)
    try:
        with pytest.raises(ActionError, match="unknown runbook 'nope'; known: queue"):
            await parts.runner.prepare_action("nope", "x")
        with pytest.raises(ActionError, match="has no action 'x'; actions: pause-low, peek"):
            await parts.runner.prepare_action("queue", "x")
        with pytest.raises(ActionError, match=r"unknown param 'colour'"):
            await parts.runner.prepare_action("queue", "pause-low", {"colour": "red"})
    finally:
        await parts.close()
