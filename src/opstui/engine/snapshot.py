"""Immutable pictures of probe state that the engine publishes to every consumer.

The TUI, `opstui check` and any exporter read these and nothing else of the engine, so the
engine can run on its own loop and no consumer can disturb it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opstui.sources.base import Reading
from opstui.states import Severity, State


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of history: when (monotonic and wall) and the value, None for a gap."""

    at: float
    wall: float
    value: float | None


class HistoryView(Protocol):
    """Read-only access to a probe's ring buffer; snapshots share it instead of copying it,
    so publishing a snapshot costs O(1) however long the history is."""

    def samples(self, last: int | None = None) -> Sequence[Sample]: ...

    def values(self, last: int | None = None) -> list[float | None]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ProbeSnapshot:
    """Everything a panel needs to draw one probe, as of `at` (monotonic seconds)."""

    probe_id: str
    kind: str
    title: str
    unit: str | None
    state: State
    at: float
    severity: Severity | None = None
    reading: Reading | None = None
    """Last successful reading (kept, dimmed, while the probe errors or goes stale)."""
    reading_at: float | None = None
    reading_wall: float | None = None
    error: str | None = None
    no_data: str | None = None
    """Why the panel says NO DATA: the source's reason, or a judged field that is missing."""
    error_hint: str | None = None
    consecutive_errors: int = 0
    next_poll_at: float | None = None
    pending_fires_at: float | None = None
    """When a pending breach turns into warn/crit, if it lasts."""
    breached: Severity | None = None
    """The band breached while pending (what WARN? will become)."""
    flapping: bool = False
    paused: bool = False
    runbook: str | None = None
    history: HistoryView | None = None

    @property
    def value(self) -> float | None:
        return self.reading.value if self.reading is not None else None

    def age(self, now: float) -> float | None:
        """Seconds since the last good reading, None before the first one."""
        return None if self.reading_at is None else max(0.0, now - self.reading_at)
