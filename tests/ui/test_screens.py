"""Detail, timeline and help screens in a tiny host app, driven by a real Engine.

The engine is built with a ManualClock and no sources, never started; readings are injected
with engine.ingest(), so every screen is deterministic.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Component, ProbeError, Reading
from opstui.states import Severity, State
from opstui.ui.detail import DetailScreen, clock_text, thresholds_in_words
from opstui.ui.help import KEYMAP, HelpScreen
from opstui.ui.themes import STATE_DEFAULTS, register_themes
from opstui.ui.timeline import TimelineScreen

CONFIG: dict[str, Any] = {
    "title": "screens",
    "refresh": "5s",
    "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:3000", "timeout": "2s"}},
    "probes": [
        {
            "id": "api",
            "title": "API health",
            "kind": "health",
            "connection": "app",
            "path": "/health",
            "unit": "ms",
            "runbook": "app-down",
            "thresholds": {"above": {"warn": 300, "crit": 1000}, "for": "2m"},
        },
        {"id": "web", "kind": "health", "connection": "app", "path": "/ping", "interval": "10s"},
    ],
}


def make_engine() -> tuple[Engine, ManualClock]:
    clock = ManualClock()
    return Engine(Config.model_validate(CONFIG), clock=clock, sources={}), clock


def healthy(value: float) -> Reading:
    return Reading(
        value=value,
        latency_ms=value,
        fields={"status_code": 200, "status": "pass"},
        verdict=Severity.WARN,
        components=(
            Component("db", Severity.OK, "pass", "12 ms"),
            Component("redis", Severity.CRIT, "fail", "timeout"),
        ),
        notes=("HTTP 200 but the body says warn",),
    )


REFUSED = ProbeError("connection refused", hint="is the service listening on :3000?")


def feed(engine: Engine, clock: ManualClock, values: list[float | None]) -> None:
    for value in values:
        engine.ingest("api", REFUSED if value is None else healthy(value))
        clock.advance(5)


class Host(App[None]):
    """The smallest app that can show one of our screens, with opstui's themes."""

    def __init__(self, factory: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self._factory = factory

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(STATE_DEFAULTS)

    def on_mount(self) -> None:
        register_themes(self)
        self.theme = "opstui-dark"
        self.push_screen(self._factory())


def text_of(static: Static, width: int = 200) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(static.content)
    return console.export_text()


def screen_lines(app: App[Any]) -> list[str]:
    """What the terminal shows, as plain lines (the compositor's current frame)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


# --- detail ---------------------------------------------------------------------------------


async def test_detail_shows_reading_error_target_and_chart() -> None:
    engine, clock = make_engine()
    feed(engine, clock, [120, 130, None, 150, 310, 1100, 900, 200, 180, None])
    app = Host(lambda: DetailScreen(engine, "api"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        title = text_of(screen.query_one("#detail-title", Static))
        assert "API health" in title and "api · health" in title
        state = text_of(screen.query_one("#detail-state", Static))
        assert "⚠ ERR" in state and "connection refused" in state
        assert "last reading 10s ago" in state and "(5s ago)" in state
        reading = text_of(screen.query_one("#detail-reading", Static))
        for expected in (
            "180 ms",
            "status_code",
            "200",
            "db",
            "● pass",
            "observed 12 ms",
            "redis",
            "✖ fail",
            "HTTP 200 but the body says warn",
            "⚠ connection refused",
            "is the service listening on :3000?",
            "GET http://127.0.0.1:3000/health",
            "warn above 300 ms, crit above 1,000 ms, for 2m",
            "app-down",
        ):
            assert expected in reading, expected
        assert re.search(r"interval\s+5s", reading) and re.search(r"timeout\s+2s", reading)
        chart = screen.query_one("#detail-chart", Static).content
        plain = chart.plain  # type: ignore[union-attr]
        assert "warn > 300 ms" in plain and "crit > 1,000 ms" in plain
        assert plain.count("×") == 2
        assert screen.query_one("#detail-state").has_class("-error")


async def test_detail_without_any_reading() -> None:
    engine, _ = make_engine()
    app = Host(lambda: DetailScreen(engine, "web"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert "… waiting" in text_of(screen.query_one("#detail-state", Static))
        assert "no reading yet" in text_of(screen.query_one("#detail-reading", Static))
        assert "No history yet" in str(screen.query_one("#detail-chart", Static).content)
        reading = text_of(screen.query_one("#detail-reading", Static))
        assert "GET http://127.0.0.1:3000/ping" in reading
        assert "none: only the service's own verdict counts" in reading
        assert re.search(r"interval\s+10s", reading)


async def test_detail_fits_80x24_and_uses_160x48() -> None:
    engine, clock = make_engine()
    feed(engine, clock, [120, 130, 150, 310, 1100, 900, 200, 180] * 3)
    app = Host(lambda: DetailScreen(engine, "api"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        small = screen.chart_size()
        lines = screen_lines(app)
        assert len(lines) == 24
        assert "API health" in lines[0] and "▲ WARN" in lines[1]
        axis = [line for line in lines if "now" in line and "└" not in line]
        assert axis, "the chart's time axis is visible without scrolling"
        assert "esc close" in lines[-1]
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        big = screen.chart_size()
        assert big[0] > small[0] + 70 and big[1] > small[1] + 8
        chart = screen.query_one("#detail-chart", Static).content
        rows = chart.plain.split("\n")  # type: ignore[union-attr]
        assert len(rows) == big[1]
        assert max(len(row) for row in rows) > 150


async def test_detail_follows_new_readings_and_countdowns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DetailScreen, "CHART_MIN_INTERVAL", 0.0)
    engine, clock = make_engine()
    feed(engine, clock, [100, 110])
    app = Host(lambda: DetailScreen(engine, "api"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        chart = screen.query_one("#detail-chart", Static)
        before = chart.content.plain  # type: ignore[union-attr]
        engine.ingest("api", Reading(value=450.0, latency_ms=450.0, fields={"status_code": 200}))
        await pilot.pause()
        state = text_of(screen.query_one("#detail-state", Static))
        assert "△ WARN?" in state and "WARN in 2m" in state
        assert "450 ms" in text_of(screen.query_one("#detail-reading", Static))
        assert chart.content.plain != before  # type: ignore[union-attr]
        clock.advance(8)  # less than 2 x interval: not stale yet
        engine.tick()
        await pilot.pause()
        assert "WARN in 1m52s" in text_of(screen.query_one("#detail-state", Static))
        assert screen.query_one("#detail-state").has_class("-pending")


async def test_chart_redraws_are_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DetailScreen, "CHART_MIN_INTERVAL", 3600.0)
    engine, clock = make_engine()
    feed(engine, clock, [100, 110, 120])
    app = Host(lambda: DetailScreen(engine, "api"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        chart = screen.query_one("#detail-chart", Static)
        before = chart.content.plain  # type: ignore[union-attr]
        for value in (500.0, 900.0, 1500.0):
            engine.ingest("api", Reading(value=value))
            clock.advance(5)
        await pilot.pause()
        # the text follows at once; the chart waits for its interval
        assert "1,500 ms" in text_of(screen.query_one("#detail-reading", Static))
        assert chart.content.plain == before  # type: ignore[union-attr]
        assert screen._chart_timer is not None


async def test_detail_closes_on_escape_and_q_and_unsubscribes() -> None:
    engine, clock = make_engine()
    feed(engine, clock, [100])
    for key in ("escape", "q"):
        app = Host(lambda: DetailScreen(engine, "api"))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, DetailScreen)
            kept = screen._snapshot
            engine.ingest("api", Reading(value=999.0))
            assert screen._snapshot is kept


async def test_detail_refresh_key_asks_the_engine() -> None:
    engine, clock = make_engine()
    feed(engine, clock, [100])
    app = Host(lambda: DetailScreen(engine, "api"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("R")
        await pilot.pause()
    assert any(e.message == "refresh api" for e in engine.timeline.events())


def test_thresholds_in_words() -> None:
    config = Config.model_validate(CONFIG)
    thresholds = config.probe("api").thresholds
    assert thresholds is not None
    assert thresholds_in_words(thresholds, "ms") == (
        "warn above 300 ms, crit above 1,000 ms, for 2m"
    )
    other = type(thresholds).model_validate(
        {"below": {"crit": 1}, "hysteresis": 0.1, "field": "up"}
    )
    assert thresholds_in_words(other, None) == (
        "crit below 1, at once; recovers 10% inside the limit; judged on field 'up'"
    )


# --- timeline -------------------------------------------------------------------------------


def table_rows(screen: Screen[Any]) -> list[list[str]]:
    table: DataTable[Any] = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def test_timeline_empty_says_so() -> None:
    engine, _ = make_engine()
    app = Host(lambda: TimelineScreen(engine))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        assert any("No events yet" in line for line in lines)
        assert not app.screen.query_one(DataTable).display


async def test_timeline_lists_events_newest_first_and_updates_live() -> None:
    engine, clock = make_engine()
    engine.ingest("api", healthy(100))
    clock.advance(5)
    engine.ingest("api", REFUSED)
    app = Host(lambda: TimelineScreen(engine))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        rows = table_rows(screen)
        assert len(rows) == 2
        newest = engine.timeline.events()[-1]
        assert rows[0] == [clock_text(newest.wall), "api", "⚠ WARN -> ERR", "connection refused"]
        assert rows[1][2] == "▲ waiting -> WARN"
        clock.advance(5)
        engine.ingest("web", Reading(value=12.0))
        clock.advance(5)
        engine.ingest("api", Reading(value=50.0))
        await pilot.pause()
        rows = table_rows(screen)
        assert len(rows) == 4
        assert rows[0][1:3] == ["api", "● ERR -> OK"]
        assert rows[1][1:3] == ["web", "● waiting -> OK"]
        assert "4 events" in text_of(screen.query_one("#timeline-title", Static))


async def test_timeline_filter_and_close() -> None:
    engine, clock = make_engine()
    for outcome in (healthy(100), REFUSED, Reading(value=50.0), REFUSED):
        engine.ingest("api", outcome)
        clock.advance(5)
    engine.pause()
    app = Host(lambda: TimelineScreen(engine))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert len(table_rows(screen)) == 5
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("q")  # typed into the filter, not a close
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("backspace", *"refused")
        await pilot.pause()
        rows = table_rows(screen)
        assert len(rows) == 2 and all(row[3] == "connection refused" for row in rows)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, TimelineScreen)
        count = len(engine.timeline)
        engine.ingest("api", Reading(value=1.0))
        assert len(engine.timeline) == count + 1  # no listener left behind to fail


# --- help -----------------------------------------------------------------------------------

GLOBAL_KEYS = ("?", "ctrl+p", "1-9", "hjkl", "enter", "e", "p", "R", "q")


async def test_help_lists_every_key_and_fits_80x24() -> None:
    app = Host(HelpScreen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        shown = "\n".join(lines)
        for group, keys in KEYMAP:
            assert group in shown
            for key, what in keys:
                assert any(key in line and what in line for line in lines), key
        listed = {key for _, keys in KEYMAP for key, _ in keys}
        for key in GLOBAL_KEYS:
            assert any(key in entry.split(" ") or key in entry for entry in listed), key
        assert any("╰" in line for line in lines)  # the box closes on screen: nothing clipped
        assert all(len(line.rstrip()) <= 80 for line in lines)


@pytest.mark.parametrize("key", ["escape", "question_mark", "q"])
async def test_help_closes(key: str) -> None:
    app = Host(HelpScreen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


def test_state_label_words_match_states() -> None:
    # the screens draw states with the shared glyph + word vocabulary
    assert State.ERROR.glyph == "⚠" and State.ERROR.word == "ERR"


async def _frame(factory: Callable[[Engine], Screen[Any]], size: tuple[int, int]) -> str:
    engine, clock = make_engine()
    feed(engine, clock, [120, 130, None, 150, 310, 1100, 900, 200, 180])
    app = Host(lambda: factory(engine))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        return app.export_screenshot()


@pytest.mark.parametrize(
    "factory",
    [lambda e: DetailScreen(e, "api"), TimelineScreen, lambda e: HelpScreen()],
    ids=["detail", "timeline", "help"],
)
async def test_screens_render_the_same_every_time(
    factory: Callable[[Engine], Screen[Any]],
) -> None:
    first = await _frame(factory, (80, 24))
    assert first == await _frame(factory, (80, 24))
