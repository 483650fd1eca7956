"""The `redis_info` probe kind: the Redis server itself, in one pipelined round trip.

INFO clients/memory/stats/server, CONFIG GET maxclients/maxmemory and SLOWLOG LEN go out
together. CONFIG is often renamed or denied by ACL on managed Redis: then the limits come from
INFO (Redis 7 reports maxclients and maxmemory there too) and a note says so. Evictions per
second are a delta between polls; a restart (new run_id) or a counter that drops starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.config.kinds.redis import REDIS_INFO_FIELDS, RedisConnection, RedisInfoProbe
from opstui.config.types import format_duration
from opstui.sources.base import FieldValue, Reading, Source
from opstui.sources.redis_client import Command, RedisClient, get_redis_client, redis_error

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

Monotonic = Callable[[], float]

COMMANDS: tuple[Command, ...] = (
    ("INFO", "clients"),
    ("INFO", "memory"),
    ("INFO", "stats"),
    ("INFO", "server"),
    ("CONFIG GET", "maxclients"),
    ("CONFIG GET", "maxmemory"),
    ("SLOWLOG LEN",),
)
_INFO_FIELDS = (
    "connected_clients",
    "blocked_clients",
    "used_memory",
    "evicted_keys",
    "instantaneous_ops_per_sec",
    "rejected_connections",
)


@dataclass(slots=True)
class _Evictions:
    at: float
    evicted: int
    run_id: str


class RedisInfoSource(Source):
    """One redis_info probe over its connection's shared RedisClient."""

    kind: ClassVar[str] = "redis_info"

    @classmethod
    def fields(cls, probe: ProbeConfig) -> frozenset[str] | None:
        return frozenset({*REDIS_INFO_FIELDS, "redis_version", "role"})

    def __init__(
        self,
        probe: RedisInfoProbe,
        connection: RedisConnection,
        client: RedisClient,
        *,
        clock: Monotonic = time.monotonic,
    ) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.clock = clock
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self._last: _Evictions | None = None

    @classmethod
    def build(
        cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool
    ) -> RedisInfoSource:
        if not isinstance(probe, RedisInfoProbe):
            raise TypeError(f"RedisInfoSource needs a redis_info probe, got {type(probe).__name__}")
        if not isinstance(connection, RedisConnection):
            raise TypeError(f"a redis_info probe needs a redis connection, got {connection.kind}")
        return cls(probe, connection, get_redis_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        started = time.perf_counter()
        replies = await self.client.pipeline(COMMANDS, time_limit=self.timeout)
        latency_ms = (time.perf_counter() - started) * 1000.0
        info: dict[str, Any] = {}
        for reply in replies[:4]:
            if isinstance(reply, Exception):  # INFO itself refused: nothing to show
                raise redis_error(reply, self.timeout)
            info.update(reply)
        notes: list[str] = []
        fields: dict[str, FieldValue] = {
            name: _int(info[name]) for name in _INFO_FIELDS if name in info
        }
        config_replies = replies[4:6]
        failed_config = next((r for r in config_replies if isinstance(r, Exception)), None)
        for name, reply in zip(("maxclients", "maxmemory"), config_replies, strict=True):
            raw = reply.get(name) if isinstance(reply, Mapping) else None
            if raw is None:
                raw = info.get(name)
            if raw is not None:
                fields[name] = _int(raw)
        if failed_config is not None:
            notes.append(
                f"CONFIG GET unavailable ({redis_error(failed_config, 0).reason}); limits from INFO"
            )
        slowlog = replies[6]
        if isinstance(slowlog, Exception):
            notes.append(f"SLOWLOG LEN unavailable ({redis_error(slowlog, 0).reason})")
        else:
            fields["slowlog_len"] = int(slowlog)
        connected, maxclients = fields.get("connected_clients"), fields.get("maxclients")
        if isinstance(connected, int) and isinstance(maxclients, int) and maxclients > 0:
            fields["clients_ratio"] = connected / maxclients
        used, maxmemory = fields.get("used_memory"), fields.get("maxmemory")
        if isinstance(used, int) and isinstance(maxmemory, int) and maxmemory > 0:
            fields["memory_ratio"] = used / maxmemory
        evicted = fields.get("evicted_keys")
        if isinstance(evicted, int):
            rate = self._eviction_rate(evicted, str(info.get("run_id", "")))
            if rate is not None:
                fields["evictions_per_s"] = rate
        for name in ("redis_version", "role"):
            if name in info:
                fields[name] = str(info[name])
        value, no_data = _value(fields, self.probe.value)
        return Reading(
            value=value,
            fields=fields,
            latency_ms=latency_ms,
            facts=_facts(fields),
            notes=tuple(notes),
            no_data=no_data,
        )

    def _eviction_rate(self, evicted: int, run_id: str) -> float | None:
        now = self.clock()
        last, self._last = self._last, _Evictions(now, evicted, run_id)
        if last is None or last.run_id != run_id or now <= last.at or evicted < last.evicted:
            return None
        return (evicted - last.evicted) / (now - last.at)

    def describe(self) -> Mapping[str, Any]:
        return {
            "kind": self.kind,
            "redis": self.client.shown_url,
            "commands": "INFO clients/memory/stats/server, CONFIG GET maxclients/maxmemory, "
            "SLOWLOG LEN",
            "timeout": format_duration(self.timeout),
        }


def _int(raw: Any) -> int:
    return int(float(raw))


_WHY_MISSING = {
    "memory_ratio": "maxmemory is 0 (no limit) or unknown",
    "maxmemory": "maxmemory is unknown (CONFIG and INFO silent)",
    "clients_ratio": "maxclients is unknown",
    "maxclients": "maxclients is unknown (CONFIG and INFO silent)",
    "slowlog_len": "SLOWLOG LEN is unavailable",
}


def _value(fields: Mapping[str, FieldValue], name: str) -> tuple[float | None, str | None]:
    raw = fields.get(name)
    if raw is None or isinstance(raw, bool | str):
        return None, _WHY_MISSING.get(name)
    return float(raw), None


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _short(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return f"{n:.0f}"


def _facts(fields: Mapping[str, FieldValue]) -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = []
    connected, maxclients = fields.get("connected_clients"), fields.get("maxclients")
    if isinstance(connected, int):
        limit = f"/{maxclients}" if isinstance(maxclients, int) else ""
        facts.append(("clients", f"{connected}{limit}"))
    blocked = fields.get("blocked_clients")
    if isinstance(blocked, int):
        facts.append(("blocked", f"{blocked}"))
    used, maxmemory = fields.get("used_memory"), fields.get("maxmemory")
    if isinstance(used, int):
        if isinstance(maxmemory, int) and maxmemory > 0:
            facts.append(("memory", f"{_bytes(used)} / {_bytes(maxmemory)}"))
        else:
            facts.append(("memory", f"{_bytes(used)} (no limit)"))
    rate = fields.get("evictions_per_s")
    if isinstance(rate, float):
        facts.append(("evictions", f"{_short(rate) if rate >= 1 else f'{rate:.2g}'}/s"))
    else:
        evicted = fields.get("evicted_keys")
        if isinstance(evicted, int):
            facts.append(("evicted", f"{evicted:,}"))
    ops = fields.get("instantaneous_ops_per_sec")
    if isinstance(ops, int):
        facts.append(("ops", f"{_short(ops)}/s"))
    slowlog = fields.get("slowlog_len")
    if isinstance(slowlog, int):
        facts.append(("slowlog", f"{slowlog}"))
    rejected = fields.get("rejected_connections")
    if isinstance(rejected, int) and rejected > 0:
        facts.append(("rejected", f"{rejected:,}"))
    return tuple(facts)
