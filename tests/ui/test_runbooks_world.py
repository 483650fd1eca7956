"""The world the runbook UI tests walk: a real aiohttp app standing in for the admin API, a real
redis-server with BullMQ-shaped keys, and a config whose runbook diagnoses and fixes them.

Fixtures and helpers only (imported by test_runbooks*.py, test_confirm*.py and
test_snapshots_runbooks.py). Every answer the servers give is fixed, so outputs are too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from textual.app import App

from opstui.actions.runner import Runner
from opstui.config.models import Config
from opstui.engine.clock import Clock
from opstui.engine.scheduler import Engine
from opstui.ui.app import OpstuiApp, build_runner
from opstui.ui.runbook_screen import RunbookScreen
from tests.servers.redis import RedisServer
from tests.support import ServeApp, require_binary

ADMIN_KEY = "s3cr3t-admin-key-for-tests"
ADMIN_KEY_ENV = "OPSTUI_TEST_ADMIN_KEY"
WAIT_KEY = "bull:anclora:wait"
FAILED_KEY = "bull:anclora:failed"
RUNBOOK = "high-queue-backlog"


@dataclass
class AdminApi:
    """The admin API stand-in: /health fails while fewer than 4 workers run."""

    workers: int = 1
    scale_requests: list[Any] = field(default_factory=list)
    unauthorised: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/health/web", self.web_health)
        app.router.add_get("/queue/metrics", self.metrics)
        app.router.add_post("/workers/scale", self.scale)
        return app

    async def health(self, request: web.Request) -> web.Response:
        status = "pass" if self.workers >= 4 else "fail"
        return web.json_response({"status": status, "workers": self.workers})

    async def web_health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.json_response({"waiting": 12000, "active": 3})

    async def scale(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Admin-Key") != ADMIN_KEY:
            self.unauthorised += 1
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        self.scale_requests.append(body)
        self.workers = int(body["count"])
        return web.json_response({"workers": self.workers})


def world_config(
    api_url: str, redis_url: str, audit: Path, *, read_only: bool = False, refresh: str = "1s"
) -> Config:
    return Config.model_validate(
        {
            "title": "Anclora WhatsApp",
            "environment": "production",
            "refresh": refresh,
            "read_only": read_only,
            "audit_log": str(audit),
            "connections": {
                "app": {
                    "kind": "http",
                    "base_url": api_url,
                    "timeout": "2s",
                    "headers": {"X-Admin-Key": "${" + ADMIN_KEY_ENV + "}"},
                },
                "redis": {"kind": "redis", "url": redis_url, "timeout": "2s"},
            },
            "probes": [
                {
                    "id": "queue",
                    "title": "Queue workers",
                    "kind": "health",
                    "connection": "app",
                    "path": "/health",
                    "runbook": RUNBOOK,
                },
                {"id": "web", "title": "Web", "kind": "health", "connection": "app",
                 "path": "/health/web"},
            ],
            "runbooks": [
                {
                    "id": RUNBOOK,
                    "title": "High queue backlog",
                    "severity": "critical",
                    "symptoms": "Queue depth > 10,000; processing latency increasing",
                    "probes": ["queue"],
                    "diagnose": [
                        {"title": "Wait list length", "kind": "redis", "connection": "redis",
                         "command": ["LLEN", WAIT_KEY]},
                        {"title": "Failed jobs", "kind": "redis", "connection": "redis",
                         "command": ["ZCARD", FAILED_KEY]},
                        {"title": "Worker log", "kind": "shell", "readonly": True,
                         "argv": ["printf", "worker 1: busy\\nworker 2: idle\\n"]},
                        {"title": "Check Sentry for new errors", "kind": "manual",
                         "text": "Open Sentry, filter on anclora-whatsapp, last 30 minutes."},
                    ],
                    "actions": [
                        {
                            "id": "scale-up",
                            "key": "S",
                            "title": "Scale up workers",
                            "kind": "http",
                            "connection": "app",
                            "method": "POST",
                            "path": "/workers/scale",
                            "json": {"count": "{{ params.count }}"},
                            "params": {"count": {"type": "int", "min": 1, "max": 20,
                                                 "default": 4}},
                            "verb": "Scale",
                            "danger": "medium",
                            "then": {"watch": "queue", "until": "state == ok",
                                     "timeout": "20s"},
                        },
                        {
                            "id": "flush-failed",
                            "key": "D",
                            "title": "Delete failed jobs",
                            "kind": "redis",
                            "connection": "redis",
                            "command": ["DEL", FAILED_KEY],
                            "danger": "high",
                        },
                        {"id": "queue-stats", "key": "m", "title": "Queue metrics",
                         "kind": "http", "connection": "app", "path": "/queue/metrics"},
                        {"id": "tell-incidents", "title": "Tell #incidents the queue is "
                         "backing up", "kind": "manual"},
                    ],
                },
                {
                    "id": "cache-cold",
                    "title": "Cache cold after deploy",
                    "severity": "warning",
                    "symptoms": "Web latency doubles for ten minutes after a deploy",
                    "probes": ["web"],
                    "diagnose": [
                        {"title": "Slow check", "kind": "shell", "readonly": True,
                         "argv": ["sleep", "30"], "timeout": "60s"},
                    ],
                },
            ],
        }
    )


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-runbooks"),
                         binary=require_binary("redis-server"))
    server.start()
    yield server
    server.stop()


def seed_redis(server: RedisServer) -> None:
    """Five waiting jobs, three failed ones: the diagnose steps' fixed answers."""
    with server.sync_client() as client:
        client.flushdb()
        client.rpush(WAIT_KEY, *[f"job-{n}" for n in range(5)])
        client.zadd(FAILED_KEY, {"job-a": 1, "job-b": 2, "job-c": 3})


@dataclass
class World:
    api: AdminApi
    api_url: str
    redis: RedisServer
    audit: Path

    def config(self, **options: Any) -> Config:
        return world_config(self.api_url, self.redis.url, self.audit, **options)

    def app(self, *, read_only: bool = False, poll: bool = True, clock: Clock | None = None,
            refresh: str = "1s") -> OpstuiApp:
        engine = Engine(self.config(refresh=refresh), clock=clock)
        runner = build_runner(engine, read_only=read_only)
        return OpstuiApp(engine, read_only=read_only, poll=poll, runner=runner)


@pytest.fixture(name="world")
async def world_fixture(
    serve_app: ServeApp, redis_server: RedisServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    monkeypatch.setenv(ADMIN_KEY_ENV, ADMIN_KEY)
    seed_redis(redis_server)
    api = AdminApi()
    url = await serve_app(api.app())
    return World(api, url, redis_server, tmp_path / "audit.jsonl")


# --- helpers --------------------------------------------------------------------------------


async def until(
    predicate: Callable[[], bool], what: str, limit: float = 15.0,
    pause: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Poll `predicate` (letting the app run) until it holds; fail naming `what`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        if pause is not None:
            await pause()
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {limit:g}s waiting for {what}")


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now (the top screen's compositor frame), as plain lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def diagnostics_done(screen: RunbookScreen) -> bool:
    return all(
        row.state in ("ok", "failed", "cancelled")
        for row in screen.rows.values()
        if row.section == "diagnose"
    )


def classified(screen: RunbookScreen) -> bool:
    return all(
        row.verdict is not None or row.verdict_error is not None
        for row in screen.rows.values()
        if row.section == "action"
    )


def runner_of(app: OpstuiApp) -> Runner:
    return app.runner
