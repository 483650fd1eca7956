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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.postgres import PostgresServer  # noqa: E402
from tests.servers.prometheus import PrometheusServer  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402

SERVERS = ("redis", "postgres", "prometheus")
GROUPS = ("health", "redis", "sql", "prometheus")
"""Probe groups: health (HTTP), redis (queue and redis_info alternately), sql, prometheus."""
SQL_QUERY = "SELECT count(*) FROM pg_stat_activity"


@contextlib.contextmanager
def mixed_servers(
    which: Sequence[str] = SERVERS, postgres_settings: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """The servers named in `which` (redis-server, postgres, prometheus with its exporter);
    yields their addresses by name."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        makers: dict[str, Callable[[], Any]] = {
            "redis": lambda: RedisServer(base / "redis"),
            "postgres": lambda: PostgresServer(base / "postgres", settings=postgres_settings),
            "prometheus": lambda: PrometheusServer(base / "prometheus"),
        }
        started: list[Any] = []
        addresses: dict[str, str] = {}
        try:
            for name in which:
                server = makers[name]()
                started.append(server)
                server.start()
                addresses[name] = server.dsn if name == "postgres" else server.url
            yield addresses
        finally:
            for server in reversed(started):
                close = getattr(server, "close", None)
                (close or server.stop)()


def mixed_config_data(http_url: str, servers: dict[str, str], probes: int, interval: float,
                      groups: Sequence[str] = GROUPS) -> dict[str, Any]:
    """A config (as loaded from YAML) of `probes` probes dealt in turn over `groups`."""
    entries: list[dict[str, Any]] = []
    for n in range(probes):
        group, i = groups[n % len(groups)], n // len(groups)
        if group == "health":
            entries.append({"id": f"http-{i}", "kind": "health", "connection": "svc",
                            "path": f"/health/{i}"})
        elif group == "redis" and i % 2:
            entries.append({"id": f"redis-{i}", "kind": "redis_info", "connection": "cache"})
        elif group == "redis":
            entries.append({"id": f"queue-{i}", "kind": "queue", "connection": "cache",
                            "flavor": "bullmq", "queue": f"jobs-{i}"})
        elif group == "sql":
            entries.append({"id": f"sql-{i}", "kind": "sql", "connection": "db",
                            "query": SQL_QUERY})
        elif group == "prometheus":
            entries.append({"id": f"prom-{i}", "kind": "prometheus", "connection": "prom",
                            "query": "up", "backfill": False})
        else:
            raise ValueError(f"unknown probe group {group!r}")
    connections: dict[str, Any] = {
        "svc": {"kind": "http", "base_url": http_url, "timeout": 2.0, "max_connections": 100},
    }
    if "redis" in groups:
        connections["cache"] = {"kind": "redis", "url": servers["redis"], "timeout": 2.0,
                                "max_connections": 20}
    if "sql" in groups:
        connections["db"] = {"kind": "postgres", "dsn": servers["postgres"], "timeout": 2.0,
                             "pool_max": 5}
    if "prometheus" in groups:
        connections["prom"] = {"kind": "prometheus", "url": servers["prometheus"],
                               "timeout": 2.0}
    return {"title": "bench mixed", "refresh": interval, "connections": connections,
            "probes": entries}


def mixed_config(http_url: str, servers: dict[str, str], probes: int, interval: float,
                 groups: Sequence[str] = GROUPS) -> Any:
    """`probes` split evenly over health, queue + redis_info, sql and prometheus probes."""
    from opstui.config.models import Config

    return Config.model_validate(mixed_config_data(http_url, servers, probes, interval, groups))


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
