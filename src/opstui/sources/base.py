"""The contract between the engine and every probe kind.

A source turns one probe config into readings. It never decides a panel's state: it reports
what it saw (a value, named fields, components, the service's own verdict when the service
states one) or raises ProbeError with a short reason. The engine adds time, thresholds and
freshness. Sources never import Textual.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.states import Severity

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

FieldValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class Component:
    """One dependency or check reported inside a probe's reading (a health check's `checks`)."""

    name: str
    severity: Severity | None
    status: str
    observed: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """Rows a panel lists under its value: queues found by `queue: "*"`, a query's result set,
    a vector's top series, an ECS service's stopped tasks. Cells are already text."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str | None = None
    total_rows: int | None = None
    """How many rows there were before the source cut the table down (None: all shown)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What one successful poll saw.

    `value` is the number drawn in the sparkline and judged by thresholds (a probe's `value`
    key picks it among `fields`). `verdict` is the service's own judgement (a health body's
    status); None when the service states none and only thresholds decide. `no_data` carries
    the reason when the poll worked but found nothing to show (an empty vector, a missing
    key): such a reading is never green.
    """

    value: float | None
    fields: Mapping[str, FieldValue] = field(default_factory=dict)
    latency_ms: float | None = None
    verdict: Severity | None = None
    components: tuple[Component, ...] = ()
    no_data: str | None = None
    notes: tuple[str, ...] = ()
    raw: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    """Label/text pairs the panel shows in order under the value (`waiting 1,204`,
    `clients 812/1000`); `fields` keeps the same figures as numbers for check and thresholds."""
    table: Table | None = None
    backfill: tuple[tuple[float, float], ...] = ()
    """Earlier points (unix time, value), oldest first, that the backend already keeps (a
    Prometheus range query): the engine puts them in an empty history once, so a sparkline is
    never blank after a restart. Readings after the first leave it empty."""


class ProbeError(Exception):
    """A poll that failed. `reason` is short enough for a panel; `hint` says what to check."""

    def __init__(self, reason: str, *, hint: str | None = None, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.detail = detail


class Client(ABC):
    """One connection's client (pool), shared by every probe that names the connection."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release sockets; called once when the engine stops."""


class Source(ABC):
    """A probe kind. One instance per probe; clients come from the engine's ClientPool."""

    kind: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool) -> Source:
        """Make the source for one probe, taking its connection's shared client from `pool`."""

    @abstractmethod
    async def poll(self) -> Reading:
        """Poll once. Must honour the probe's timeout and raise ProbeError on failure."""

    def describe(self) -> Mapping[str, Any]:
        """Static facts shown in the detail screen (target URL, query...). Secrets redacted."""
        return {}

    @classmethod
    def fields(cls, probe: ProbeConfig) -> frozenset[str] | None:
        """The field names a reading of `probe` can have, for `validate` to check templates and
        `until` conditions against; None when they depend on the query (sql, prometheus)."""
        return None
