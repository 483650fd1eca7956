"""Shared pieces of the actions tests: configs, runners on a temp audit log, a recording
HTTP app (a real aiohttp server through the `serve_app` fixture) and injected readings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from opstui.actions.audit import AuditLog
from opstui.actions.probe_readers import EngineProbeReader
from opstui.actions.runner import Runner
from opstui.config.models import Config
from opstui.engine.clock import Clock
from opstui.engine.events import Timeline
from opstui.engine.scheduler import Engine
from opstui.sources.registry import ClientPool


def make_config(data: Mapping[str, Any]) -> Config:
    return Config.model_validate(dict(data))


@dataclass
class Parts:
    runner: Runner
    audit: AuditLog
    pool: ClientPool
    timeline: Timeline
    engine: Engine

    async def close(self) -> None:
        await self.runner.aclose()
        await self.pool.aclose()


def make_runner(
    config: Config, tmp_path: Path, *, read_only: bool = False, clock: Clock | None = None
) -> Parts:
    """A Runner over an engine whose probes are fed by `engine.ingest` (no polling)."""
    engine = Engine(config, sources={}, clock=clock)
    pool = ClientPool()
    audit = AuditLog(tmp_path / "state" / "audit.jsonl")
    timeline = Timeline()
    runner = Runner(
        config,
        pool=pool,
        probes=EngineProbeReader(engine),
        audit=audit,
        read_only=read_only,
        clock=clock,
        timeline=timeline,
    )
    return Parts(runner, audit, pool, timeline, engine)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class AdminApp:
    """An admin API that records every request it gets."""

    requests: list[Recorded] = field(default_factory=list)
    status: int = 200

    def mutations(self) -> list[Recorded]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD", "OPTIONS")]

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self.requests.append(
                Recorded(
                    request.method,
                    request.path_qs,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            if request.path == "/admin/queue":
                return web.json_response({"queues": {"low": 12408, "high": 3}})
            if request.path == "/echo-key":  # a server that leaks the key back
                return web.json_response(
                    {"got": request.headers.get("X-Admin-Key", "")}, status=500
                )
            return web.json_response({"ok": True, "paused": "low"}, status=self.status)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app
