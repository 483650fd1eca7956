"""What an executor may use: the config, the shared clients, and the probes' readings.

The TUI's runner reads probes from the running engine (and shares its clients, one per
connection); `opstui run` has no engine, so its ProbeReader polls a probe on demand through
the same sources. Executors see only this protocol, never the engine or the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from opstui.config.models import Config
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.registry import ClientPool


class ProbeReader(Protocol):
    def current(self, probe_id: str) -> ProbeSnapshot | None:
        """The latest snapshot of a probe (None before any), without polling."""
        ...

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        """A snapshot from a poll that started after this call (a watch step waits on it)."""
        ...


@dataclass
class ExecutionContext:
    config: Config
    pool: ClientPool
    probes: ProbeReader
    clock: Clock = field(default_factory=SystemClock)
