"""The confirm modal on its own: the verb on its button, what it says about an overruled
claim and a failed preview, and that the token it mints is bound to the params it shows."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Button, Input

from opstui.actions.base import Classification, PreparedStep, Preview, Verdict
from opstui.actions.runner import Refused
from opstui.ui.confirm import Confirmed, ConfirmModal, confirm_verb
from tests.ui.test_runbooks_world import (  # noqa: F401 - fixtures
    RUNBOOK,
    World,
    redis_server_fixture,
    screen_text,
    until,
    world_fixture,
)


def step(kind: str, rendered: dict[str, Any], verb: str | None = None) -> PreparedStep:
    return PreparedStep(
        kind=kind, title="t", runbook_id="rb", action_id="a", step_index=None,
        connection="c", params={}, rendered=rendered, equivalent="x", target="y",
        environment="production", verb=verb,
    )


@pytest.mark.parametrize(
    ("kind", "rendered", "verb", "word"),
    [
        ("ecs", {"op": "set_desired_count"}, None, "Scale"),
        ("ecs", {"op": "force_new_deployment"}, None, "Restart"),
        ("ecs", {"op": "stop_task"}, None, "Stop"),
        ("http", {"method": "DELETE"}, None, "Delete"),
        ("http", {"method": "POST"}, None, "Run"),
        ("redis", {"argv": ["UNLINK", "k"]}, None, "Delete"),
        ("redis", {"argv": ["del", "k"]}, None, "Delete"),
        ("redis", {"argv": ["SET", "k", "v"]}, None, "Run"),
        ("shell", {"argv": ["deploy"]}, None, "Run"),
        ("shell", {"argv": ["deploy"]}, "Deploy", "Deploy"),
    ],
)
def test_the_button_says_the_verb(
    kind: str, rendered: dict[str, Any], verb: str | None, word: str
) -> None:
    assert confirm_verb(step(kind, rendered, verb)) == word


async def test_overruled_claim_and_failed_preview_are_said(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        prepared = await app.runner.prepare_action(RUNBOOK, "flush-failed")
        verdict = Verdict(Classification.MUTATING, "Redis flags DEL as write",
                          overruled="declared readonly: true, but Redis flags DEL as write")
        preview = Preview((), error="preview failed: connection refused")
        await app.push_screen(ConfirmModal(app.runner, prepared, verdict, preview))
        await pilot.pause()
        text = screen_text(app)
        assert "config said read-only; overruled: declared readonly: true" in text
        assert "preview failed: connection refused" in text
        assert "preview failed: preview failed" not in text


async def test_the_token_is_bound_to_the_params_shown(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        runner = app.runner
        original = await runner.prepare_action(RUNBOOK, "scale-up")
        verdict = await runner.classify(original)
        results: list[Confirmed | None] = []
        await app.push_screen(ConfirmModal(runner, original, verdict), results.append)
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        modal.query_one("#param-count", Input).value = "7"
        await until(lambda: modal.settled and modal.step.params["count"] == 7,
                    "re-prepared", pause=pilot.pause)
        await pilot.pause()
        assert "--desired" not in screen_text(app)
        assert '"count": "7"' in screen_text(app) or '"count": 7' in screen_text(app)
        modal.query_one("#confirm-yes", Button).press()
        await until(lambda: bool(results), "the answer", pause=pilot.pause)
        [confirmed] = results
        assert confirmed is not None and confirmed.step.params == {"count": 7}
        with pytest.raises(Refused):  # the token cannot run what was shown before the edit
            await runner.run(original, token=confirmed.token)
        assert world.api.scale_requests == []
        outcome = await runner.run(confirmed.step, token=confirmed.token)
        assert outcome.ok and world.api.workers == 7
        with pytest.raises(Refused):  # and it runs once
            await runner.run(confirmed.step, token=confirmed.token)
        assert len(world.api.scale_requests) == 1


async def test_a_step_needing_a_secret_not_set_here_is_refused_in_the_modal(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view via Prometheus started without the admin key: the modal says so up front and
    offers no button that could only fail."""
    import json

    from opstui.config.kinds.prometheus import ViaPrometheus
    from opstui.config.loader import load_config
    from opstui.engine.mirror import MirrorEngine
    from opstui.ui.app import OpstuiApp, build_runner
    from tests.actions.test_http import config as http_config

    monkeypatch.delenv("OPSTUI_T_ADMIN_KEY", raising=False)
    monkeypatch.setenv("OPSTUI_T_BEARER", "b")
    path = tmp_path / "ops.yaml"
    data = {**http_config("http://127.0.0.1:9"), "audit_log": str(tmp_path / "audit.jsonl")}
    path.write_text(json.dumps(data))
    config = load_config(path, defer_secrets=True)
    engine = MirrorEngine(config, ViaPrometheus(url="http://127.0.0.1:9"))
    runner = build_runner(engine, read_only=False)
    app = OpstuiApp(engine, runner=runner, poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        prepared = await runner.prepare_action("queue", "pause-low")
        verdict = Verdict(Classification.MUTATING, "POST mutates")
        modal = ConfirmModal(runner, prepared, verdict, Preview(()))
        await app.push_screen(modal)
        await pilot.pause()
        text = screen_text(app)
        assert "cannot run from here: environment variable OPSTUI_T_ADMIN_KEY is not" in text
        assert not modal.can_confirm
        assert "Refused: " in text
        assert not app.screen.query("#confirm-yes")
