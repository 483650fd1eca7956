"""The engine polls on its own thread: a wedged source never freezes the screen or the keys.

A client library that blocks (a sync call inside an async client, a DNS lookup on the loop,
a sync library stuck in its worker thread) stalls the polls that share its loop or thread.
It must never stall drawing and key handling: the operator presses a key in the middle of an
incident, exactly when backends misbehave. Each test wedges one probe's poll until the test
releases it, and checks, while it is still wedged, that a key is handled and panels still
move on; a test that ran the engine on the UI's loop would wait for the wedge to end first
and fail.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any, ClassVar, Literal

from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading, Source
from opstui.states import State
from opstui.ui.app import OpstuiApp
from opstui.ui.help import HelpScreen
from tests.engine.helpers import make_config

WEDGE_LIMIT = 15.0
"""The longest a wedged poll blocks if a test never releases it (a failing test ends)."""
WAIT = 10.0


class WedgingSource(Source):
    """Answers at once, counting, until `wedge` is set: then its next poll blocks its loop
    (time.sleep-like) or its worker thread until `release` is set."""

    kind: ClassVar[str] = "scripted"

    def __init__(self, blocks: Literal["loop", "thread"]) -> None:
        self.blocks = blocks
        self.wedge = threading.Event()
        self.release = threading.Event()
        self.wedged = threading.Event()
        """Set while a poll is blocked."""
        self.count = itertools.count(1)

    @classmethod
    def build(cls, probe: Any, connection: Any, pool: Any) -> Source:
        raise NotImplementedError

    async def poll(self) -> Reading:
        if self.wedge.is_set():
            self.wedge.clear()
            self.wedged.set()
            try:
                if self.blocks == "loop":
                    self.release.wait(WEDGE_LIMIT)  # what a sync call on the loop does
                else:
                    await asyncio.to_thread(self.release.wait, WEDGE_LIMIT)
            finally:
                self.wedged.clear()
        return Reading(value=float(next(self.count)))


class CountingSource(Source):
    kind: ClassVar[str] = "scripted"

    def __init__(self) -> None:
        self.count = itertools.count(1)

    @classmethod
    def build(cls, probe: Any, connection: Any, pool: Any) -> Source:
        raise NotImplementedError

    async def poll(self) -> Reading:
        return Reading(value=float(next(self.count)))


def wedge_engine(blocks: Literal["loop", "thread"]) -> tuple[Engine, WedgingSource]:
    config = make_config(
        {"id": "wedged", "title": "Wedged"}, {"id": "live", "title": "Live"},
        refresh="1s", timeout="30s",
    )
    wedging = WedgingSource(blocks)
    return Engine(config, sources={"wedged": wedging, "live": CountingSource()}), wedging


async def until(condition: Any, what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds:g}s"
        await asyncio.sleep(0.05)


def header_text(app: OpstuiApp) -> str:
    info = app.dashboard.header.info
    return "\n".join(line.plain for line in info.layout_lines(info.content_size.width))


def panel_text(app: OpstuiApp, probe_id: str) -> str:
    [panel] = [p for p in app.dashboard.current_grid.panels() if p.probe_id == probe_id]
    return "\n".join(panel.visible_lines())


async def wedge(app: OpstuiApp, engine: Engine, source: WedgingSource) -> None:
    """Both panels OK, then the wedged probe's next poll blocks."""
    await until(
        lambda: all(s.state is State.OK for s in engine.snapshots()), "both probes OK"
    )
    source.wedge.set()
    await until(source.wedged.is_set, "the wedged poll started")


async def test_keys_and_drawing_go_on_while_a_poll_blocks_the_engine_loop() -> None:
    engine, source = wedge_engine("loop")
    app = OpstuiApp(engine, poll=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wedge(app, engine, source)
            before = panel_text(app, "live")
            # The panels keep moving (ages count up) while no poll can land.
            await until(lambda: panel_text(app, "live") != before, "the live panel redrawn")
            assert source.wedged.is_set(), "the poll must still be blocked"
            # No panel can change meanwhile, and the header says so.
            await until(lambda: "POLLING STALLED" in header_text(app), "the stall shown")
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert source.wedged.is_set(), "the key was handled only after the wedge"
            await pilot.press("question_mark")
            await pilot.pause()
            assert app.screen is app.dashboard
            # Released, the engine polls again: the live panel gets new readings.
            value = engine.snapshot("live").value
            source.release.set()
            await until(lambda: engine.snapshot("live").value != value, "polling resumed")
            await until(lambda: "STALLED" not in header_text(app), "the stall flag gone")
    finally:
        source.release.set()


async def test_other_panels_keep_polling_while_a_sync_client_blocks_its_thread() -> None:
    engine, source = wedge_engine("thread")
    app = OpstuiApp(engine, poll=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wedge(app, engine, source)
            value = engine.snapshot("live").value
            await until(lambda: engine.snapshot("live").value != value, "a new live reading")
            await until(
                lambda: f"{engine.snapshot('live').value:g}" in panel_text(app, "live"),
                "the new reading drawn",
            )
            assert source.wedged.is_set(), "the poll must still be blocked"
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert source.wedged.is_set()
            assert "STALLED" not in header_text(app)  # the engine's own loop still moves
    finally:
        source.release.set()


async def test_the_tuis_runner_has_clients_of_its_own() -> None:
    """The engine's clients live on the engine's loop; a runbook's steps run on the UI's.
    Sharing them would cross loops, and a diagnose step would take the connections the
    panels poll with."""
    from opstui.ui.app import build_runner

    engine, _ = wedge_engine("loop")
    runner = build_runner(engine, read_only=True)
    try:
        assert runner.context.pool is not engine.clients
    finally:
        await runner.aclose()
