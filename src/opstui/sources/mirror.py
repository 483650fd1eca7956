"""Reads `opstui export` series back out of Prometheus, for the Prometheus-backed view.

One instant query fetches every opstui_probe_* series of every probe (a frame), so any
number of viewers costs Prometheus one query each per refresh and the backends nothing.
Range queries fill the sparklines at start. Series are grouped by exporter (every label
but the probe's own), so two exporters scraped for redundancy do not mix: each probe is
read from the exporter with the newest good reading.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opstui.config.kinds.prometheus import ViaPrometheus
from opstui.sources.base import ProbeError
from opstui.sources.prometheus import PrometheusClient, parse_number
from opstui.states import State

SERIES = (
    "opstui_probe_state",
    "opstui_probe_value",
    "opstui_probe_latency_seconds",
    "opstui_probe_last_success_timestamp_seconds",
    "opstui_probe_errors_total",
)
PROBE_LABELS = frozenset({"__name__", "probe", "kind", "state", "field", "reason"})
"""Labels the exporter sets; every other label (instance, job, env...) names the exporter."""
_STATES = {state.value: state for state in State}
MAX_RANGE_POINTS = 11_000
"""Prometheus refuses range queries of more points than this."""


Origin = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class MirroredProbe:
    """One probe as one exporter last published it."""

    probe_id: str
    origin: Origin
    kind: str | None = None
    state: State | None = None
    values: dict[str, float] = field(default_factory=dict)
    latency_s: float | None = None
    last_success: float | None = None
    errors: dict[str, float] = field(default_factory=dict)

    @property
    def origin_text(self) -> str:
        """`instance=10.0.0.5:9464` for the detail screen: where the numbers came from."""
        return ",".join(f"{k}={v}" for k, v in self.origin if k in ("instance", "job")) or "-"


@dataclass(frozen=True, slots=True)
class MirrorFrame:
    """Every probe Prometheus has fresh series for, as of `wall` (unix time)."""

    wall: float
    probes: Mapping[str, MirroredProbe]
    latency_ms: float = 0.0


def selector(name: str, match: str, extra: str = "") -> str:
    """`name{match,extra}`: the view's label matchers on every query."""
    inner = ",".join(part for part in (match.strip().rstrip(","), extra) if part)
    return f"{name}{{{inner}}}" if inner else name


def frame_query(match: str) -> str:
    """The one instant query that returns every opstui_probe_* series."""
    names = "|".join(name.removeprefix("opstui_probe_") for name in SERIES)
    return selector("", match, f'__name__=~"opstui_probe_({names})"')


def _origin(labels: Mapping[str, str]) -> Origin:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in PROBE_LABELS))


def _series(result: Any) -> Iterable[tuple[dict[str, str], float]]:
    if not isinstance(result, list):
        raise ProbeError("bad response from Prometheus: no result list")
    for item in result:
        metric = item.get("metric") if isinstance(item, dict) else None
        pair = item.get("value") if isinstance(item, dict) else None
        if not isinstance(metric, dict) or not isinstance(pair, list) or len(pair) != 2:
            raise ProbeError("bad response from Prometheus: a series has no metric or value")
        yield {str(k): str(v) for k, v in metric.items()}, parse_number(pair[1])


def parse_frame(result: Any, wall: float, latency_ms: float = 0.0) -> MirrorFrame:
    """A frame from the frame query's result: per probe, the exporter whose last good
    reading is newest (ties: the first exporter by label order, so the choice is stable)."""
    by_origin: dict[tuple[str, Origin], MirroredProbe] = {}
    for labels, value in _series(result):
        probe_id = labels.get("probe")
        name = labels.get("__name__", "")
        if not probe_id:
            continue
        origin = _origin(labels)
        probe = by_origin.get((probe_id, origin))
        if probe is None:
            probe = by_origin[(probe_id, origin)] = MirroredProbe(probe_id, origin)
        if name == "opstui_probe_state":
            state = _STATES.get(labels.get("state", ""))
            probe.kind = labels.get("kind") or probe.kind
            if state is not None and value == 1.0:
                probe.state = state
        elif name == "opstui_probe_value":
            probe.values[labels.get("field", "value")] = value
        elif name == "opstui_probe_latency_seconds":
            probe.latency_s = value
        elif name == "opstui_probe_last_success_timestamp_seconds":
            probe.last_success = value
        elif name == "opstui_probe_errors_total":
            probe.errors[labels.get("reason", "unknown")] = value
    chosen: dict[str, MirroredProbe] = {}
    for (probe_id, _), probe in sorted(by_origin.items(), key=lambda item: item[0][1]):
        if probe.state is None:
            continue  # no state series: this exporter does not (or no longer) poll it
        best = chosen.get(probe_id)
        if best is None or (probe.last_success or -math.inf) > (best.last_success or -math.inf):
            chosen[probe_id] = probe
    return MirrorFrame(wall=wall, probes=chosen, latency_ms=latency_ms)


def parse_history(result: Any) -> dict[tuple[str, Origin], list[tuple[float, float]]]:
    """(probe, exporter) -> [(unix time, value)] from a range query of the value series."""
    if not isinstance(result, list):
        raise ProbeError("bad response from Prometheus: no result list")
    history: dict[tuple[str, Origin], list[tuple[float, float]]] = {}
    for item in result:
        metric = item.get("metric") if isinstance(item, dict) else None
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(metric, dict) or not isinstance(values, list):
            raise ProbeError("bad response from Prometheus: a range series has no values")
        labels = {str(k): str(v) for k, v in metric.items()}
        probe_id = labels.get("probe")
        if not probe_id:
            continue
        points = [(parse_number(p[0]), parse_number(p[1])) for p in values if len(p) == 2]
        history[(probe_id, _origin(labels))] = points
    return history


def regex_alternatives(words: Sequence[str]) -> str:
    """`a|b\\.c`: probe ids as one RE2 alternation for a `probe=~` matcher."""
    specials = set(".^$*+?()[]{}|\\")
    escaped = ["".join(f"\\\\{c}" if c in specials else c for c in w) for w in words]
    return "|".join(escaped)


class PrometheusMirror:
    """Queries one Prometheus for frames and history; every failure is a ProbeError."""

    def __init__(self, client: PrometheusClient, via: ViaPrometheus) -> None:
        self.client = client
        self.match = via.match
        self.timeout = via.timeout
        self.shown_url = client.shown_url

    async def frame(self) -> MirrorFrame:
        started = time.monotonic()
        result = await self.client.query(frame_query(self.match), self.timeout)
        return parse_frame(result, time.time(), (time.monotonic() - started) * 1000.0)

    async def history(
        self, probe_ids: Sequence[str], seconds: float, step: float
    ) -> dict[tuple[str, Origin], list[tuple[float, float]]]:
        """The judged value of `probe_ids` over the last `seconds`, one point per `step`."""
        if not probe_ids:
            return {}
        step = max(step, seconds / MAX_RANGE_POINTS, 1.0)
        end = time.time()
        extra = f'field="value",probe=~"{regex_alternatives(probe_ids)}"'
        result = await self.client.query_range(
            selector("opstui_probe_value", self.match, extra),
            datetime.fromtimestamp(end - seconds, UTC),
            datetime.fromtimestamp(end, UTC),
            step,
            self.timeout,
        )
        return parse_history(result)
