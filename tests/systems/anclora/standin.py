"""A stand-in of the Anclora WhatsApp app (seeds 000 and 002) as a real aiohttp app.

It serves what the example config reads: /health with `checks.memory` and `checks.eventLoop`,
/queue/metrics (counted live from the real Redis holding the BullMQ keys), a /metrics
exposition of the `anclora_*` series (counters grow at every scrape, so rates exist), the
WhatsApp instance list, the admin API (POSTs checked against X-Admin-Key and recorded), and the
Evolution API endpoints (checked against `apikey`). Runs in a loop thread of its own so one
instance can serve a whole test module while Prometheus scrapes it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from opstui.demo.loopthread import LoopThread

QUEUE = "bull:anclora-whatsapp"
INSTANCE = "anclora"
BUCKETS = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
# Observations of the processing histogram per scrape: 40 jobs, P95 interpolated at ~0.097 s
# (rank 38 of 40 falls in the 0.05-0.1 bucket), under the 100 ms key-metric threshold.
OBSERVATIONS = (0.03,) * 20 + (0.07,) * 19 + (0.3,)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandInState:
    """What the stand-in was asked, readable from the test's thread."""

    admin_key: str
    evolution_key: str
    redis_url: str
    calls: list[Call] = field(default_factory=list)
    scrapes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == "POST" and c.path == path]


def _histogram(seconds: float) -> list[str]:
    name = "anclora_queue_processing_duration_seconds"
    lines = [f"# HELP {name} Job processing time.", f"# TYPE {name} histogram"]
    for bound in BUCKETS:
        count = sum(1 for o in OBSERVATIONS if o <= bound) * seconds
        lines.append(f'{name}_bucket{{le="{bound}"}} {count:.3f}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {len(OBSERVATIONS) * seconds:.3f}')
    lines.append(f"{name}_sum {sum(OBSERVATIONS) * seconds:.4f}")
    lines.append(f"{name}_count {len(OBSERVATIONS) * seconds:.3f}")
    return lines


def exposition(seconds: float) -> str:
    """The app's metrics `seconds` after it started. Counters grow with time, not with
    scrapes, so every rate is the same whoever scrapes: 500 messages/s of which 1 fails
    (error rate 0.2 %), 500 requests/s of which 1 is a 503, 0.4 CPU seconds/s."""
    lines = [
        "# TYPE anclora_queue_messages_total counter",
        f"anclora_queue_messages_total {500 * seconds:.3f}",
        "# TYPE anclora_queue_messages_processed_total counter",
        f"anclora_queue_messages_processed_total {499 * seconds:.3f}",
        "# TYPE anclora_queue_messages_failed_total counter",
        f"anclora_queue_messages_failed_total {1 * seconds:.3f}",
        *_histogram(seconds),
        "# TYPE anclora_http_requests_total counter",
        f'anclora_http_requests_total{{status="200"}} {500 * seconds:.3f}',
        f'anclora_http_requests_total{{status="503"}} {1 * seconds:.3f}',
        "# TYPE anclora_process_resident_memory_bytes gauge",
        "anclora_process_resident_memory_bytes 536870912",
        "# TYPE anclora_process_cpu_seconds_total counter",
        f"anclora_process_cpu_seconds_total {0.4 * seconds:.4f}",
        "# TYPE anclora_nodejs_eventloop_lag_seconds gauge",
        "anclora_nodejs_eventloop_lag_seconds 0.004",
        "# TYPE anclora_whatsapp_instances_connected gauge",
        "anclora_whatsapp_instances_connected 1",
    ]
    return "\n".join(lines) + "\n"


class AncloraStandIn:
    """The app on 127.0.0.1:<random>; `start()`/`stop()` from the test's thread."""

    def __init__(self, state: StandInState) -> None:
        self.state = state
        self.port = 0
        self._thread = LoopThread("anclora-standin")
        self._runner: web.AppRunner | None = None
        self._redis: aioredis.Redis | None = None
        self._started = time.monotonic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start(self._setup, self._teardown)

    def stop(self) -> None:
        self._thread.stop()

    async def _setup(self) -> None:
        self._redis = aioredis.from_url(
            self.state.redis_url, decode_responses=True, socket_timeout=5
        )
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _teardown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._redis is not None:
            await self._redis.aclose()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/health", self._health)
        app.router.add_get("/queue/metrics", self._queue_metrics)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/api/whatsapp/instances", self._instances)
        for path in (
            "/admin/heap-snapshot",
            "/admin/queue/pause-priority",
            "/admin/queue/retry-failed",
            "/admin/profile/cpu",
        ):
            app.router.add_post(path, self._admin)
        app.router.add_get("/instance/status/{name}", self._evolution)
        app.router.add_get("/instance/connect/{name}", self._evolution)
        app.router.add_post("/instance/restart/{name}", self._evolution)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        with self.state.lock:
            self.state.calls.append(
                Call(request.method, request.path, dict(request.headers.items()), body)
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "healthy",
                "checks": {
                    "memory": {
                        "status": "healthy",
                        "details": {"heapUsedMB": 312, "rssMB": 512, "limitMB": 2048},
                    },
                    "eventLoop": {"status": "healthy", "lagMs": 4},
                    "redis": {"status": "healthy"},
                },
            }
        )

    async def _counts(self) -> dict[str, int]:
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        pipe.llen(f"{QUEUE}:wait")
        pipe.llen(f"{QUEUE}:active")
        pipe.zcard(f"{QUEUE}:completed")
        pipe.zcard(f"{QUEUE}:failed")
        pipe.zcard(f"{QUEUE}:delayed")
        waiting, active, completed, failed, delayed = await pipe.execute()
        return {
            "waiting": waiting,
            "active": active,
            "completed": completed,
            "failed": failed,
            "delayed": delayed,
        }

    async def _queue_metrics(self, request: web.Request) -> web.Response:
        return web.json_response(await self._counts())

    async def _metrics(self, request: web.Request) -> web.Response:
        with self.state.lock:
            self.state.scrapes += 1
        seconds = 1.0 + time.monotonic() - self._started
        return web.Response(text=exposition(seconds), content_type="text/plain", charset="utf-8")

    async def _instances(self, request: web.Request) -> web.Response:
        return web.json_response({"instances": [{"name": INSTANCE, "status": "connected"}]})

    async def _admin(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Admin-Key") != self.state.admin_key:
            return web.json_response({"error": "invalid admin key"}, status=401)
        return web.json_response({"ok": True, "path": request.path})

    async def _evolution(self, request: web.Request) -> web.Response:
        if request.headers.get("apikey") != self.state.evolution_key:
            return web.json_response({"error": "Unauthorized"}, status=401)
        name = request.match_info["name"]
        if name != INSTANCE:
            return web.json_response({"error": f"instance {name} not found"}, status=404)
        if request.path.startswith("/instance/connect/"):
            return web.json_response({"qrcode": {"code": "2@standin", "base64": ""}})
        return web.json_response({"instance": {"instanceName": name, "state": "open"}})
