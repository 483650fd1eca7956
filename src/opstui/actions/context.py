"""What an executor may use: the config, the shared clients, and the probes' readings.

The TUI's runner reads probes from the running engine (and shares its clients, one per
connection); `opstui run` has no engine, so its ProbeReader polls a probe on demand through
the same sources. Executors see only this protocol, never the engine or the UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from opstui.config.models import Config
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.registry import ClientPool

if TYPE_CHECKING:
    from opstui.actions.base import PreparedStep

ConnectionT = TypeVar("ConnectionT")


class ProbeReader(Protocol):
    def current(self, probe_id: str) -> ProbeSnapshot | None:
        """The latest snapshot of a probe (None before any), without polling."""

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        """A snapshot from a poll that started after this call (a watch step waits on it)."""


@dataclass
class ExecutionContext:
    config: Config
    pool: ClientPool
    probes: ProbeReader
    clock: Clock = field(default_factory=SystemClock)


class StepProblem(Exception):
    """The step cannot be run as configured (no such connection, missing service, bad
    count...): one line, shown as the step's failure."""


def connection_of(
    step: PreparedStep, ctx: ExecutionContext, kind: type[ConnectionT], word: str
) -> tuple[str, ConnectionT]:
    """The step's connection name and config, of the type its executor needs; StepProblem
    ("no redis connection 'jobs'") otherwise."""
    name = step.connection
    connection = ctx.config.connections.get(name) if name else None
    if not isinstance(connection, kind):
        raise StepProblem(f"no {word} connection {name!r}")
    return name or "", connection
