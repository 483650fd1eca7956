"""Wall mode (`opstui --wall`): read-only, no runbooks, no focus, rotating views that hold on a
CRIT, large state words, the wall theme, resizes, and a DOM that never grows with rotation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.app import App

from opstui.cli import _wall_options, main
from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading
from opstui.states import Severity, State
from opstui.ui.app import OpstuiApp
from opstui.ui.dashboard import ViewGrid
from opstui.ui.header import KeysBar, wall_text
from opstui.ui.panel import ProbePanel
from opstui.ui.runbooks import RunbookPalette
from opstui.ui.wall import WallOptions, next_view, pick_theme

# --- the rules, without a terminal ---------------------------------------------------------

VIEWS = [{"a", "b"}, {"c"}, {"d", "a"}]


def test_rotation_cycles_every_view_when_nothing_is_crit() -> None:
    assert [next_view(i, VIEWS, []) for i in range(3)] == [1, 2, 0]


def test_a_crit_on_one_view_holds_it() -> None:
    assert next_view(1, VIEWS, ["c"]) == 1
    assert next_view(0, VIEWS, ["c"]) == 1


def test_crits_on_several_views_rotate_among_those_only() -> None:
    # "a" is on views 0 and 2: view 1 is skipped.
    assert next_view(0, VIEWS, ["a"]) == 2
    assert next_view(2, VIEWS, ["a"]) == 0


def test_theme_choice_order() -> None:
    assert pick_theme("opstui-light", None, wall=True, color_system="standard") == "opstui-light"
    assert pick_theme(None, "opstui-light", wall=True, color_system="standard") == (
        "opstui-bastion"
    )
    assert pick_theme(None, "opstui-light", wall=True, color_system="truecolor") == "opstui-wall"
    assert pick_theme(None, "opstui-light", wall=False, color_system="256") == "opstui-light"
    assert pick_theme(None, None, wall=False, color_system=None) == "opstui-dark"


def test_wall_flag_text() -> None:
    assert wall_text(30) == "WALL ⟳30s"
    assert wall_text(120) == "WALL ⟳2m"
    assert wall_text(0) == "WALL"


def test_wall_options_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _wall_options(False, None) is None
    assert _wall_options(True, None) == WallOptions(rotate=30.0)
    assert _wall_options(True, "2m") == WallOptions(rotate=120.0)
    assert _wall_options(True, "0") == WallOptions(rotate=0.0)
    with pytest.raises(ValueError, match="at least 1s"):
        _wall_options(True, "250ms")
    assert main(["--rotate", "5s"]) == 2
    assert "--rotate only applies with --wall" in capsys.readouterr().err


# --- the app -----------------------------------------------------------------------------


def rotation_engine() -> tuple[Engine, ManualClock]:
    probes = ["api", "queue", "db", "cache", "web"]
    config = Config.model_validate(
        {
            "title": "Wall",
            "environment": "production",
            "refresh": "1m",
            "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:9"}},
            "probes": [
                {"id": p, "kind": "health", "connection": "app", "path": "/health"}
                for p in probes
            ],
            "views": [
                {"name": "Front", "rows": [["api", "web"]]},
                {"name": "Queues", "rows": [["queue"]]},
                {"name": "Data", "rows": [["db", "cache"]]},
            ],
            "runbooks": [
                {
                    "id": "restart",
                    "title": "Restart the API",
                    "probes": ["api"],
                    "actions": [
                        {
                            "id": "restart",
                            "key": "x",
                            "title": "Restart",
                            "kind": "http",
                            "connection": "app",
                            "method": "POST",
                            "path": "/restart",
                        }
                    ],
                }
            ],
        }
    )
    clock = ManualClock()
    engine = Engine(config, clock=clock)
    for step in range(5):
        clock.advance(5.0)
        for probe in probes:
            engine.ingest(probe, Reading(40.0 + step, latency_ms=40.0, verdict=Severity.OK))
    return engine, clock


def wall_app(engine: Engine, rotate: float = 30.0, **kwargs: Any) -> OpstuiApp:
    return OpstuiApp(engine, poll=False, wall=WallOptions(rotate=rotate), **kwargs)


def header_text(app: OpstuiApp) -> str:
    return "\n".join(line.plain for line in app.dashboard.header.info.layout_lines(200))


async def test_wall_is_read_only_without_footer_focus_or_runbooks() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.read_only and app.runner.read_only
        text = header_text(app)
        assert "[RO]🔒" in text and "WALL ⟳30s" in text
        assert "1/3:Front" in text
        assert app.query_one(KeysBar).display is False
        assert app.focused is None
        panels = list(app.query(ProbePanel))
        assert panels and all(not panel.focusable for panel in panels)
        await pilot.press("right", "down", "enter")
        assert app.focused is None and app.screen is app.dashboard
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, RunbookPalette)
        assert app.palette_runbooks() == []
        app.open_runbook("restart", trigger="restart")
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is app.dashboard
        assert app.theme == "opstui-wall"


async def test_explicit_theme_beats_the_wall_theme() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine, theme="opstui-light")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == "opstui-light"


async def test_state_word_is_a_reversed_block() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = app.dashboard.current_grid.panels()[0]
        assert panel.has_class("-wall")
        assert panel.visible_lines()[0].startswith(" ● OK ")
        style = app.dashboard.palette.style("panel--ok")
        assert style.reverse and style.bold
        normal = OpstuiApp(engine, poll=False)
    async with normal.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        panel = normal.dashboard.current_grid.panels()[0]
        assert panel.visible_lines()[0].startswith("● OK")
        assert not normal.dashboard.palette.style("panel--ok").reverse


async def test_rotation_visits_every_view_then_holds_on_a_crit() -> None:
    engine, clock = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        seen = []
        for _ in range(4):
            app.rotate_view()
            await pilot.pause()
            seen.append(app.dashboard.current)
        assert seen == [1, 2, 0, 1]
        assert "2/3:Queues" in header_text(app)
        assert [grid.display for grid in app.query(ViewGrid)] == [False, True, False]
        clock.advance(5.0)
        engine.ingest("db", Reading(900.0, latency_ms=900.0, verdict=Severity.CRIT))
        assert engine.snapshot("db").state is State.CRIT
        for _ in range(3):
            app.rotate_view()
            await pilot.pause()
            assert app.dashboard.current == 2
        clock.advance(5.0)
        engine.ingest("db", Reading(40.0, latency_ms=40.0, verdict=Severity.OK))
        app.rotate_view()
        await pilot.pause()
        assert app.dashboard.current == 0


async def test_rotation_never_rebuilds_the_views() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        panels = [id(panel) for panel in app.query(ProbePanel)]
        widgets = len(list(app.dashboard.walk_children()))
        for _ in range(60):
            app.rotate_view()
        await pilot.pause()
        assert [id(panel) for panel in app.query(ProbePanel)] == panels
        assert len(list(app.dashboard.walk_children())) == widgets


async def test_the_timer_rotates_and_zero_never_does() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine, rotate=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 10
        while app.dashboard.current == 0 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert app.dashboard.current != 0, "the rotation timer never moved the view"
    still = wall_app(engine, rotate=0)
    async with still.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert still.rotation is None
        assert "WALL" in header_text(still) and "⟳" not in header_text(still)


async def test_wall_survives_resizes() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        count = len(list(app.query(ProbePanel)))
        for size in [(160, 48), (40, 12), (200, 60), (80, 24)]:
            await pilot.resize_terminal(*size)
            await pilot.pause()
            await pilot.pause()
            assert app.size == size
            grid = app.dashboard.current_grid
            assert grid.columns == max(1, min(5, (size[0] + 4) // 40))
            assert len(list(app.query(ProbePanel))) == count
            first = grid.panels()[0]
            assert first.visible_lines()[0].strip().startswith("● OK")
        assert app.focused is None


async def test_signal_before_the_loop_exits_at_once() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    app.exit_on_signal(129)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
    assert app.return_code == 129


async def test_signal_while_running_exits_with_its_code() -> None:
    engine, _ = rotation_engine()
    app = wall_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.exit_on_signal(143)
        await pilot.pause()
        assert app._exit, "the signal did not ask the app to exit"
    assert app.return_code == 143


@pytest.mark.parametrize("wall", [False, True])
async def test_run_test_apps_never_pick_a_theme_from_term(
    monkeypatch: pytest.MonkeyPatch, wall: bool
) -> None:
    """Snapshots must not depend on the TERM they ran under: only `opstui` asks for that."""
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("COLORTERM", raising=False)
    engine, _ = rotation_engine()
    app: App[Any] = wall_app(engine) if wall else OpstuiApp(engine, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == ("opstui-wall" if wall else "opstui-dark")
