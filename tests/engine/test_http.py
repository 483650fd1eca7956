"""The Engine against a real aiohttp server on loopback: refused, hung and recovering services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from opstui.engine.events import EventKind
from opstui.engine.scheduler import Engine
from opstui.states import State
from tests.engine.helpers import AiohttpSource, eventually, make_config
from tests.support import ServeApp, free_port


class Service:
    """A health endpoint whose behaviour a test flips: answer, or hang until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.requests = 0

    async def health(self, request: web.Request) -> web.Response:
        self.requests += 1
        await self.release.wait()
        return web.json_response({"status": "pass"})


@pytest.fixture
async def service(serve_app: ServeApp) -> AsyncIterator[tuple[Service, str]]:
    svc = Service()
    app = web.Application()
    app.router.add_get("/health", svc.health)
    base = await serve_app(app)
    yield svc, f"{base}/health"
    svc.release.set()


async def test_refused_becomes_error_within_timeout_plus_interval() -> None:
    source = AiohttpSource(f"http://127.0.0.1:{free_port()}/health")
    config = make_config({"id": "api", "interval": "1s", "timeout": "2s"})
    engine = Engine(config, sources={"api": source})
    started = engine.clock.monotonic()
    await engine.start()
    try:
        await eventually(lambda: engine.snapshot("api").state is State.ERROR)
    finally:
        await engine.stop()
        await source.aclose()
    snap = engine.snapshot("api")
    assert snap.error is not None and "ClientConnectorError" in snap.error
    entered = next(e for e in engine.timeline.events() if e.new is State.ERROR)
    assert entered.at - started <= 1.0 + 2.0  # the engine's own timestamps, not a timed test


async def test_hung_service_goes_stale_then_error_then_recovers(
    service: tuple[Service, str],
) -> None:
    svc, url = service
    source = AiohttpSource(url)
    config = make_config({"id": "api", "interval": "200ms", "timeout": "2s"})
    engine = Engine(config, sources={"api": source})
    await engine.start()
    try:
        await eventually(lambda: engine.snapshot("api").state is State.OK)
        svc.release.clear()  # the service hangs
        await eventually(lambda: engine.snapshot("api").state is State.STALE)
        await eventually(lambda: engine.snapshot("api").state is State.ERROR)
        assert engine.snapshot("api").error == "timeout after 2s"
        assert engine.snapshot("api").reading is not None  # last good value kept
        svc.release.set()  # and comes back
        await eventually(lambda: engine.snapshot("api").state is State.OK)
    finally:
        await engine.stop()
        await source.aclose()
    path = [e.new for e in engine.timeline.events() if e.kind is EventKind.STATE]
    # (a loaded machine may add an early OK -> STALE -> OK blip; the ending is what matters)
    assert path[0] is State.OK and path[-3:] == [State.STALE, State.ERROR, State.OK]
