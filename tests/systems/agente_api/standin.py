"""A stand-in of Agente API (seed 004): /health/ready with `dependencies`, /metrics whose
counters move with every scrape (5xx at ~13 %, 429s, a latency histogram, the PMS circuit
breaker OPEN), the /admin API, and the neighbours the guide calls over HTTP (Alertmanager's
alerts, Jaeger's traces, the PMS status) on the same server; a Prometheus that scrapes it;
PostgreSQL `agente_db` with `logs`, `sessions` and pg_stat_statements; Redis with the
rate-limit and feature-flag keys."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from tests.servers.prometheus import PrometheusServer

ADMIN_TOKEN = "admin-token-test"

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
DROP TABLE IF EXISTS logs;
DROP TABLE IF EXISTS sessions;
CREATE TABLE logs (id serial PRIMARY KEY, created_at timestamptz NOT NULL, message text);
INSERT INTO logs (created_at, message)
SELECT now() - interval '10 days', 'old ' || i FROM generate_series(1, 40) AS i;
INSERT INTO logs (created_at, message)
SELECT now() - interval '1 day', 'new ' || i FROM generate_series(1, 15) AS i;
CREATE TABLE sessions (id serial PRIMARY KEY, guest_id int NOT NULL);
INSERT INTO sessions (guest_id) SELECT i % 50 FROM generate_series(1, 500) AS i;
"""
SLOW_QUERY = "SELECT pg_sleep(0.15)"  # shows up in pg_stat_statements with mean > 100 ms

REDIS_KEYS = {
    "rate_limit:max_requests": "120",
    "rate_limit:strict_mode": "false",
    "feature_flags:pms.fallback.enabled": "false",
}


def seed_redis(client: redis.Redis) -> None:
    client.flushdb()
    client.config_set("maxmemory", "0")
    client.config_set("maxmemory-policy", "noeviction")
    for key, value in REDIS_KEYS.items():
        client.set(key, value)


@dataclass
class AgenteApi:
    """The API; `admin` records every /admin and /api/test call (path, JSON body)."""

    admin: list[tuple[str, Any]] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        ProcessCollector(registry=r)
        self.requests = Counter("http_requests", "requests", ["method", "status"], registry=r)
        self.duration = Histogram(
            "http_requests_duration_seconds",
            "request time",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.breaker = Gauge("pms_circuit_breaker_state", "0 closed, 1 open", registry=r)
        self.breaker.set(1)
        self.breaker_calls = Counter(
            "pms_circuit_breaker_calls", "PMS calls", ["result"], registry=r
        )

    def _traffic(self) -> None:
        """What happened since the last scrape: 50 OK, 8 errors, 5 rejected; slow-ish."""
        self.requests.labels(method="GET", status="200").inc(50)
        self.requests.labels(method="POST", status="500").inc(8)
        self.requests.labels(method="GET", status="429").inc(5)
        for value in (0.03, 0.04, 0.08, 0.09, 0.2, 0.2, 0.3, 0.4, 0.45, 0.9):
            self.duration.observe(value)
        self.breaker_calls.labels(result="failure").inc(3)
        self.breaker_calls.labels(result="rejected").inc(7)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health/ready", self.ready)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_post("/admin/feature-flags", self.record)
        app.router.add_post("/admin/rate-limits", self.record)
        app.router.add_post("/api/test", self.api_test)
        app.router.add_get("/api/v2/alerts", self.alerts)  # Alertmanager
        app.router.add_get("/api/traces", self.traces)  # Jaeger
        app.router.add_get("/api/status", self.pms_status)  # the PMS (GET also answers HEAD)
        return app

    async def ready(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ready",
                "dependencies": {
                    "postgres": {"status": "healthy", "latency_ms": 3},
                    "redis": {"status": "healthy", "latency_ms": 1},
                    "pms": {"status": "degraded", "circuit_breaker": "OPEN"},
                },
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        self._traffic()
        return web.Response(
            body=generate_latest(self.registry), content_type="text/plain", charset="utf-8"
        )

    async def record(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ADMIN_TOKEN}":
            return web.json_response({"detail": "unauthorized"}, status=401)
        body = await request.json()
        self.admin.append((request.path, body))
        return web.json_response({"ok": True, "applied": body})

    async def api_test(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.admin.append((request.path, body))
        return web.json_response({"status": "success", "echo": body.get("message")})

    async def alerts(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def traces(self, request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        spans = [{"operationName": "GET /availability", "duration": 412000}]
        return web.json_response(
            {"data": [{"traceID": "abc123", "spans": spans, "service": service}]}
        )

    async def pms_status(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "up"})


class AgentePrometheus(PrometheusServer):
    """Prometheus scraping the stand-in's /metrics every second as job `agente-api`."""

    def __init__(self, workdir: Path, target_port: int) -> None:
        super().__init__(workdir)
        self.target_port = target_port

    def _write_config(self) -> Path:
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: agente-api\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.target_port}']}}]\n"
        )
        return config

    def start(self) -> None:  # no exporter of its own: it scrapes the stand-in
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        super(PrometheusServer, self).start()

    def close(self) -> None:
        self.stop()

    def query(self, promql: str) -> list[Any]:
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=5) as reply:
            result: list[Any] = json.loads(reply.read())["data"]["result"]
            return result

    def wait_for_rates(self, timeout: float = 40.0) -> None:
        """Until the stand-in was scraped enough for every rate() to have two samples."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                samples = self.query("count_over_time(pms_circuit_breaker_state[1m])")
            except (OSError, ValueError, KeyError):
                samples = []
            if samples and float(samples[0]["value"][1]) >= 3:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus had no data after {timeout:g}s: {self.log_tail()}")
            time.sleep(0.2)
