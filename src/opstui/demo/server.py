"""The demo's stand-in service: health endpoints in the formats real services speak.

It serves on loopback only, in a thread of its own so the dashboard's work never slows its
answers. The Anclora service (`/health`, `/metrics`) reports the simulated world
(opstui.demo.world) that a WorldRunner ticks in the same loop; the fleet's other endpoints
follow a fixed script over time so the demo is lively but repeatable: one dependency flaps,
one endpoint is slow.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from opstui.demo.loopthread import LoopThread
from opstui.demo.runner import WorldRunner
from opstui.demo.world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Scenario:
    """What the stand-in world does at a given second since start."""

    started: float = field(default_factory=time.monotonic)
    flap_period: float = 30.0
    flap_down: float = 9.0
    slow_latency: float = 0.36
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


def _json(body: object, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(text=json.dumps(body), status=status, content_type=content_type)


_RANK = {"pass": 0, "warn": 1, "fail": 2}
LAG_WARN_MS = 50.0
LAG_FAIL_MS = 100.0
"""Event-loop lag limits of the service's /health (the world's lag follows its backlog)."""


def _level(value: float, warn: float, fail: float) -> str:
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def anclora_health(runner: WorldRunner) -> tuple[dict[str, object], int]:
    """The Anclora service's /health (IETF health+json, seed 000): memory and event loop
    from the world, and Redis as the world's last write to it went."""
    figures = runner.world.health()
    lag = figures.event_loop_lag_ms
    event_loop: dict[str, object] = {
        "componentId": "lag", "componentType": "system", "observedValue": round(lag, 1),
        "observedUnit": "ms", "status": _level(lag, LAG_WARN_MS, LAG_FAIL_MS),
    }
    if event_loop["status"] != "pass":  # the reason the health panel shows
        event_loop["output"] = (
            f"event loop lag {lag:.0f} ms (warn {LAG_WARN_MS:g}, fail {LAG_FAIL_MS:g}) with "
            f"{runner.world.backlog} jobs waiting"
        )
    checks: dict[str, list[dict[str, object]]] = {
        "memory": [
            {"componentId": "heapUsed", "componentType": "system",
             "observedValue": round(figures.heap_mib, 1), "observedUnit": "MiB",
             "status": _level(figures.heap_mib, 768, 0.9 * figures.heap_limit_mib)}
        ],
        "eventLoop": [event_loop],
    }
    if runner.redis_url is not None and runner.redis_ok is not None:
        redis: dict[str, object] = {"componentType": "datastore",
                                    "status": "pass" if runner.redis_ok else "fail"}
        if not runner.redis_ok:
            redis["output"] = runner.redis_error[:200]
        checks["redis"] = [redis]
    status = max((c[0]["status"] for c in checks.values()), key=lambda s: _RANK[str(s)])
    body = {
        "status": status,
        "version": "2.4.1",
        "serviceId": "anclora-whatsapp",
        "description": "Anclora WhatsApp integration (opstui demo)",
        "checks": checks,
    }
    return body, 503 if status == "fail" else 200


def build_app(scenario: Scenario, runner: WorldRunner) -> web.Application:
    """The stand-in's routes: the Anclora service (from the world) and the fleet's other
    health formats (from the scenario)."""
    metrics = runner.world.metrics

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.request(request.method, route, response.status)
        return response

    async def ietf_health(_: web.Request) -> web.Response:
        body, status = anclora_health(runner)
        return _json(body, status=status, content_type="application/health+json")

    async def prometheus_metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

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

    app = web.Application(middlewares=[count_requests])
    app.router.add_get("/health", ietf_health)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/api/health", terminus_health)
    app.router.add_get("/actuator/health", spring_health)
    app.router.add_get("/health/ready", ready_health)
    app.router.add_get("/status", plain_status)
    return app


class DemoServer:
    """Runs the stand-in on 127.0.0.1 in a daemon thread; `url` is ready once start() returns.

    Without a runner it makes one of its own: a world with no Redis or ECS link (its queue
    lives in memory only), enough for the health and metrics endpoints.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        port: int = 0,
        runner: WorldRunner | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.scenario = scenario or Scenario()
        self.runner = runner or WorldRunner(World())
        self._port = port
        self._thread = LoopThread("opstui-demo")
        self._site_runner: web.AppRunner | None = None
        self._sock = sock
        """A socket bound already (the demo's launcher takes the port before the dashboard
        starts); without one, start() binds `port`."""
        self.port = sock.getsockname()[1] if sock is not None else 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bind(self) -> None:
        """Take the port now (OSError if it is taken), so `url` is known before start()."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]

    def start(self, timeout: float = 10.0) -> None:
        self.bind()
        self._thread.start(self._open, self._close, timeout=timeout)

    def stop(self) -> None:
        self._thread.stop()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()  # never started (or closed already by the site: closing is idempotent)

    async def _open(self) -> None:
        assert self._sock is not None
        self._site_runner = web.AppRunner(build_app(self.scenario, self.runner), access_log=None)
        await self._site_runner.setup()
        await web.SockSite(self._site_runner, self._sock).start()
        self.runner.start()

    async def _close(self) -> None:
        await self.runner.stop()
        if self._site_runner is not None:
            await self._site_runner.cleanup()
