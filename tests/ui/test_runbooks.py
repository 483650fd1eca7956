"""Pilot walks of the runbook screens against real servers (tests/ui/test_runbooks_world.py):
the palette, diagnostics that run by themselves, actions through the confirm modal (cancel
changes nothing on the server, confirm changes it once), the watch, the checklist, read-only
mode, the ctrl+p entries, and the timeline's incident export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Button, Input

from opstui.engine.events import EventKind
from opstui.states import State
from opstui.ui.app import OpstuiApp
from opstui.ui.confirm import READ_ONLY_TEXT, ConfirmModal
from opstui.ui.palette import runbook_commands
from opstui.ui.runbook_screen import RunbookScreen
from opstui.ui.runbooks import RunbookPalette
from opstui.ui.timeline import TimelineScreen
from tests.ui.test_runbooks_world import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    FAILED_KEY,
    RUNBOOK,
    World,
    classified,
    diagnostics_done,
    redis_server_fixture,
    screen_text,
    until,
    world_fixture,
)

SIZE = (80, 24)


async def wait_crit(app: OpstuiApp) -> None:
    await until(lambda: app.engine.snapshot("queue").state is State.CRIT, "queue in CRIT")


async def test_r_suggests_the_crit_panels_runbook_and_diagnostics_run_by_themselves(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_crit(app)
        await pilot.press("r")
        await until(lambda: isinstance(app.screen, RunbookPalette), "the palette")
        palette = app.screen
        assert isinstance(palette, RunbookPalette)
        assert [e.runbook_id for e in palette.entries] == [RUNBOOK, "cache-cold"]
        assert palette.entries[0].state is State.CRIT
        await pilot.pause()
        text = screen_text(app)
        assert "✖ CRIT queue · High queue backlog" in text
        assert palette.highlighted_id == RUNBOOK
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        await until(lambda: diagnostics_done(screen), "the diagnostics", pause=pilot.pause)
        rows = screen.rows
        assert (rows["diag-0"].state, rows["diag-0"].summary) == ("ok", "(integer) 5")
        assert (rows["diag-1"].state, rows["diag-1"].summary) == ("ok", "(integer) 3")
        assert rows["diag-2"].state == "ok" and rows["diag-2"].summary == "exit 0"
        assert rows["diag-2"].lines == ["worker 1: busy", "worker 2: idle"]
        await until(lambda: classified(screen), "the classification", pause=pilot.pause)
        await pilot.pause()
        text = screen_text(app)
        assert "Runbook: High queue backlog" in text and "critical" in text
        assert "Queue depth > 10,000" in text
        assert "Panels: queue ✖ CRIT" in text
        assert "✔ Wait list length" in text and "ok · (integer) 5" in text
        assert "[S] Scale up workers  ⚠ mutates · danger medium" in text
        assert "[D] Delete failed jobs  ⚠ mutates · danger high" in text
        assert "[m] Queue metrics  read-only" in text
        assert "[ ] Check Sentry for new errors" in text
        assert "[ ] Tell #incidents" in text
        assert "(integer) 5" in text  # the first step is selected: its output in the pane
        await pilot.press("down", "down")
        await pilot.pause()
        assert "worker 2: idle" in screen_text(app)
        # every diagnose step is on the timeline, for the incident log
        diagnosed = [e for e in app.engine.timeline.events() if e.kind is EventKind.DIAGNOSE]
        assert len(diagnosed) == 3
        assert all(e.runbook_id == RUNBOOK for e in diagnosed)


async def test_palette_filters_fuzzily_and_escape_closes(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await pilot.pause()
        palette = app.screen
        assert isinstance(palette, RunbookPalette)
        await pilot.press(*"cche")
        await pilot.pause()
        assert [e.runbook_id for e in palette.shown] == ["cache-cold"]
        await pilot.press(*"zzz")
        await pilot.pause()
        assert palette.shown == [] and "No runbook matches." in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.dashboard
        # the focused panel's runbook is preselected, whatever its place in the list
        await pilot.press("l")
        await pilot.pause()
        panel = app.dashboard.focused_panel()
        assert panel is not None and panel.probe_id == "web"
        await pilot.press("r")
        await pilot.pause()
        chooser = app.screen
        assert isinstance(chooser, RunbookPalette)
        assert chooser.entries[0].runbook_id == RUNBOOK
        assert chooser.highlighted_id == "cache-cold"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RunbookScreen) and app.screen.runbook.id == "cache-cold"


async def open_runbook(app: OpstuiApp, pilot: object, runbook_id: str = RUNBOOK
                       ) -> RunbookScreen:
    app.open_runbook(runbook_id)
    await until(lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
    screen = app.screen
    assert isinstance(screen, RunbookScreen)
    await until(lambda: diagnostics_done(screen) and classified(screen), "diagnostics")
    return screen


async def test_scale_cancel_changes_nothing_confirm_scales_and_the_watch_finishes(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_crit(app)
        screen = await open_runbook(app, pilot)
        await pilot.press("S")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        await pilot.pause()
        text = screen_text(app)
        assert "Confirm: Scale up workers" in text
        assert "PRODUCTION" in text
        assert f"POST {world.api_url}/workers/scale" in text  # the target
        assert f"curl -X POST {world.api_url}/workers/scale" in text  # the equivalent
        assert "X-Admin-Key: ***" in text and ADMIN_KEY not in text
        assert "POST changes state" in text or "mutates" in text
        assert modal.query_one("#param-count", Input).value == "4"
        assert "no preview for this kind" in text or "preview" in text
        yes = modal.query_one("#confirm-yes", Button)
        assert str(yes.label) == "Scale" and not yes.disabled
        assert app.focused is modal.query_one("#confirm-cancel", Button)
        await pilot.press("enter")  # enter on the focused Cancel
        await until(lambda: app.screen is screen, "the modal to close")
        assert world.api.scale_requests == [] and world.api.workers == 1
        assert not world.audit.exists() or "intent" not in world.audit.read_text()

        await pilot.press("S")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal again")
        await pilot.press("tab", "enter")  # Cancel -> Scale, then yes
        await until(lambda: world.api.workers == 4, "the server to scale")
        assert [int(r["count"]) for r in world.api.scale_requests] == [4]
        row = screen.rows["act-scale-up"]
        await until(lambda: row.phase == "watch" and row.state == "ok", "the watch",
                    pause=pilot.pause)
        assert row.summary.startswith("state == ok after")
        await pilot.pause()
        assert "watch ok" in screen_text(app)
        records = [json.loads(line) for line in world.audit.read_text().splitlines()]
        assert [r["phase"] for r in records] == ["cancelled", "intent", "result"]
        assert records[0]["via"] == "modal" and records[2]["ok"] is True  # the Cancel, audited
        assert ADMIN_KEY not in world.audit.read_text()
        kinds = [e.kind for e in app.engine.timeline.events()]
        assert EventKind.ACTION in kinds and EventKind.RESULT in kinds


async def test_double_enter_runs_once(world: World) -> None:
    app = world.app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runbook(app, pilot)
        await pilot.press("S")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        await pilot.press("tab", "enter", "enter")
        await until(lambda: world.api.workers == 4, "the server to scale")
        await until(lambda: screen.rows["act-scale-up"].state != "running" or
                    screen.rows["act-scale-up"].phase == "watch", "the action to end")
        await pilot.pause()
        assert len(world.api.scale_requests) == 1
        # the second Enter, if it reached the runbook, only opened a fresh modal (on Cancel)
        if isinstance(app.screen, ConfirmModal):
            assert app.focused is app.screen.query_one("#confirm-cancel", Button)
            await pilot.press("escape")
        await pilot.pause()
        assert len(world.api.scale_requests) == 1
        intents = [line for line in world.audit.read_text().splitlines() if '"intent"' in line]
        assert len(intents) == 1


async def test_danger_high_wants_the_targets_name(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runbook(app, pilot)
        await pilot.press("D")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        await until(lambda: modal.preview is not None, "the preview", pause=pilot.pause)
        await pilot.pause()
        text = screen_text(app)
        assert f"DEL {FAILED_KEY}: zset, 3 members, no TTL" in text
        assert f"redis-cli -h 127.0.0.1 -p {world.redis.port} DEL {FAILED_KEY}" in text or \
            f"DEL {FAILED_KEY}" in text
        assert "danger: high" in text
        yes = modal.query_one("#confirm-yes", Button)
        assert str(yes.label) == "Delete" and yes.disabled
        typed = modal.query_one("#confirm-typed", Input)
        typed.focus()
        await pilot.press(*"bull:anclora:fail")
        await pilot.pause()
        assert yes.disabled  # not the name yet
        modal.confirm()  # even called directly, it mints nothing
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press(*"ed")
        await pilot.pause()
        assert not yes.disabled
        with world.redis.sync_client() as client:
            assert client.exists(FAILED_KEY) == 1
        await pilot.press("enter", "enter")  # submit the name (focus moves to Delete), then yes
        with world.redis.sync_client() as client:
            await until(lambda: client.exists(FAILED_KEY) == 0, "the key to go")
        row = screen.rows["act-flush-failed"]
        await until(lambda: row.state == "ok", "the action", pause=pilot.pause)
        assert row.summary == "(integer) 1"


async def test_editing_a_param_reprepares_and_shows_errors_inline(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_runbook(app, pilot)
        await pilot.press("S")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        field = modal.query_one("#param-count", Input)
        yes = modal.query_one("#confirm-yes", Button)
        field.value = "99"
        await until(lambda: modal.param_error is not None, "the param error", pause=pilot.pause)
        await pilot.pause()
        assert yes.disabled
        assert "count" in screen_text(app) and "99" in (modal.param_error or "")
        field.value = "6"
        await until(lambda: modal.param_error is None and not modal.preparing
                    and modal.step.params["count"] == 6, "re-prepared", pause=pilot.pause)
        await pilot.pause()
        assert not yes.disabled
        assert '"count": "6"' in screen_text(app) or '"count": 6' in screen_text(app)
        modal.confirm()
        await until(lambda: world.api.workers == 6, "the server to get 6")
        assert [int(r["count"]) for r in world.api.scale_requests] == [6]


async def test_read_only_mode_refuses_in_the_modal(world: World) -> None:
    app = world.app(read_only=True, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runbook(app, pilot)
        await pilot.press("S")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        await pilot.pause()
        text = screen_text(app)
        assert READ_ONLY_TEXT in text
        assert not modal.query("#confirm-yes")
        assert app.focused is modal.query_one("#confirm-cancel", Button)
        modal.confirm()
        await pilot.press("enter")
        await until(lambda: app.screen is screen, "the modal to close")
        # a read-only action still runs in read-only mode
        await pilot.press("m")
        row = screen.rows["act-queue-stats"]
        await until(lambda: row.state == "ok", "the read-only action", pause=pilot.pause)
        assert any('"waiting": 12000' in line for line in row.lines)
    assert world.api.scale_requests == [] and world.api.workers == 1


async def test_checklist_ticks_are_recorded(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runbook(app, pilot)
        index = screen.order.index("check-d3")
        screen.query_one("#rb-steps").highlighted = index  # type: ignore[attr-defined]
        await pilot.pause()
        assert "Open Sentry" in screen_text(app)
        await pilot.press("space")
        await pilot.pause()
        assert screen.rows["check-d3"].ticked
        assert "[x] Check Sentry" in screen_text(app)
        ticks = [e for e in app.engine.timeline.events() if e.kind is EventKind.CHECKLIST]
        assert len(ticks) == 1 and "Check Sentry" in ticks[0].message
        lines = [json.loads(x) for x in world.audit.read_text().splitlines()]
        assert [(r["phase"], r["done"]) for r in lines] == [("checklist", True)]


async def test_escape_cancels_a_running_step_then_closes(world: World) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        app.open_runbook("cache-cold")
        await until(lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
        screen = app.screen
        assert isinstance(screen, RunbookScreen)
        row = screen.rows["diag-0"]
        await until(lambda: row.state == "running", "the slow step to run", pause=pilot.pause)
        await pilot.press("escape")
        await until(lambda: row.state == "cancelled", "the cancel", pause=pilot.pause)
        assert app.screen_stack[-1] is screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen_stack == [app.dashboard]


async def test_ctrl_p_lists_runbooks_and_actions_and_an_action_opens_its_modal(
    world: World,
) -> None:
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        commands = {text: callback for text, callback, _ in runbook_commands(app)}
        assert "Runbook: High queue backlog" in commands
        assert "Action: Scale up workers (high-queue-backlog, S)" in commands
        assert "Action: Tell #incidents the queue is backing up (high-queue-backlog)" in commands
        commands["Action: Scale up workers (high-queue-backlog, S)"]()
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RunbookScreen)
        assert world.api.scale_requests == []
        await pilot.press("escape")  # back to the dashboard, then through the real palette
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Action: Delete failed")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, ConfirmModal), "the modal from ctrl+p",
                    pause=pilot.pause)
        modal = app.screen
        assert isinstance(modal, ConfirmModal) and modal.step.action_id == "flush-failed"
        await pilot.press("escape")
        await pilot.pause()
        commands["Runbook: Cache cold after deploy"]()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunbookScreen) and screen.runbook.id == "cache-cold"
        assert len([s for s in app.screen_stack if isinstance(s, RunbookScreen)]) == 1


def exported(folder: Path) -> list[Path]:
    return sorted(folder.glob("opstui-incident-*.md"))


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


async def test_x_on_the_timeline_exports_the_incident_log(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = world.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_crit(app)
        await open_runbook(app, pilot)
        await pilot.press("escape", "e")
        await until(lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        await pilot.press("x")
        await until(lambda: bool(exported(tmp_path)), "the file")
        [path] = exported(tmp_path)
        text = read(path)
        assert text.startswith("# Incident log: Anclora WhatsApp")
        assert "- Environment: production" in text
        assert "| queue |" in text and "CRIT" in text
        assert "Wait list length" in text and "(integer) 5" in text
        assert app.clipboard == text
        assert ADMIN_KEY not in text
        assert any(path.name in n.message for n in app._notifications)


async def test_an_unfinished_audit_intent_is_reported_at_start(world: World) -> None:
    from opstui.actions.audit import AuditLog

    AuditLog(world.audit).intent({"runbook": RUNBOOK, "action": "scale-up",
                                  "target": "anclora-workers"})
    app = world.app(poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("scale-up on anclora-workers" in m and "no result" in m for m in messages)


async def test_a_covered_dashboard_is_brought_up_to_date_when_it_shows_again(
    world: World,
) -> None:
    app = world.app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_crit(app)
        [panel] = app.dashboard._panels["queue"]
        await until(lambda: panel.snapshot.state is State.CRIT, "the panel in CRIT",
                    pause=pilot.pause)
        await open_runbook(app, pilot)
        world.api.workers = 4  # fixed behind the runbook screen's back
        await until(lambda: app.engine.snapshot("queue").state is State.OK, "the probe OK")
        await pilot.pause(0.6)  # two flush periods: a visible dashboard would have drawn it
        assert not app.dashboard_visible
        assert panel.snapshot.state is State.CRIT  # hidden panels are left alone
        await pilot.press("escape")
        await until(lambda: panel.snapshot.state is State.OK, "the panel to catch up",
                    pause=pilot.pause)
        assert app.dashboard_visible
