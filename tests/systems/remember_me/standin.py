"""A stand-in of Remember Me (seed 001): its NestJS API's endpoints over real PostgreSQL
tables "IntegrationJob" and "MessageLog", its /api/metrics in Prometheus text (gauges counted
from the tables, counters that move with every scrape as traffic would), and its Redis
rate-limit keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

JWT = "jwt-remember-me-test"
METRICS_TOKEN = "metrics-token-test"

SCHEMA = """
DROP TABLE IF EXISTS "IntegrationJob";
DROP TABLE IF EXISTS "MessageLog";
CREATE TABLE "IntegrationJob" (
  id text PRIMARY KEY, type text NOT NULL, status text NOT NULL,
  attempts int NOT NULL DEFAULT 0, "lastError" text,
  "createdAt" timestamptz NOT NULL, "updatedAt" timestamptz NOT NULL
);
CREATE TABLE "MessageLog" (
  id text PRIMARY KEY, direction text NOT NULL, status text NOT NULL,
  "metaJson" jsonb, "createdAt" timestamptz NOT NULL
);
-- 14 PENDING for 3 min (pendingCount > 10, oldestPendingAgeMs > 60000)
INSERT INTO "IntegrationJob"
SELECT 'job-p' || i, 'whatsapp.send', 'PENDING', 0, NULL,
       now() - interval '3 minutes', now() - interval '3 minutes'
FROM generate_series(1, 14) AS i;
-- 6 PROCESSING stuck for 20 min, 2 PROCESSING for 1 min (not stuck)
INSERT INTO "IntegrationJob"
SELECT 'job-s' || i, 'whatsapp.send', 'PROCESSING', 1, NULL,
       now() - interval '25 minutes', now() - interval '20 minutes'
FROM generate_series(1, 6) AS i;
INSERT INTO "IntegrationJob"
SELECT 'job-r' || i, 'instagram.send', 'PROCESSING', 1, NULL,
       now() - interval '2 minutes', now() - interval '1 minute'
FROM generate_series(1, 2) AS i;
-- 12 FAILED (integration_jobs_failed_count > 10), 30 DONE
INSERT INTO "IntegrationJob"
SELECT 'job-f' || i, 'whatsapp.send', 'FAILED', 3, 'WhatsApp API error: (#131047) re-engagement',
       now() - interval '2 hours', now() - interval '1 hour'
FROM generate_series(1, 12) AS i;
INSERT INTO "IntegrationJob"
SELECT 'job-d' || i, 'whatsapp.send', 'DONE', 1, NULL,
       now() - interval '3 hours', now() - interval '3 hours'
FROM generate_series(1, 30) AS i;
-- 7 OUTBOUND FAILED in the last 24 h, 3 older, 2 INBOUND FAILED, 20 SENT
INSERT INTO "MessageLog"
SELECT 'msg-f' || i, 'OUTBOUND', 'FAILED', '{"error": "WhatsApp API error"}',
       now() - interval '2 hours'
FROM generate_series(1, 7) AS i;
INSERT INTO "MessageLog"
SELECT 'msg-old' || i, 'OUTBOUND', 'FAILED', '{"error": "token expired"}',
       now() - interval '3 days'
FROM generate_series(1, 3) AS i;
INSERT INTO "MessageLog"
SELECT 'msg-in' || i, 'INBOUND', 'FAILED', NULL, now() - interval '1 hour'
FROM generate_series(1, 2) AS i;
INSERT INTO "MessageLog"
SELECT 'msg-ok' || i, 'OUTBOUND', 'SENT', NULL, now() - interval '1 hour'
FROM generate_series(1, 20) AS i;
"""

RATE_LIMIT_KEYS = {"rate_limit:auth.login:org-123": "57", "rate_limit:auth.login:org-456": "3"}


def seed_redis(client: redis.Redis) -> None:
    client.flushdb()
    for key, value in RATE_LIMIT_KEYS.items():
        client.set(key, value, ex=3600)


@dataclass
class RememberMe:
    """The API. `requests` records every call the tests make it take (method, path)."""

    dsn: str
    requests: list[tuple[str, str]] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.pending = Gauge("integration_jobs_pending_count", "pending jobs", registry=r)
        self.failed = Gauge("integration_jobs_failed_count", "failed jobs", registry=r)
        self.latency = Histogram(
            "integration_job_latency_ms",
            "job latency",
            buckets=(100, 1000, 5000, 30000, 60000),
            registry=r,
        )
        for value in (80, 90, 400, 700, 2000, 4000, 4500, 12000, 25000, 41000):
            self.latency.observe(value)
        self.webhooks = Counter("webhook_events", "webhook events", ["status"], registry=r)
        self.webhook_duration = Histogram(
            "webhook_processing_duration_ms", "webhook time", buckets=(10, 100, 1000), registry=r
        )
        self.webhook_duration.observe(42)
        self.transitions = Counter(
            "message_status_transitions", "status transitions", ["to_status"], registry=r
        )
        self.http = Histogram(
            "http_request_duration_ms", "http time", buckets=(50, 200, 1000, 2000, 5000), registry=r
        )
        for value in (20, 30, 45, 120, 150, 300, 800, 1500, 2500, 6000):
            self.http.observe(value)
        self.slow = Counter("slow_requests", "slow requests", registry=r)
        self.rejected = Counter("rate_limit_rejected", "rejections", ["action"], registry=r)
        self.hits = Counter("rate_limit_hits", "hits", ["action"], registry=r)

    def _traffic(self) -> None:
        """Each scrape sees more traffic, as a live system's counters would."""
        self.webhooks.labels(status="error").inc(1)
        self.webhooks.labels(status="success").inc(5)
        self.transitions.labels(to_status="failed").inc(1)
        self.transitions.labels(to_status="sent").inc(4)
        self.slow.inc(1)
        self.rejected.labels(action="auth.login").inc(2)
        self.hits.labels(action="auth.login").inc(6)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return list(await conn.fetch(sql, *args, timeout=5))
        finally:
            await conn.close()

    async def _execute(self, sql: str, *args: Any) -> str:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return str(await conn.execute(sql, *args, timeout=5))
        finally:
            await conn.close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/api/integrations/jobs/metrics", self.jobs_metrics)
        app.router.add_get("/api/metrics", self.metrics)
        app.router.add_post("/api/auth/login", self.login)
        app.router.add_get("/api/integrations/messages", self.messages)
        app.router.add_post("/api/inbox/messages/{id}/retry", self.retry)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs))
        needs_jwt = request.path != "/api/metrics" and request.path != "/api/auth/login"
        if needs_jwt and request.headers.get("Authorization") != f"Bearer {JWT}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def jobs_metrics(self, request: web.Request) -> web.Response:
        rows = await self._fetch(
            """SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                      count(*) FILTER (WHERE status = 'PROCESSING') AS processing,
                      count(*) FILTER (WHERE status = 'FAILED') AS failed,
                      (EXTRACT(EPOCH FROM now() - min("createdAt")
                         FILTER (WHERE status = 'PENDING')) * 1000)::bigint AS oldest,
                      max("updatedAt") FILTER (WHERE status = 'DONE') AS last_run
               FROM "IntegrationJob" """
        )
        row = rows[0]
        return web.json_response(
            {
                "pendingCount": row["pending"],
                "processingCount": row["processing"],
                "failedCount": row["failed"],
                "oldestPendingAgeMs": row["oldest"] or 0,
                "lastRunAt": row["last_run"].isoformat() if row["last_run"] else None,
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Metrics-Token") != METRICS_TOKEN:
            return web.Response(status=401, text="invalid metrics token")
        rows = await self._fetch(
            """SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                      count(*) FILTER (WHERE status = 'FAILED') AS failed
               FROM "IntegrationJob" """
        )
        self.pending.set(rows[0]["pending"])
        self.failed.set(rows[0]["failed"])
        self._traffic()
        return web.Response(
            body=generate_latest(self.registry),
            content_type="text/plain",
            charset="utf-8",
        )

    async def login(self, request: web.Request) -> web.Response:
        await request.read()
        self.rejected.labels(action="auth.login").inc()
        return web.json_response(
            {"statusCode": 429, "message": "Too Many Requests"},
            status=429,
            headers={
                "Retry-After": "42",
                "X-RateLimit-Limit": "10",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1767225600",
            },
        )

    async def messages(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "FAILED")
        rows = await self._fetch(
            'SELECT id, direction, status FROM "MessageLog" WHERE status = $1 ORDER BY id', status
        )
        return web.json_response({"items": [dict(row) for row in rows], "total": len(rows)})

    async def retry(self, request: web.Request) -> web.Response:
        message_id = request.match_info["id"]
        found = await self._fetch('SELECT id FROM "MessageLog" WHERE id = $1', message_id)
        if not found:
            return web.json_response({"message": "Not Found"}, status=404)
        new_id = f"{message_id}-retry"
        await self._execute(
            """INSERT INTO "MessageLog" (id, direction, status, "metaJson", "createdAt")
               VALUES ($1, 'OUTBOUND', 'QUEUED', jsonb_build_object('retryOf', $2::text), now())""",
            new_id,
            message_id,
        )
        return web.json_response({"id": new_id, "status": "QUEUED"}, status=201)


async def reseed(dsn: str) -> None:
    """Tables back to the incident's state (every test starts from it)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


def reseed_sync(dsn: str) -> None:
    asyncio.run(reseed(dsn))
