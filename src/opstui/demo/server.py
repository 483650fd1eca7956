"""The demo's stand-in service: health endpoints in the formats real services speak.

It serves on loopback only, in a thread of its own so the dashboard's work never slows its
answers. Behaviour follows a fixed script over time so the demo is lively but repeatable:
one dependency flaps, one endpoint is slow, one degrades now and then.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Scenario:
    """What the stand-in world does at a given second since start."""

    started: float = field(default_factory=time.monotonic)
    flap_period: float = 30.0
    flap_down: float = 9.0
    slow_latency: float = 0.45
    slow_spike_every: float = 45.0
    slow_spike_for: float = 12.0
    slow_spike_latency: float = 1.4

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def redis_up(self) -> bool:
        """The flapping dependency: down for `flap_down` seconds every `flap_period`."""
        return (self.elapsed() % self.flap_period) >= self.flap_down

    def slow_delay(self) -> float:
        phase = self.elapsed() % self.slow_spike_every
        spiking = phase >= self.slow_spike_every - self.slow_spike_for
        return self.slow_spike_latency if spiking else self.slow_latency

    def heap_mib(self) -> float:
        """A slowly climbing memory figure, for a living `checks.memory` value."""
        return 180.0 + (self.elapsed() % 600) / 4


def _json(body: object, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=content_type)


def build_app(scenario: Scenario) -> web.Application:
    """The stand-in's routes, one per health format opstui understands."""

    async def ietf_health(_: web.Request) -> web.Response:
        # IETF draft-inadarei health+json, like the Anclora service's /health (seed 000).
        heap = scenario.heap_mib()
        body = {
            "status": "pass",
            "version": "2.4.1",
            "serviceId": "anclora-whatsapp",
            "checks": {
                "memory:heapUsed": [
                    {"componentType": "system", "observedValue": round(heap, 1),
                     "observedUnit": "MiB", "status": "pass"}
                ],
                "eventLoop:lag": [
                    {"componentType": "system", "observedValue": 3, "observedUnit": "ms",
                     "status": "pass"}
                ],
            },
        }
        return _json(body, content_type="application/health+json")

    async def terminus_health(_: web.Request) -> web.Response:
        # NestJS Terminus, like Remember Me's API (seed 001); its Redis flaps.
        redis_up = scenario.redis_up()
        database = {"database": {"status": "up"}}
        redis = {"redis": {"status": "up"} if redis_up else {
            "status": "down", "message": "connect ECONNREFUSED 10.0.3.7:6379"}}
        if redis_up:
            body = {"status": "ok", "info": {**database, **redis}, "error": {},
                    "details": {**database, **redis}}
            return _json(body)
        body = {"status": "error", "info": database, "error": redis,
                "details": {**database, **redis}}
        return _json(body, status=503)

    async def spring_health(_: web.Request) -> web.Response:
        # Spring Boot Actuator with nested components; disk space sometimes degraded.
        body = {
            "status": "UP",
            "components": {
                "db": {"status": "UP", "details": {"database": "PostgreSQL"}},
                "diskSpace": {"status": "UP", "details": {"free": 41_234_567_890}},
                "ping": {"status": "UP"},
            },
        }
        return _json(body, content_type="application/vnd.spring-boot.actuator.v3+json")

    async def ready_health(_: web.Request) -> web.Response:
        # Agente API's /health/ready with `dependencies` (seed 004): slow, sometimes slower.
        await asyncio.sleep(scenario.slow_delay())
        body = {
            "status": "ready",
            "dependencies": {
                "database": {"status": "healthy", "latency_ms": 4},
                "redis": {"status": "healthy", "latency_ms": 1},
                "pms": {"status": "healthy", "circuit_breaker": "closed"},
            },
        }
        return _json(body)

    async def plain_status(_: web.Request) -> web.Response:
        return web.Response(text="OK\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/health", ietf_health)
    app.router.add_get("/api/health", terminus_health)
    app.router.add_get("/actuator/health", spring_health)
    app.router.add_get("/health/ready", ready_health)
    app.router.add_get("/status", plain_status)
    return app


class DemoServer:
    """Runs the stand-in on 127.0.0.1 in a daemon thread; `url` is ready once start() returns."""

    def __init__(self, scenario: Scenario | None = None, port: int = 0) -> None:
        self.scenario = scenario or Scenario()
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._serve, name="opstui-demo", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the demo service did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"the demo service could not start: {self._error}")

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:  # reported to start() in the caller thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(build_app(self.scenario), access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
