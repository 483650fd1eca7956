"""Finds probe kinds by name through the `opstui.sources` entry-point group.

Third parties add a kind by shipping a Source subclass under that group. Built-in kinds are
registered the same way (pyproject.toml), so there is one lookup path; a module is imported
only when a config uses its kind, which keeps heavy client libraries out of start-up.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from opstui.sources.base import Client, Source

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig

ENTRY_POINT_GROUP = "opstui.sources"

# Built-ins, used when the package metadata is missing (running from a source tree).
_BUILTIN: dict[str, str] = {
    "health": "opstui.sources.health:HealthSource",
    "scrape": "opstui.sources.scrape:ScrapeSource",
    "queue": "opstui.sources.queue:QueueSource",
    "redis_info": "opstui.sources.redis_info:RedisInfoSource",
    "sql": "opstui.sources.sql:SqlSource",
    "ecs": "opstui.sources.ecs:EcsSource",
    "prometheus": "opstui.sources.prometheus:PrometheusSource",
}


class UnknownKind(LookupError):
    """No source is registered for a probe kind."""


@functools.cache
def _entry_point_targets() -> Mapping[str, str]:
    """kind -> "module:Class". Read once per process: each read of the entry points walks
    every installed distribution's metadata (8 ms here), and `check` asks once per probe."""
    targets = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    return targets


def available_kinds() -> list[str]:
    return sorted(_entry_point_targets())


def source_class(kind: str) -> type[Source]:
    """Import and return the Source class for `kind`."""
    target = _entry_point_targets().get(kind)
    if target is None:
        raise UnknownKind(f"no source for kind {kind!r}; known: {', '.join(available_kinds())}")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Source)):
        raise UnknownKind(f"{target} is not an opstui Source")
    return cls


class ClientPool:
    """One client per connection name, created on first use and shared by its probes."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}

    def get(self, name: str, factory: Callable[[], Client]) -> Client:
        client = self._clients.get(name)
        if client is None:
            client = factory()
            self._clients[name] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):  # closing must never stop shutdown
                await client.aclose()


SourceBuilder = Callable[["ProbeConfig", "ConnectionConfig", ClientPool], Source]
AsyncCloser = Callable[[], Awaitable[None]]


def build_source(probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool) -> Source:
    """Instantiate the source for one probe; its class decides how to use the pool."""
    cls = source_class(probe.kind)
    return cls.build(probe, connection, pool)
