"""The app driven by keys through Pilot: focus moves, views, pause, refresh, screens, the bell."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from textual.command import CommandPalette

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import ProbeError, Reading
from opstui.states import Severity, State
from opstui.ui.app import OpstuiApp
from opstui.ui.detail import DetailScreen
from opstui.ui.help import HelpScreen
from opstui.ui.palette import OpstuiCommands, palette_commands
from opstui.ui.panel import ProbePanel
from opstui.ui.timeline import TimelineScreen
from tests.support import ServeApp
from tests.ui.conftest import scenario_config

SIZE = (80, 24)


def focused_id(app: OpstuiApp) -> str | None:
    focused = app.screen.focused
    return focused.probe_id if isinstance(focused, ProbePanel) else None


def header_text(app: OpstuiApp) -> str:
    info = app.dashboard.header.info
    return "\n".join(line.plain for line in info.layout_lines(info.content_size.width))


class BellCounter:
    def __init__(self) -> None:
        self.rings = 0

    def __call__(self) -> None:
        self.rings += 1


def quiet_engine(**overrides: Any) -> tuple[Engine, ManualClock]:
    clock = ManualClock()
    return Engine(scenario_config(**overrides), clock=clock), clock


async def test_arrows_and_hjkl_move_focus_between_panels_spatially(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # At 80 columns the first configured row (4 panels) re-flows into 2 rows of 2.
        assert [[p.probe_id for p in row] for row in app.dashboard.current_grid.rows][:2] == [
            ["api", "checkout"],
            ["search", "payments"],
        ]
        assert focused_id(app) == "api"
        moves = [
            ("right", "checkout"),
            ("right", "checkout"),
            ("down", "payments"),
            ("left", "search"),
            ("down", "auth"),
            ("up", "search"),
            ("k", "api"),
            ("l", "checkout"),
            ("j", "payments"),
            ("h", "search"),
            ("j", "auth"),
            ("j", "reports"),
            ("j", "reports"),
        ]
        for key, expected in moves:
            await pilot.press(key)
            assert focused_id(app) == expected, key


async def test_wide_terminal_puts_more_panels_per_row(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        rows = app.dashboard.current_grid.rows
        assert [len(row) for row in rows] == [4, 4]
        await pilot.press("down")
        assert focused_id(app) == "auth"
        await pilot.press("right", "right", "up")
        assert focused_id(app) == "search"


async def test_number_keys_switch_views_and_a_probe_in_two_views_gets_both(
    scenario: Engine, clock: ManualClock
) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        dashboard = app.dashboard
        assert dashboard.current == 1
        assert [p.probe_id for p in dashboard.current_grid.panels()] == [
            "payments",
            "billing",
            "checkout",
        ]
        assert focused_id(app) == "payments"
        assert "2:Money" in header_text(app)
        await pilot.press("9")  # no ninth view: nothing happens
        assert dashboard.current == 1
        clock.advance(1)
        scenario.ingest("payments", Reading(12.0, verdict=Severity.OK))
        await pilot.pause()
        shown = [p for grid in dashboard.grids for p in grid.panels() if p.probe_id == "payments"]
        assert len(shown) == 2
        assert all(p.snapshot.state is State.OK for p in shown)
        assert dashboard.current_grid.panels()[0].visible_lines()[0] == "● OK"
        await pilot.press("1")
        await pilot.pause()
        assert dashboard.current == 0
        assert focused_id(app) == "api"


async def test_p_pauses_and_resumes_the_engine(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "PAUSED" not in header_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert scenario.paused
        assert "⏸ PAUSED" in header_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert not scenario.paused
        assert "PAUSED" not in header_text(app)


async def test_capital_r_polls_every_probe_now(serve_app: ServeApp) -> None:
    hits: list[str] = []

    async def health(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"status": "pass"})

    server = web.Application()
    server.router.add_get("/health", health)
    base_url = await serve_app(server)
    config = Config.model_validate(
        {
            "refresh": "1h",
            "connections": {"app": {"kind": "http", "base_url": base_url, "timeout": "5s"}},
            "probes": [{"id": "api", "kind": "health", "connection": "app"}],
        }
    )
    # A ManualClock nobody advances: after the first poll, only the R key can cause another.
    engine = Engine(config, clock=ManualClock())
    app = OpstuiApp(engine, poll=True)
    async with app.run_test(size=SIZE) as pilot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while engine.snapshot("api").state is State.INIT:
            assert loop.time() < deadline, "the first poll never came"
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert hits == ["/health"]
        await asyncio.sleep(0.1)
        assert hits == ["/health"]
        await pilot.press("R")
        deadline = loop.time() + 10
        while len(hits) < 2:
            assert loop.time() < deadline, "no poll after R"
            await asyncio.sleep(0.02)
        await pilot.pause()
        assert hits == ["/health", "/health"]
        assert engine.snapshot("api").state is State.OK
        panel = app.dashboard.current_grid.panels()[0]
        assert panel.visible_lines()[0] == "● OK"


async def test_enter_opens_detail_of_the_focused_panel(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("right", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.probe_id == "checkout"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.dashboard
        assert focused_id(app) == "checkout"


async def test_e_opens_the_timeline_and_question_mark_the_help(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is app.dashboard


async def test_q_quits_cleanly_and_stops_the_engine(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert scenario._running
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == 0
    assert not scenario._running


async def test_ctrl_p_palette_lists_probes_and_views(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        texts = [text for text, _, _ in palette_commands(app)]
        assert "Probe: api (API health) — open detail" in texts
        assert "View 2: Money" in texts
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await pilot.pause()
        hits = [hit.text async for hit in OpstuiCommands(app.screen).search("money")]
        assert hits == ["View 2: Money"]
        commands = {text: callback for text, callback, _ in palette_commands(app)}
        commands["View 2: Money"]()
        await pilot.pause()
        assert app.dashboard.current == 1
        commands["Probe: billing (Billing) — open detail"]()
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.probe_id == "billing"


async def test_entering_crit_rings_the_bell_once() -> None:
    engine, clock = quiet_engine()
    app = OpstuiApp(engine, poll=False)
    bell = BellCounter()
    app.bell = bell  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        engine.ingest("search", Reading(10.0, verdict=Severity.OK))
        clock.advance(1)
        engine.ingest("search", Reading(10.0, verdict=Severity.CRIT))
        clock.advance(1)
        engine.ingest("search", Reading(11.0, verdict=Severity.CRIT))
        await pilot.pause()
        assert bell.rings == 1
        clock.advance(1)
        engine.ingest("search", Reading(10.0, verdict=Severity.OK))
        clock.advance(1)
        engine.ingest("search", Reading(10.0, verdict=Severity.CRIT))
        await pilot.pause()
        assert bell.rings == 2


async def test_no_bell_when_the_config_mutes_it() -> None:
    engine, _ = quiet_engine(bell=False)
    app = OpstuiApp(engine, poll=False)
    bell = BellCounter()
    app.bell = bell  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        engine.ingest("search", Reading(10.0, verdict=Severity.CRIT))
        await pilot.pause()
        assert engine.snapshot("search").state is State.CRIT
        assert bell.rings == 0


async def test_no_bell_while_flapping(scenario: Engine, clock: ManualClock) -> None:
    app = OpstuiApp(scenario, poll=False)
    bell = BellCounter()
    app.bell = bell  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        assert scenario.snapshot("worker").flapping
        for severity in (Severity.OK, Severity.CRIT, Severity.OK, Severity.CRIT):
            clock.advance(1)
            scenario.ingest("worker", Reading(10.0, verdict=severity))
        await pilot.pause()
        assert scenario.snapshot("worker").flapping
        assert bell.rings == 0


async def test_snapshot_while_a_screen_is_on_top_shows_when_it_closes(
    scenario: Engine, clock: ManualClock
) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        clock.advance(1)
        scenario.ingest("api", Reading(900.0, verdict=Severity.CRIT))
        scenario.ingest("auth", ProbeError("timeout after 5s"))
        await pilot.press("question_mark")
        await pilot.pause()
        scenario.ingest("api", Reading(950.0, verdict=Severity.CRIT))
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is app.dashboard
        panels = {p.probe_id: p for p in app.dashboard.current_grid.panels()}
        assert panels["api"].visible_lines()[0] == " ✖ CRIT "
        assert panels["api"].visible_lines()[1].startswith("950 ms ")
        assert panels["auth"].visible_lines()[0] == "⚠ ERR timeout after 5s"
        assert "✖ CRIT 2" in header_text(app)


async def test_ages_and_countdowns_tick_on_the_app_timer(
    scenario: Engine, clock: ManualClock
) -> None:
    app = OpstuiApp(scenario, poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        api, checkout = app.dashboard.current_grid.panels()[:2]
        assert api.visible_lines()[1].endswith("0s ago")
        clock.advance(7)
        # Nobody calls tick here: the app's own 1 s timer must move the age and countdown.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not api._lines[1].plain.endswith("7s ago"):
            assert loop.time() < deadline, "the age never moved"
            await asyncio.sleep(0.05)
        assert checkout._lines[0].plain == "△ WARN? 1m38s"
        assert app.dashboard.header.clock.render().plain == "08:20:07"


async def test_header_shows_read_only_and_the_worst_states(scenario: Engine) -> None:
    app = OpstuiApp(scenario, poll=False, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = header_text(app)
        assert "[RO]🔒" in text
        assert "PRODUCTION" in text
        assert "✖ CRIT 1 · ⚠ ERR 1 · ∅ NO DATA 1 · ▲ WARN 1" in text
        assert app.dashboard.has_class("-production")
        assert app.dashboard.header.clock.render().plain == "08:20:00"


async def test_a_config_without_probes_says_so_and_keys_do_nothing_harmful() -> None:
    config = Config.model_validate({"title": "empty"})
    app = OpstuiApp(Engine(config, clock=ManualClock()), poll=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("down", "2", "enter", "p")
        await pilot.pause()
        assert app.screen is app.dashboard
        assert "No probes to show" in str(app.dashboard.query_one("#empty").render())


async def test_panels_scrolled_out_skip_drawing_and_show_their_news_when_back() -> None:
    """Off-screen panels do not refresh (that made Textual lay out the whole screen again);
    one scrolled back into view draws its latest snapshot at once, not what it showed before."""
    clock = ManualClock()
    probes = [{"id": f"svc-{i:02d}", "path": f"/h/{i}", "unit": "ms"} for i in range(16)]
    config = Config.model_validate(
        {
            "refresh": "1m",
            "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:9"}},
            "probes": [{"kind": "health", "connection": "app", **p} for p in probes],
        }
    )
    engine = Engine(config, clock=clock, sources={})
    for probe in probes:
        engine.ingest(probe["id"], Reading(5.0, verdict=Severity.OK))
    app = OpstuiApp(engine, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        dashboard = app.dashboard
        dashboard.tick = lambda: None  # type: ignore[method-assign]  # no once-a-second redraw
        grid = dashboard.current_grid
        first, last = grid.rows[0][0], grid.rows[-1][0]
        assert first.live and not last.live  # 8 rows of 2; three fit in 24 lines
        grid.scroll_end(animate=False)  # draw the last panel once, then leave it
        await pilot.pause()
        await pilot.pause()
        assert last.live and not first.live
        assert "777" not in screen_text(app)
        grid.scroll_home(animate=False)
        await pilot.pause()
        await pilot.pause()
        assert first.live and not last.live
        clock.advance(1)
        engine.ingest(last.probe_id, Reading(777.0, verdict=Severity.OK))
        app.flush_snapshots()
        await pilot.pause()
        assert last.snapshot.value == 777.0
        grid.scroll_end(animate=False)
        await pilot.pause()
        await pilot.pause()
        assert "777 ms" in screen_text(app)


def screen_text(app: OpstuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
