"""The `scrape` probe kind: read a /metrics page directly, without a Prometheus server.

The page comes through the connection's shared HttpClient (aiohttp directly, one deadline)
and is parsed by exposition.py. Modes:

- `value`: the matching series combined by `aggregate`.
- `rate`: per-second increase between this scrape and the previous one, per series (a counter
  reset counts from zero), then combined. The first scrape has no rate: NO DATA.
- `quantile`: histogram_quantile over the `<metric>_bucket` series summed by `le`. With a
  previous scrape it uses the bucket increases since then (what happened in the window, like
  `rate()` in PromQL); on the first scrape it uses the cumulative buckets (everything since
  the process started). A fact says which. No observations in the window gives NaN, which the
  thresholds treat as no data, as for a Prometheus query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.config.kinds.http import HttpConnection, ScrapeProbe
from opstui.config.types import format_duration
from opstui.sources.base import FieldValue, ProbeError, Reading, Source, Table
from opstui.sources.exposition import (
    ExpositionError,
    LabelSet,
    aggregate,
    bucket_series,
    buckets_by_le,
    histogram_quantile,
    increases,
    label_text,
    parse_exposition,
    rates,
    sample_names,
    select,
)
from opstui.sources.http import HINT_CONFIG, HttpClient, get_http_client

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

MAX_PAGE = 8 * 1024 * 1024  # bytes: large exporters (kube-state-metrics) run to megabytes
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"  # the classic format the parser reads
TABLE_ROWS = 10
HINT_PAGE = "is path a Prometheus /metrics page?"


class ScrapeSource(Source):
    """One scrape probe. Keeps the previous scrape's matched values for rates and deltas."""

    kind: ClassVar[str] = "scrape"

    def __init__(
        self,
        probe: ScrapeProbe,
        connection: HttpConnection,
        client: HttpClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self._clock = clock
        self._previous: tuple[float, dict[LabelSet, float]] | None = None

    @classmethod
    def build(
        cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool
    ) -> ScrapeSource:
        if not isinstance(probe, ScrapeProbe):
            raise TypeError(f"ScrapeSource needs a scrape probe, got {type(probe).__name__}")
        if not isinstance(connection, HttpConnection):
            raise TypeError(f"a scrape probe needs an http connection, got {connection.kind}")
        return cls(probe, connection, get_http_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        response = await self.client.fetch(
            "GET",
            self.probe.path,
            headers={"Accept": ACCEPT},
            time_limit=self.timeout,
            max_body=MAX_PAGE,
        )
        at = self._clock()
        code = response.status_code
        if code in (401, 403, 404):
            raise ProbeError(f"HTTP {code}", hint=HINT_CONFIG)
        if code >= 300:
            raise ProbeError(f"HTTP {code}")
        if response.truncated:
            raise ProbeError(f"bad exposition: page larger than {MAX_PAGE // 2**20} MiB")
        try:
            exposition = parse_exposition(response.body.decode("utf-8", "replace"))
        except ExpositionError as exc:
            raise ProbeError(f"bad exposition: {exc}", hint=HINT_PAGE) from exc
        mode = self.probe.mode
        try:
            if mode == "quantile":
                reading = self._quantile(
                    bucket_series(exposition, self.probe.metric, self.probe.labels), at
                )
            else:
                names = sample_names(exposition, self.probe.metric)
                matched = select(exposition, names, self.probe.labels)
                reading = self._rate(matched, at) if mode == "rate" else self._value(matched)
        except ExpositionError as exc:
            raise ProbeError(f"bad exposition: {exc}", hint=HINT_PAGE) from exc
        return replace(reading, latency_ms=response.latency_ms)

    # --- modes --------------------------------------------------------------------------

    def _wanted(self, suffix: str = "") -> str:
        labels = tuple(sorted(self.probe.labels.items()))
        shown = label_text(labels) if labels else ""
        return f"{self.probe.metric.removesuffix('_bucket')}{suffix}{shown}"

    def _value(self, matched: dict[LabelSet, float]) -> Reading:
        if not matched:
            return _no_data(f"no series {self._wanted()}", 0)
        value = aggregate(list(matched.values()), self.probe.aggregate)
        return _reading(value, len(matched), facts=(), table=_series_table(matched))

    def _rate(self, matched: dict[LabelSet, float], at: float) -> Reading:
        previous, self._previous = self._previous, (at, matched)
        if not matched:
            return _no_data(f"no series {self._wanted()}", 0)
        if previous is None or at <= previous[0]:
            return _no_data("rate needs two scrapes", len(matched))
        window = at - previous[0]
        per_series = rates(previous[1], matched, window)
        if not per_series:
            return _no_data("rate needs two scrapes of the same series", len(matched))
        value = aggregate(list(per_series.values()), self.probe.aggregate)
        return _reading(
            value,
            len(matched),
            facts=(("window", format_duration(window)),),
            window=window,
            table=_series_table(per_series),
        )

    def _quantile(self, series: dict[LabelSet, float], at: float) -> Reading:
        previous, self._previous = self._previous, (at, series)
        if not series:
            return _no_data(f"no histogram series {self._wanted('_bucket')}", 0)
        quantile = self.probe.quantile
        assert quantile is not None  # the config requires it with mode quantile
        groups = len({tuple(kv for kv in labels if kv[0] != "le") for labels in series})
        used: Mapping[LabelSet, float] = series
        window: float | None = None
        if previous is not None and at > previous[0]:
            deltas = increases(previous[1], series)
            if deltas:
                used, window = deltas, at - previous[0]
        buckets = buckets_by_le(used)
        value = histogram_quantile(quantile, buckets)
        observations = buckets[-1][1] if buckets else 0.0
        source = (
            f"bucket deltas over {format_duration(window)}"
            if window is not None
            else "cumulative buckets (first scrape)"
        )
        notes = ("no observations in the window",) if math.isnan(value) else ()
        reading = _reading(
            value,
            groups,
            facts=(("q", f"{quantile:g}"), ("from", source)),
            window=window,
            extra={"observations": observations},
        )
        return replace(reading, notes=notes)

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "request": f"GET {self.client.shown_url(self.probe.path)}",
            "metric": self.probe.metric,
            "labels": dict(self.probe.labels),
            "mode": self.probe.mode,
            "timeout": format_duration(self.timeout),
        }
        if self.probe.mode == "quantile":
            facts["quantile"] = self.probe.quantile
        else:
            facts["aggregate"] = self.probe.aggregate
        return facts


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _no_data(reason: str, series: int) -> Reading:
    return Reading(value=None, fields={"series": series}, no_data=reason)


def _reading(
    value: float,
    series: int,
    *,
    facts: tuple[tuple[str, str], ...],
    window: float | None = None,
    table: Table | None = None,
    extra: Mapping[str, FieldValue] | None = None,
) -> Reading:
    fields: dict[str, FieldValue] = {"value": value, "series": series}
    if window is not None:
        fields["window_s"] = window
    fields.update(extra or {})
    return Reading(
        value=value,
        fields=fields,
        facts=(("value", _format(value)), ("series", str(series)), *facts),
        table=table,
    )


def _series_table(values: Mapping[LabelSet, float]) -> Table | None:
    """The matched series, highest first, when there is more than one."""
    if len(values) < 2:
        return None
    ordered = sorted(values.items(), key=lambda kv: (math.isnan(kv[1]), -_finite(kv[1])))
    rows = tuple((label_text(labels), _format(v)) for labels, v in ordered[:TABLE_ROWS])
    return Table(
        columns=("series", "value"),
        rows=rows,
        total_rows=len(values) if len(values) > TABLE_ROWS else None,
    )


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else value
