"""Bastion use: TERM=xterm (16 colours) picks opstui-bastion and renders only ANSI colours,
NO_COLOR leaves every state readable by glyph and word, and every screen works at 80x24
(dashboard, detail, timeline, help, runbook palette, runbook screen, confirm modal) with the
keys it needs shown, not clipped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.color import ColorType
from textual.app import App
from textual.pilot import Pilot

from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading
from opstui.states import Severity, State
from opstui.ui.app import OpstuiApp, build_runner
from opstui.ui.detail import DetailScreen
from opstui.ui.help import HelpScreen
from opstui.ui.timeline import TimelineScreen
from tests.servers.redis import RedisServer
from tests.ui.conftest import scenario_config
from tests.ui.test_runbooks_world import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ADMIN_KEY_ENV,
    redis_server_fixture,
    seed_redis,
    world_config,
)
from tests.ui.test_snapshots_runbooks import DEAD_API, confirm_on, palette, runbook

Steps = Callable[[OpstuiApp, Pilot[Any]], Awaitable[None]]


def screen_text(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def screen_colour_types(app: App[Any]) -> set[ColorType]:
    """The kinds of colour in the frame as the terminal would get it (after the console's
    downgrade to its colour system)."""
    console = app.console
    kinds: set[ColorType] = set()
    for strip in app.screen._compositor.render_strips():
        for segment in strip:
            style = segment.style
            if style is None:
                continue
            for colour in (style.color, style.bgcolor):
                if colour is not None:
                    assert console.color_system is not None
                    kinds.add(colour.downgrade(console._color_system).type)
    return kinds


@pytest.fixture
def sixteen_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


async def test_term_xterm_means_sixteen_colours_and_the_bastion_theme(
    sixteen_colours: None, scenario: Engine
) -> None:
    app = OpstuiApp(scenario, poll=False, auto_bastion=True)
    assert app.console.color_system == "standard"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "opstui-bastion"
        kinds = screen_colour_types(app)
        assert kinds and kinds <= {ColorType.DEFAULT, ColorType.STANDARD}


async def test_theme_flag_beats_the_sixteen_colour_choice(
    sixteen_colours: None, scenario: Engine
) -> None:
    app = OpstuiApp(scenario, poll=False, auto_bastion=True, theme="opstui-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "opstui-dark"


async def test_a_256_colour_terminal_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch, scenario: Engine
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    app = OpstuiApp(scenario, poll=False, auto_bastion=True)
    assert app.console.color_system == "256"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "opstui-dark"


@pytest.mark.parametrize("theme", ["opstui-dark", "opstui-bastion"])
async def test_no_color_keeps_every_state_readable(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock, theme: str
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    from tests.ui.conftest import populate

    engine = Engine(scenario_config(), clock=clock)
    populate(engine, clock)
    app = OpstuiApp(engine, poll=False, theme=theme)
    assert app.no_color
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        states = {s.state for s in engine.snapshots()}
        assert {State.OK, State.CRIT, State.ERROR, State.STALE, State.NODATA} <= states
        for state in states:
            word = f"{state.glyph} {state.word}" if state is not State.PENDING else state.glyph
            assert word in text, f"{state} is not readable without colour:\n{text}"
        colours = {
            segment.style.color.triplet
            for strip in app.screen._compositor.render_strips()
            for segment in strip
            if segment.style is not None and segment.style.color is not None
            and segment.style.color.triplet is not None
        }
        # Monochrome: whatever colour is left is a grey (r == g == b).
        assert all(t.red == t.green == t.blue for t in colours)


# --- every screen at 80x24 under the bastion theme -----------------------------------------


async def dashboard(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await pilot.pause()


async def detail(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, DetailScreen)


async def timeline(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await pilot.press("e")
    await pilot.pause()
    assert isinstance(app.screen, TimelineScreen)


async def help_screen(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await pilot.press("question_mark")
    await pilot.pause()
    assert isinstance(app.screen, HelpScreen)


SCREENS: list[Any] = [
    pytest.param(dashboard, ["? help", "^p palette", "q quit", "✖ CRIT"], id="dashboard"),
    pytest.param(detail, ["esc close", "R refresh now"], id="detail"),
    pytest.param(timeline, ["esc to close", "✖ OK -> CRIT"], id="timeline"),
    pytest.param(
        help_screen, ["ctrl+p", "R  refresh now", "esc  cancel the running step"], id="help"
    ),
    pytest.param(palette, ["enter open", "esc close", "High queue backlog"], id="palette"),
    pytest.param(runbook, ["[S] Scale up workers", "esc cancel/close"], id="runbook"),
    pytest.param(confirm_on("S"), ["Cancel", "Scale", "PRODUCTION", "count"], id="confirm"),
]


@pytest.mark.parametrize(("steps", "keys"), SCREENS)
async def test_every_screen_fits_80x24_in_sixteen_colours(
    sixteen_colours: None,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    steps: Steps,
    keys: list[str],
) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, ADMIN_KEY)
    seed_redis(redis_server)
    clock = ManualClock()
    engine = Engine(world_config(DEAD_API, redis_server.url, tmp_path / "a.jsonl"), clock=clock)
    for step in range(12):
        clock.advance(5.0)
        verdict = Severity.CRIT if step > 8 else Severity.OK
        engine.ingest("queue", Reading(3.0, latency_ms=3.0, verdict=verdict))
        engine.ingest("web", Reading(2.0, latency_ms=2.0, verdict=Severity.OK))
    engine.tick()
    runner = build_runner(engine, read_only=False)
    app = OpstuiApp(engine, poll=False, runner=runner, auto_bastion=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await steps(app, pilot)
        await pilot.pause()
        assert app.theme == "opstui-bastion"
        text = screen_text(app)
        for key in keys:
            assert key.lower() in text.lower(), f"{key!r} not on screen:\n{text}"
        assert screen_colour_types(app) <= {ColorType.DEFAULT, ColorType.STANDARD}
