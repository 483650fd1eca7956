"""A prometheus_client Collector over Engine snapshots.

Gauges are read from `engine.snapshots()` at scrape time, so polling costs nothing extra and
a scrape never sees a half-updated probe. Only the error counter needs history: it counts
ERROR outcomes as they are published, with a bounded set of reasons per probe so a source
that puts variable text in its reasons cannot grow the series (or the memory) for weeks.
Reasons reach a label only through the config's Redactor (the engine already scrubbed them;
this is the exporter's own guard, since a label is scraped by whoever can reach /metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.redaction import NOTHING, Redactor
from opstui.states import State

MAX_REASONS = 20
"""Distinct error reasons kept per probe; later new reasons are counted as "other"."""
OTHER_REASON = "other"


class ErrorCounter:
    """Counts ERROR outcomes per probe and short reason from published snapshots.

    An outcome is an increase of `consecutive_errors` since the last snapshot seen for that
    probe; the engine publishes every finished poll, so each error is seen once.
    """

    def __init__(self, max_reasons: int = MAX_REASONS, redactor: Redactor | None = None) -> None:
        self.max_reasons = max_reasons
        self.redactor = redactor if redactor is not None else NOTHING
        self._seen: dict[str, int] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def observe(self, snapshot: ProbeSnapshot) -> None:
        previous = self._seen.get(snapshot.probe_id, 0)
        current = snapshot.consecutive_errors
        self._seen[snapshot.probe_id] = current
        if current <= previous:
            if current == 0 or current == previous:
                return
            new = current  # a reset we did not see, then new errors
        else:
            new = current - previous
        reasons = self._counts.setdefault(snapshot.probe_id, {})
        reason = self.redactor.scrub(snapshot.error or "unknown")
        if reason not in reasons and len(reasons) >= self.max_reasons:
            reason = OTHER_REASON
        reasons[reason] = reasons.get(reason, 0) + new

    def counts(self) -> dict[str, dict[str, int]]:
        """probe id -> reason -> count (a copy)."""
        return {pid: dict(reasons) for pid, reasons in self._counts.items()}


def _number(value: object) -> float | None:
    """A numeric field as a float (bools as 0/1); None for text."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


class SnapshotCollector(Collector):
    """Exposes every probe of `engine` as opstui_probe_* series; see the module docstring."""

    def __init__(self, engine: Engine, errors: ErrorCounter | None = None) -> None:
        self.engine = engine
        self.errors = errors if errors is not None else ErrorCounter(redactor=engine.redactor)
        self._unsubscribe: Callable[[], None] = engine.subscribe(self.errors.observe)

    def close(self) -> None:
        """Stop counting errors (the engine keeps running)."""
        self._unsubscribe()

    def collect(self) -> Iterator[Metric]:
        snapshots = self.engine.snapshots()
        state = GaugeMetricFamily(
            "opstui_probe_state",
            "1 for the probe's current state, 0 for every other state",
            labels=["probe", "kind", "state"],
        )
        value = GaugeMetricFamily(
            "opstui_probe_value",
            "Numeric fields of the last good reading (field=value is the judged value)",
            labels=["probe", "field"],
        )
        latency = GaugeMetricFamily(
            "opstui_probe_latency_seconds",
            "Latency of the last good reading",
            labels=["probe"],
        )
        success = GaugeMetricFamily(
            "opstui_probe_last_success_timestamp_seconds",
            "Unix time of the last good reading",
            labels=["probe"],
        )
        for snap in snapshots:
            for candidate in State:
                state.add_metric(
                    [snap.probe_id, snap.kind, candidate.value],
                    1.0 if snap.state is candidate else 0.0,
                )
            reading = snap.reading
            if reading is not None:
                if reading.value is not None:
                    value.add_metric([snap.probe_id, "value"], float(reading.value))
                for name, raw in reading.fields.items():
                    number = _number(raw)
                    if number is None or (name == "value" and reading.value is not None):
                        continue
                    value.add_metric([snap.probe_id, name], number)
                if reading.latency_ms is not None:
                    latency.add_metric([snap.probe_id], reading.latency_ms / 1000.0)
            if snap.reading_wall is not None:
                success.add_metric([snap.probe_id], snap.reading_wall)
        errors = CounterMetricFamily(
            "opstui_probe_errors",
            "ERROR outcomes per probe and short reason (at most 20 reasons, then 'other')",
            labels=["probe", "reason"],
        )
        for pid, reasons in self.errors.counts().items():
            for reason, count in reasons.items():
                errors.add_metric([pid, reason], float(count))
        yield from (state, value, latency, success, errors)
