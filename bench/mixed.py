"""The mixed profile of bench/poll_engine.py: real redis-server, PostgreSQL and Prometheus.

Started in temp dirs on random loopback ports with the test suite's server helpers
(tests/servers/); nothing touches the machine's shared services.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.postgres import PostgresServer  # noqa: E402
from tests.servers.prometheus import PrometheusServer  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402


@contextlib.contextmanager
def mixed_servers() -> Iterator[dict[str, str]]:
    """redis-server, postgres and prometheus (with its exporter); yields their addresses."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        redis = RedisServer(base / "redis")
        postgres = PostgresServer(base / "postgres")
        prometheus = PrometheusServer(base / "prometheus")
        started: list[Any] = []
        try:
            for server in (redis, postgres, prometheus):
                server.start()
                started.append(server)
            yield {"redis": redis.url, "postgres": postgres.dsn, "prometheus": prometheus.url}
        finally:
            for server in reversed(started):
                close = getattr(server, "close", None)
                (close or server.stop)()


def mixed_config(http_url: str, servers: dict[str, str], probes: int, interval: float) -> Any:
    """`probes` split evenly over health, queue + redis_info, sql and prometheus probes."""
    from opstui.config.models import Config

    quarter = max(1, probes // 4)
    entries: list[dict[str, Any]] = []
    for i in range(quarter):
        entries.append({"id": f"http-{i}", "kind": "health", "connection": "svc",
                        "path": f"/health/{i}"})
        if i % 2:
            entries.append({"id": f"redis-{i}", "kind": "redis_info", "connection": "cache"})
        else:
            entries.append({"id": f"queue-{i}", "kind": "queue", "connection": "cache",
                            "flavor": "bullmq", "queue": f"jobs-{i}"})
        entries.append({"id": f"sql-{i}", "kind": "sql", "connection": "db",
                        "query": "SELECT count(*) FROM pg_stat_activity"})
        entries.append({"id": f"prom-{i}", "kind": "prometheus", "connection": "prom",
                        "query": "up", "backfill": False})
    return Config.model_validate(
        {
            "title": "bench mixed",
            "refresh": interval,
            "connections": {
                "svc": {"kind": "http", "base_url": http_url, "timeout": 2.0,
                        "max_connections": 100},
                "cache": {"kind": "redis", "url": servers["redis"], "timeout": 2.0,
                          "max_connections": 20},
                "db": {"kind": "postgres", "dsn": servers["postgres"], "timeout": 2.0,
                       "pool_max": 5},
                "prom": {"kind": "prometheus", "url": servers["prometheus"], "timeout": 2.0},
            },
            "probes": entries,
        }
    )


async def run_mixed(config: Any, seconds: float) -> tuple[Counter[str], Counter[str], int]:
    """Run the engine; count fresh readings and errors per kind in the measured window."""
    from opstui.engine.scheduler import Engine
    from opstui.engine.snapshot import ProbeSnapshot

    engine = Engine(config)
    readings: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    last_at: dict[str, float | None] = {}
    measuring = False

    def listen(snapshot: ProbeSnapshot) -> None:
        if not measuring:
            last_at[snapshot.probe_id] = snapshot.reading_at
            return
        if snapshot.error is not None and snapshot.state.value == "error":
            errors[snapshot.kind] += 1
        if snapshot.reading_at is not None and snapshot.reading_at != last_at.get(
            snapshot.probe_id
        ):
            readings[snapshot.kind] += 1
            last_at[snapshot.probe_id] = snapshot.reading_at

    engine.subscribe(listen)
    await engine.start()
    try:
        await asyncio.sleep(3.0)  # warm-up: pools open, first spread-out round
        measuring = True
        await asyncio.sleep(seconds)
    finally:
        await engine.stop()
    return readings, errors, len(config.probes)


def kinds_due(config: Any, seconds: float, interval: float) -> Counter[str]:
    return Counter({k: int(n * seconds / interval) for k, n in
                    Counter(p.kind for p in config.probes).items()})


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def timed(coro: Any) -> tuple[Any, float]:
    start_cpu, start = cpu_seconds(), time.monotonic()
    result = asyncio.run(coro)
    return result, (cpu_seconds() - start_cpu) / (time.monotonic() - start)
