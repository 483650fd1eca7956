"""SVG snapshots of a dashboard per backend kind (queue, redis_info, sql, ecs, prometheus,
scrape) at 80x24 and 160x48, and of the detail screen of table kinds.

Configs name connections of the right kinds, polling is off, and fixed readings of the shape
each source produces go in through engine.ingest on a ManualClock, as tests/ui/test_snapshots.py
does for health. Update after a deliberate change with `--snapshot-update`, then look at the
SVGs: nothing may be clipped at 80x24."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading, Table
from opstui.states import State
from opstui.ui.app import OpstuiApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
STEPS = 36
STEP = 5.0

SnapCompare = Callable[..., bool]
Feed = Callable[[int, bool], dict[str, Reading]]
"""(step, is last step) -> the readings of that poll round, by probe id."""

CONNECTIONS: dict[str, dict[str, Any]] = {
    "app": {"kind": "http", "base_url": "http://127.0.0.1:9"},
    "jobs": {"kind": "redis", "url": "redis://127.0.0.1:9/0"},
    "cache": {"kind": "redis", "url": "redis://127.0.0.1:9/1"},
    "db": {"kind": "postgres", "dsn": "postgresql://ops@127.0.0.1:9/app"},
    "aws": {"kind": "aws", "region": "eu-west-1"},
    "prom": {"kind": "prometheus", "url": "http://127.0.0.1:9"},
}


def wave(step: int, base: float, swing: float, period: float = 4.0) -> float:
    return round(base + swing * (1 + math.sin(step / period)) / 2, 1)


# --- queue --------------------------------------------------------------------------------

QUEUE_PROBES = [
    {
        "id": "emails",
        "title": "BullMQ emails",
        "kind": "queue",
        "connection": "jobs",
        "flavor": "bullmq",
        "queue": "emails",
        "thresholds": {"above": {"warn": 1000, "crit": 10000}},
    },
    {
        "id": "celery",
        "title": "Celery default",
        "kind": "queue",
        "connection": "jobs",
        "flavor": "celery",
        "queue": "celery",
        "thresholds": {"above": {"warn": 500, "crit": 2000}},
    },
    {
        "id": "rq-all",
        "title": "RQ queues",
        "kind": "queue",
        "connection": "jobs",
        "flavor": "rq",
        "queue": "*",
    },
]

RQ_TABLE = Table(
    ("queue", "waiting", "started", "failed"),
    (
        ("default", "412", "8", "3"),
        ("reports-nightly-rebuild", "96", "2", "0"),
        ("mail", "41", "4", "12"),
        ("webhooks", "7", "1", "0"),
        ("thumbnails", "0", "0", "1"),
    ),
    title="queues",
)


def feed_queue(step: int, last: bool) -> dict[str, Reading]:
    waiting = 12408.0 if last else wave(step, 6000, 5000)
    celery = round(wave(step, 40, 80))
    rq = 556.0 if last else wave(step, 450, 150)
    return {
        "emails": Reading(
            waiting,
            fields={"waiting": waiting, "active": 24, "delayed": 310, "failed": 1877},
            facts=(
                ("waiting", f"{waiting:,.0f}"),
                ("active", "24"),
                ("delayed", "310"),
                ("failed", "1,877"),
                ("completed/s", "38"),
                ("oldest waiting", "14m"),
            ),
        ),
        "celery": Reading(
            float(celery),
            fields={"waiting": celery},
            facts=(("waiting", f"{celery:,}"), ("unacked", "6"), ("workers", "4")),
        ),
        "rq-all": Reading(
            rq,
            fields={"waiting": rq, "queues": 5},
            facts=(("queues", "5"), ("waiting", f"{rq:,.0f}"), ("failed", "16")),
            table=RQ_TABLE,
        ),
    }


# --- redis_info ---------------------------------------------------------------------------

REDIS_PROBES = [
    {
        "id": "redis-clients",
        "title": "Redis clients",
        "kind": "redis_info",
        "connection": "cache",
        "thresholds": {"above": {"warn": 750, "crit": 950}},
    },
    {
        "id": "redis-memory",
        "title": "Redis memory",
        "kind": "redis_info",
        "connection": "cache",
        "value": "memory_ratio",
        "thresholds": {"above": {"warn": 0.8, "crit": 0.95}},
    },
    {
        "id": "redis-evictions",
        "title": "Redis evictions",
        "kind": "redis_info",
        "connection": "cache",
        "value": "evictions_per_s",
        "unit": "/s",
    },
]


def feed_redis(step: int, last: bool) -> dict[str, Reading]:
    clients = 812.0 if last else wave(step, 500, 250)
    memory = round(wave(step, 61, 6) / 100, 3)
    evictions = wave(step, 0, 3.2, 2.0)
    facts = (
        ("clients", f"{clients:,.0f}/1,000"),
        ("blocked", "3"),
        ("memory", "1.9G / 3.0G"),
        ("evictions", f"{evictions:g}/s"),
        ("ops", "18.2k/s"),
        ("slowlog", "7"),
    )
    fields = {
        "connected_clients": clients,
        "memory_ratio": memory,
        "evictions_per_s": evictions,
    }
    return {
        "redis-clients": Reading(clients, fields=fields, facts=facts),
        "redis-memory": Reading(memory, fields=fields, facts=facts[2:3] + facts[:1]),
        "redis-evictions": Reading(
            evictions, fields=fields, facts=(*facts[3:4], ("evicted", "48,211"))
        ),
    }


# --- sql ----------------------------------------------------------------------------------

SQL_PROBES = [
    {
        "id": "pg-conns",
        "title": "Postgres connections",
        "kind": "sql",
        "connection": "db",
        "preset": "pg_connections",
        "value": "used_pct",
        "unit": "%",
        "thresholds": {"above": {"warn": 80, "crit": 95}},
    },
    {
        "id": "signups",
        "title": "Signups today",
        "kind": "sql",
        "connection": "db",
        "query": "SELECT count(*) AS signups FROM accounts WHERE created_at > current_date",
        "value": "signups",
    },
    {
        "id": "slow",
        "title": "Slow queries",
        "kind": "sql",
        "connection": "db",
        "preset": "pg_slow_queries",
    },
    {
        "id": "slow-replica",
        "title": "Slow queries (replica)",
        "kind": "sql",
        "connection": "db",
        "preset": "pg_slow_queries",
    },
]

SLOW_TABLE = Table(
    ("query", "calls", "mean ms", "total s"),
    (
        (
            "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC",
            "18,204",
            "412",
            "7,500",
        ),
        ("UPDATE inventory SET reserved = reserved + $1 WHERE sku = $2", "92,113", "61", "5,619"),
        ("SELECT count(*) FROM events WHERE account_id = $1", "3,027", "1,204", "3,645"),
        (
            "INSERT INTO audit_log (actor, action, payload) VALUES ($1, $2, $3)",
            "410,882",
            "4.1",
            "1,685",
        ),
        ("SELECT p.* FROM products p JOIN prices q ON q.product_id = p.id", "8,410", "96", "807"),
        ("DELETE FROM sessions WHERE expires_at < now()", "1,440", "310", "446"),
        (
            "SELECT id FROM jobs WHERE state = 'queued' FOR UPDATE SKIP LOCKED",
            "220,931",
            "1.2",
            "265",
        ),
        ("VACUUM ANALYZE public.events", "24", "9,811", "235"),
    ),
    title="slowest by total time",
    total_rows=37,
)


def feed_sql(step: int, last: bool) -> dict[str, Reading]:
    used = wave(step, 40, 30)
    signups = float(1180 + step * 7)
    worst = 1204.0 if last else wave(step, 600, 500)
    return {
        "pg-conns": Reading(
            used,
            fields={"used_pct": used, "total": round(used * 2), "max_connections": 200},
            facts=(
                ("used", f"{round(used * 2)}/200"),
                ("active", "31"),
                ("idle", f"{round(used * 2) - 40}"),
                ("idle in tx", "9"),
                ("waiting", "2"),
            ),
        ),
        "signups": Reading(
            signups, fields={"signups": signups}, facts=(("signups", f"{signups:,.0f}"),)
        ),
        "slow": Reading(
            worst,
            fields={"max_mean_ms": worst, "rows": 37},
            facts=(("statements", "37"), ("worst mean", f"{worst:,.0f} ms")),
            table=SLOW_TABLE,
        ),
        "slow-replica": Reading(
            None, no_data="pg_stat_statements is not installed (CREATE EXTENSION it)"
        )
        if last
        else Reading(wave(step, 300, 100)),
    }


# --- ecs ----------------------------------------------------------------------------------

ECS_PROBES = [
    {
        "id": "api-svc",
        "title": "ECS api",
        "kind": "ecs",
        "connection": "aws",
        "cluster": "prod",
        "service": "api",
        "value": "running",
        "thresholds": {"below": {"warn": 4, "crit": 3}},
    },
    {
        "id": "worker-svc",
        "title": "ECS worker",
        "kind": "ecs",
        "connection": "aws",
        "cluster": "prod",
        "service": "worker",
    },
]

STOPPED = Table(
    ("task", "stopped", "reason"),
    (
        ("3f9c2a1e", "2m ago", "Essential container in task exited (exit 137: OOMKilled)"),
        ("a81d44b0", "6m ago", "Task failed ELB health checks in (target-group api-tg)"),
        ("0c7e9f12", "11m ago", "Essential container in task exited (exit 1)"),
        ("d2b6e830", "19m ago", "Scaling activity initiated by deployment ecs-svc/81223"),
    ),
    title="stopped tasks",
    total_rows=9,
)


def feed_ecs(step: int, last: bool) -> dict[str, Reading]:
    running = 2.0 if step >= STEPS - 6 else 4.0
    rollout = (("rollout", "IN_PROGRESS"), ("new", "1/4 running"))
    return {
        "api-svc": Reading(
            running,
            fields={"running": running, "desired": 4, "pending": 2, "rollout": "IN_PROGRESS"},
            facts=(
                ("running", f"{running:.0f}/4"),
                ("pending", "2"),
                *rollout,
                ("task def", "api:142"),
            ),
            table=STOPPED,
        ),
        "worker-svc": Reading(
            6.0,
            fields={"running": 6, "desired": 6, "pending": 0, "rollout": "COMPLETED"},
            facts=(("running", "6/6"), ("pending", "0"), ("rollout", "COMPLETED")),
            table=Table(("task", "stopped", "reason"), (), title="stopped tasks"),
        ),
    }


# --- prometheus ---------------------------------------------------------------------------

PROM_PROBES = [
    {
        "id": "p95",
        "title": "Checkout p95",
        "kind": "prometheus",
        "connection": "prom",
        "query": "histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{job="checkout"}[5m])))',
        "unit": "s",
        "thresholds": {"above": {"warn": 0.5, "crit": 1.0}},
    },
    {
        "id": "errors-by-route",
        "title": "5xx by route",
        "kind": "prometheus",
        "connection": "prom",
        "query": 'topk(5, sum by (route) (rate(http_requests_total{code=~"5.."}[5m])))',
        "unit": "/s",
    },
    {
        "id": "alerts",
        "title": "Alerts",
        "kind": "prometheus",
        "connection": "prom",
        "preset": "alerts",
        "thresholds": {"above": {"warn": 0.5, "crit": 1.5}},
    },
]

ROUTES = Table(
    ("route", "code", "rate/s"),
    (
        ('route="/api/checkout/confirm"', "502", "4.2"),
        ('route="/api/cart"', "500", "1.7"),
        ('route="/api/search/suggest"', "503", "0.91"),
        ('route="/api/orders/{id}/invoice.pdf"', "500", "0.3"),
        ('route="/healthz"', "500", "0.02"),
    ),
    title="top 5 series",
    total_rows=11,
)

ALERTS = Table(
    ("alert", "state", "for", "labels"),
    (
        ("HighErrorRate", "firing", "12m", "service=checkout severity=page"),
        ("RedisMemoryHigh", "firing", "3m", "instance=cache-1 severity=ticket"),
        ("DiskWillFillIn4h", "pending", "1m", "instance=db-2 mountpoint=/var"),
    ),
    title="alerts",
)


P95_FIRST = STEPS - 8
"""The p95 panel starts late (an opstui restart): its sparkline is mostly backfill."""


def feed_prometheus(step: int, last: bool, wall: float) -> dict[str, Reading]:
    backfill: tuple[tuple[float, float], ...] = ()
    if step == P95_FIRST:
        # The range query's points: 10 minutes of history before the first live poll.
        backfill = tuple(
            (wall - 600 + 15 * i, round(0.22 + 0.12 * math.sin(i / 5), 3)) for i in range(40)
        )
    p95 = 0.62 if last else round(0.25 + 0.2 * (1 + math.sin(step / 4)) / 2, 3)
    total = wave(step, 5, 4)
    readings = {
        "p95": Reading(
            p95, fields={"value": p95, "series": 1}, backfill=backfill, facts=(("series", "1"),)
        ),
        "errors-by-route": Reading(
            total,
            fields={"value": total, "series": 11},
            facts=(("series", "11"), ("sum", f"{total:g}/s"), ("top", "4.2/s")),
            table=ROUTES,
        ),
        "alerts": Reading(
            2.0,
            fields={"firing": 2, "pending": 1},
            facts=(("firing", "2"), ("pending", "1")),
            table=ALERTS,
        ),
    }
    if step < P95_FIRST:
        del readings["p95"]
    return readings


# --- scrape -------------------------------------------------------------------------------

SCRAPE_PROBES = [
    {
        "id": "rps",
        "title": "Requests/s",
        "kind": "scrape",
        "connection": "app",
        "metric": "http_requests_total",
        "labels": {"handler": "/api"},
        "mode": "rate",
        "unit": "/s",
    },
    {
        "id": "latency-p99",
        "title": "Latency p99",
        "kind": "scrape",
        "connection": "app",
        "metric": "http_request_duration_seconds",
        "mode": "quantile",
        "quantile": 0.99,
        "unit": "s",
        "thresholds": {"above": {"warn": 0.8, "crit": 2.0}},
    },
]


def feed_scrape(step: int, last: bool) -> dict[str, Reading]:
    rate = wave(step, 180, 140)
    p99 = 0.93 if last else round(0.3 + 0.3 * (1 + math.sin(step / 3)) / 2, 3)
    return {
        "rps": Reading(
            rate,
            fields={"value": rate, "series": 3},
            facts=(("series", "3"), ("counter", "18,220,417"), ("resets", "0")),
        ),
        "latency-p99": Reading(
            p99,
            fields={"value": p99, "count": 48211},
            facts=(("quantile", "0.99"), ("buckets", "12"), ("observations", "48,211")),
        ),
    }


# --- building the engines -----------------------------------------------------------------


def kind_config(probes: list[dict[str, Any]]) -> Config:
    kinds = {probe["connection"] for probe in probes}
    return Config.model_validate(
        {
            "title": "Platform",
            "environment": "staging",
            "refresh": "1m",
            "connections": {name: CONNECTIONS[name] for name in kinds},
            "probes": probes,
            "views": [{"name": "Kinds", "rows": [[probe["id"] for probe in probes]]}],
        }
    )


def build(
    probes: list[dict[str, Any]], feed: Callable[[int, bool, float], dict[str, Reading]]
) -> Engine:
    clock = ManualClock()
    engine = Engine(kind_config(probes), clock=clock)
    for step in range(STEPS):
        clock.advance(STEP)
        for probe_id, reading in feed(step, step == STEPS - 1, clock.wall()).items():
            engine.ingest(probe_id, reading)
    engine.tick()
    return engine


def _plain(feed: Feed) -> Callable[[int, bool, float], dict[str, Reading]]:
    return lambda step, last, wall: feed(step, last)


SCENARIOS: dict[str, Callable[[], Engine]] = {
    "queue": lambda: build(QUEUE_PROBES, _plain(feed_queue)),
    "redis_info": lambda: build(REDIS_PROBES, _plain(feed_redis)),
    "sql": lambda: build(SQL_PROBES, _plain(feed_sql)),
    "ecs": lambda: build(ECS_PROBES, _plain(feed_ecs)),
    "prometheus": lambda: build(PROM_PROBES, feed_prometheus),
    "scrape": lambda: build(SCRAPE_PROBES, _plain(feed_scrape)),
}

EXPECTED_STATES = {
    "queue": {"emails": State.CRIT, "celery": State.OK, "rq-all": State.OK},
    "redis_info": {"redis-clients": State.WARN, "redis-memory": State.OK},
    "sql": {"pg-conns": State.OK, "slow-replica": State.NODATA},
    "ecs": {"api-svc": State.CRIT, "worker-svc": State.OK},
    "prometheus": {"p95": State.WARN, "alerts": State.CRIT},
    "scrape": {"rps": State.OK, "latency-p99": State.WARN},
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_scenarios_reach_the_states_they_claim(kind: str) -> None:
    engine = SCENARIOS[kind]()
    for probe_id, state in EXPECTED_STATES[kind].items():
        assert engine.snapshot(probe_id).state is state, probe_id


def test_prometheus_backfill_fills_the_history_before_live_points() -> None:
    engine = SCENARIOS["prometheus"]()
    history = engine.snapshot("p95").history
    assert history is not None
    assert len(history) == 40 + STEPS - P95_FIRST
    assert len(engine.snapshot("alerts").history or ()) == STEPS


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_dashboard_of_kind(snap_compare: SnapCompare, kind: str, size: tuple[int, int]) -> None:
    assert snap_compare(OpstuiApp(SCENARIOS[kind](), poll=False), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("kind", "probe_id"), [("sql", "slow"), ("prometheus", "errors-by-route")])
def test_detail_of_table_kind(
    snap_compare: SnapCompare, kind: str, probe_id: str, size: tuple[int, int]
) -> None:
    async def open_detail(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OpstuiApp)
        app.open_detail(probe_id)
        await pilot.pause()

    app = OpstuiApp(SCENARIOS[kind](), poll=False)
    assert snap_compare(app, run_before=open_detail, terminal_size=size)
