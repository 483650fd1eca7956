"""check_once: every probe once, concurrently, same rules, clients closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from opstui.engine import check
from opstui.engine.check import check_once
from opstui.engine.clock import ManualClock
from opstui.sources.base import Client, ProbeError
from opstui.sources.registry import ClientPool
from opstui.states import Severity, State
from tests.engine.helpers import AiohttpSource, ScriptedSource, make_config, ok, settle, verdict
from tests.support import ServeApp, free_port


async def test_scripted_outcomes_in_config_order() -> None:
    config = make_config(
        {"id": "ok"},
        {"id": "crit"},
        {"id": "err"},
        {"id": "boom"},
        {"id": "slow", "thresholds": {"above": {"warn": 100}, "for": "1m"}},
        {"id": "missing"},
    )
    sources = {
        "ok": ScriptedSource(ok()),
        "crit": ScriptedSource(verdict(Severity.CRIT)),
        "err": ScriptedSource(ProbeError("refused", hint="is it up?")),
        "boom": ScriptedSource(KeyError("status")),
        "slow": ScriptedSource(ok(500.0)),
    }
    snaps = await check_once(config, sources=sources)
    assert [s.probe_id for s in snaps] == ["ok", "crit", "err", "boom", "slow", "missing"]
    assert [s.state for s in snaps] == [
        State.OK,
        State.CRIT,
        State.ERROR,
        State.ERROR,
        State.PENDING,
        State.ERROR,
    ]
    assert snaps[2].error_hint == "is it up?"
    assert snaps[3].error == "KeyError: 'status'"
    assert snaps[5].error == "no source for this probe"


async def test_polls_concurrently_each_with_its_timeout() -> None:
    clock = ManualClock()
    config = make_config(*({"id": f"h{i}", "timeout": "200ms"} for i in range(5)))
    hung = {f"h{i}": ScriptedSource(ok()) for i in range(5)}
    for source in hung.values():
        source.gate = asyncio.Event()  # never released
    task = asyncio.ensure_future(check_once(config, sources=hung, clock=clock))
    await settle()
    assert all(s.in_flight == 1 for s in hung.values())  # all five at once
    assert not task.done()
    clock.advance(0.2)
    snaps = await asyncio.wait_for(task, 5)
    assert all(s.error == "timeout after 200ms" for s in snaps)


async def test_against_a_real_server(serve_app: ServeApp) -> None:
    async def good(request: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    async def bad(request: web.Request) -> web.Response:
        return web.json_response({"status": "fail"}, status=503)

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    app = web.Application()
    app.router.add_get("/good", good)
    app.router.add_get("/bad", bad)
    app.router.add_get("/hang", hang)
    base = await serve_app(app)
    config = make_config(
        {"id": "good"}, {"id": "bad"}, {"id": "hang", "timeout": "300ms"}, {"id": "refused"}
    )
    sources = {
        "good": AiohttpSource(f"{base}/good"),
        "bad": AiohttpSource(f"{base}/bad"),
        "hang": AiohttpSource(f"{base}/hang"),
        "refused": AiohttpSource(f"http://127.0.0.1:{free_port()}/"),
    }
    try:
        snaps = {s.probe_id: s for s in await check_once(config, sources=sources)}
    finally:
        for source in sources.values():
            await source.aclose()
    assert snaps["good"].state is State.OK and snaps["good"].reading is not None
    assert snaps["bad"].state is State.CRIT
    assert snaps["hang"].state is State.ERROR and snaps["hang"].error == "timeout after 300ms"
    assert snaps["refused"].state is State.ERROR


class _TrackedClient(Client):
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_builds_sources_and_closes_their_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    clients: list[_TrackedClient] = []

    def build(probe: Any, connection: Any, pool: ClientPool) -> ScriptedSource:
        if probe.id == "bad":
            raise ModuleNotFoundError("No module named 'opstui.sources.health'")
        client = pool.get(probe.connection, _TrackedClient)
        assert isinstance(client, _TrackedClient)
        clients.append(client)
        return ScriptedSource(ok())

    monkeypatch.setattr(check, "build_source", build)
    snaps = await check_once(make_config({"id": "a"}, {"id": "bad"}))
    assert [s.state for s in snaps] == [State.OK, State.ERROR]
    assert snaps[1].error is not None and snaps[1].error.startswith("cannot start:")
    assert clients and all(c.closed for c in clients)
