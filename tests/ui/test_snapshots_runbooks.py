"""SVG snapshots of the runbook palette, the runbook screen and the confirm modal (normal and
danger: high) at 80x24 and 160x48, stored under snapshots/test_snapshots_runbooks/.

Deterministic: a ManualClock, polling off, readings injected, and diagnose steps that ask a
real redis-server (and printf) for fixed answers; the screenshot is taken only once every
step has finished. The admin API is never contacted (polling is off; a POST is classified by
its method and has no preview), so its URL is a fixed dead address. The one random thing
left, redis-server's port in the equivalent `redis-cli` command, is replaced by a fixed
five-digit one (free ports are always five digits here) before comparing.

Update after a deliberate change with
`pytest tests/ui/test_snapshots_runbooks.py --snapshot-update`, then look at the SVGs.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from textual.pilot import Pilot
from textual.widgets import Input

from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading
from opstui.states import Severity
from opstui.ui.app import OpstuiApp, build_runner
from opstui.ui.confirm import ConfirmModal
from opstui.ui.runbook_screen import RunbookScreen
from opstui.ui.runbooks import RunbookPalette
from tests.servers.redis import RedisServer
from tests.ui.test_runbooks_world import (  # noqa: F401 - fixtures
    ADMIN_KEY,
    ADMIN_KEY_ENV,
    RUNBOOK,
    classified,
    diagnostics_done,
    redis_server_fixture,
    seed_redis,
    until,
    world_config,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
DEAD_API = "http://127.0.0.1:9"
FIXED_PORT = "50000"

Steps = Callable[[OpstuiApp, Pilot[Any]], Awaitable[None]]


def snapshot_app(redis: RedisServer, audit: Path) -> OpstuiApp:
    clock = ManualClock()
    engine = Engine(world_config(DEAD_API, redis.url, audit), clock=clock)
    for step in range(12):
        clock.advance(5.0)
        latency = 3.0 + (step % 4) * 0.5
        engine.ingest("queue", Reading(latency, latency_ms=latency,
                                       verdict=Severity.CRIT if step > 8 else Severity.OK))
        engine.ingest("web", Reading(2.0 + step % 3, latency_ms=2.0 + step % 3,
                                     verdict=Severity.OK))
    engine.tick()
    return OpstuiApp(engine, poll=False, runner=build_runner(engine, read_only=False))


async def shoot(app: OpstuiApp, size: tuple[int, int], steps: Steps, port: int) -> str:
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await steps(app, pilot)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        svg = app.export_screenshot(title=app.title, simplify=True)
    # `redis-cli -u redis://127.0.0.1:PORT/0` or `redis-cli -h 127.0.0.1 -p PORT`: the number
    # alone, never part of a longer one (SVG coordinates have at most four digits and a dot)
    return re.sub(rf"(?<![\d.]){port}(?![\d.])", FIXED_PORT, svg)


async def runbook_open(app: OpstuiApp, pilot: Pilot[Any]) -> RunbookScreen:
    app.open_runbook(RUNBOOK)
    await until(lambda: isinstance(app.screen, RunbookScreen), "the runbook screen")
    screen = app.screen
    assert isinstance(screen, RunbookScreen)
    await until(lambda: diagnostics_done(screen) and classified(screen), "diagnostics",
                pause=pilot.pause)
    return screen


async def palette(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await pilot.press("r")
    await until(lambda: isinstance(app.screen, RunbookPalette), "the palette")
    await pilot.pause(1.2)


async def runbook(app: OpstuiApp, pilot: Pilot[Any]) -> None:
    await runbook_open(app, pilot)


def confirm_on(key: str) -> Steps:
    async def steps(app: OpstuiApp, pilot: Pilot[Any]) -> None:
        await runbook_open(app, pilot)
        await pilot.press(key)
        await until(lambda: isinstance(app.screen, ConfirmModal), "the confirm modal")
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        await until(lambda: modal.settled, "the preview", pause=pilot.pause)

    return steps


SCREENS = [
    pytest.param(palette, id="palette"),
    pytest.param(runbook, id="runbook"),
    pytest.param(confirm_on("S"), id="confirm"),
    pytest.param(confirm_on("D"), id="confirm-danger-high"),
]


@pytest.mark.parametrize("steps", SCREENS)
@pytest.mark.parametrize("size", SIZES)
async def test_runbook_screens(
    snapshot: SnapshotAssertion,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    steps: Steps,
) -> None:
    monkeypatch.setenv(ADMIN_KEY_ENV, ADMIN_KEY)
    seed_redis(redis_server)
    app = snapshot_app(redis_server, tmp_path / "audit.jsonl")
    svg = await shoot(app, size, steps, redis_server.port)
    assert ADMIN_KEY not in svg
    assert snapshot.use_extension(SVGImageExtension) == svg
