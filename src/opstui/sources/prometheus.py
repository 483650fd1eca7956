"""The `prometheus` probe kind: a PromQL instant query, or the `alerts` / `targets` presets.

prometheus-api-client is synchronous (requests), so every call runs in `asyncio.to_thread`,
with retries off (`Retry(total=0)`: the engine owns retries and backoff) and the probe's
timeout passed on every call, under an asyncio deadline of the same length (requests' timeout
is per socket read, not for the whole answer). The library has no alerts call and its
`get_targets` takes no per-call timeout, so those two presets use the same requests session
directly.

Values are decided as follows. A scalar, or a vector with one series, is the value. A vector
with several series: the value is the highest series' value, `series` counts them, and a
table lists the top `top` with their labels. An empty vector is NO DATA ("query returned no
series"). NaN (0/0: often "no traffic") is kept as the value and shown as NaN; the engine's
thresholds treat a NaN value as no data, so a probe with thresholds goes NO DATA rather than
green, and one without thresholds shows NaN. +Inf/-Inf are ordinary values for thresholds.

On the first successful poll of a query the source also runs a range query over the last
`history x interval` seconds (at most an hour, step = the interval) and hands the points to
the engine in `Reading.backfill`, so a sparkline is not empty after a restart.
"""

from __future__ import annotations

import ast
import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import requests
import urllib3
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from opstui import __version__
from opstui.config.kinds.prometheus import PrometheusConnection, PrometheusProbe
from opstui.config.types import format_duration, redact, reveal
from opstui.sources.base import Client, FieldValue, ProbeError, Reading, Source, Table
from opstui.sources.exposition import label_text

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

T = TypeVar("T")

USER_AGENT = f"opstui/{__version__}"
DEFAULT_INTERVAL = 5.0
"""Backfill step when the probe sets no interval: sources are not told the config's
`refresh`, and 5s is its default."""
BACKFILL_MAX_SECONDS = 3600.0
MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
HINT_CONFIG = "likely a config or credentials problem"
HINT_PROMQL = "try the query in Prometheus' graph page"
HINT_URL = "is url the Prometheus base URL (without /api/v1)?"
_LIB_ERROR = re.compile(r"^HTTP Status Code (\d+) \((b'.*'|b\".*\")\)$", re.DOTALL)
ERROR_TEXT_LIMIT = 100
LAST_ERROR_LIMIT = 80
_GO_REQUEST = re.compile(r'^(?:Get|Post) "[^"]*": ')
"""The scrape URL Go puts before a target's error: the table already shows the instance."""


class PrometheusClient(Client):
    """One connection's PrometheusConnect and its requests session, made on first use (a bad
    `ca_file` is then a poll error on the panel, not a crash at start-up)."""

    def __init__(self, connection: PrometheusConnection) -> None:
        self.connection = connection
        self.url = reveal(connection.url).rstrip("/")
        self.shown_url = redact(connection.url).rstrip("/")
        self._headers = {name: reveal(value) for name, value in connection.headers.items()}
        self._session: requests.Session | None = None
        self._prom: PrometheusConnect | None = None

    def _connect(self) -> PrometheusConnect:
        """Made in the event loop's thread (no I/O happens here), so two calls running in
        worker threads never race to create it."""
        if self._prom is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or CA bundle from the environment
            session.headers["User-Agent"] = USER_AGENT
            session.verify = self.connection.ca_file or self.connection.verify_tls
            if not self.connection.verify_tls:
                # Asked for by the config, and said in describe(): urllib3's per-request
                # warning would only scribble over the terminal UI.
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            self._prom = PrometheusConnect(
                url=self.url,
                headers=self._headers,
                retry=Retry(total=0),
                session=session,
                timeout=self.connection.timeout,  # type: ignore[arg-type]  # float works
            )
            self._session = session
        return self._prom

    async def _call(self, seconds: float, work: Callable[[], T]) -> T:
        """Run a blocking call in a thread, within `seconds`; every failure -> ProbeError."""
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.to_thread(work)
        except ProbeError:
            raise
        except Exception as exc:
            raise probe_error(exc, seconds, self.connection) from exc

    async def query(self, promql: str, seconds: float) -> Any:
        """An instant query's `result` (the library drops `resultType`: query_reading tells
        a scalar from a vector by its shape)."""

        prom = self._connect()

        def run() -> Any:
            return prom.custom_query(promql, timeout=seconds)  # type: ignore[arg-type]

        return await self._call(seconds, run)

    async def query_range(
        self, promql: str, start: datetime, end: datetime, step: float, seconds: float
    ) -> Any:
        prom = self._connect()

        def run() -> Any:
            step_text = f"{step:g}"
            return prom.custom_query_range(
                promql,
                start,
                end,
                step_text,
                timeout=seconds,  # type: ignore[arg-type]
            )

        return await self._call(seconds, run)

    async def api_get(self, path: str, seconds: float, params: Mapping[str, str]) -> Any:
        """GET an API path through the same session; its `data`."""

        self._connect()
        session = self._session
        assert session is not None

        def run() -> Any:
            response = session.get(
                f"{self.url}{path}", headers=self._headers, params=dict(params), timeout=seconds
            )
            if response.status_code != 200:
                raise http_error(response.status_code, response.content)
            return response.json()["data"]

        return await self._call(seconds, run)

    async def aclose(self) -> None:
        prom, self._prom, self._session = self._prom, None, None
        if prom is not None:
            prom.close()


def get_prometheus_client(
    pool: ClientPool, name: str, connection: PrometheusConnection
) -> PrometheusClient:
    client = pool.get(name, lambda: PrometheusClient(connection))
    if not isinstance(client, PrometheusClient):
        raise TypeError(f"connection {name!r} already has a {type(client).__name__}")
    return client


class PrometheusSource(Source):
    """One prometheus probe: a query (value, top series, backfill) or a preset."""

    kind: ClassVar[str] = "prometheus"

    def __init__(
        self,
        probe: PrometheusProbe,
        connection: PrometheusConnection,
        client: PrometheusClient,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self.interval = probe.interval if probe.interval is not None else DEFAULT_INTERVAL
        self._wall = wall
        self._backfilled = not (probe.backfill and probe.query is not None)

    @classmethod
    def build(
        cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool
    ) -> PrometheusSource:
        if not isinstance(probe, PrometheusProbe):
            raise TypeError(f"PrometheusSource needs a prometheus probe, got {probe.kind}")
        if not isinstance(connection, PrometheusConnection):
            raise TypeError(f"needs a prometheus connection, not {connection.kind}")
        return cls(probe, connection, get_prometheus_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        started = time.perf_counter()
        if self.probe.preset == "alerts":
            data = await self.client.api_get("/api/v1/alerts", self.timeout, {})
            return alerts_reading(data, self._wall(), _elapsed_ms(started))
        if self.probe.preset == "targets":
            data = await self.client.api_get("/api/v1/targets", self.timeout, {"state": "active"})
            return targets_reading(data, _elapsed_ms(started))
        assert self.probe.query is not None
        return await self._query(self.probe.query, started)

    async def _query(self, promql: str, started: float) -> Reading:
        if self._backfilled:
            result = await self.client.query(promql, self.timeout)
            return query_reading(result, self.probe.top, _elapsed_ms(started))
        # First poll: the range query runs beside the instant one, under the same deadline.
        # Whole seconds, not later than now: the library rounds, and the engine drops points
        # that are not older than the live one.
        end = datetime.fromtimestamp(math.floor(self._wall()), UTC)
        window, step = backfill_window(self.probe.history, self.interval)
        outcomes: tuple[Any | BaseException, ...] = await asyncio.gather(
            self.client.query(promql, self.timeout),
            self.client.query_range(
                promql, end - timedelta(seconds=window), end, step, self.timeout
            ),
            return_exceptions=True,
        )
        instant, ranged = outcomes
        if isinstance(instant, BaseException):
            raise instant
        reading = query_reading(instant, self.probe.top, _elapsed_ms(started))
        self._backfilled = True
        if isinstance(ranged, ProbeError):
            note = f"no backfill: {ranged.reason}"
            return _replace(reading, notes=(*reading.notes, note))
        if isinstance(ranged, BaseException):
            raise ranged
        try:
            points = backfill_points(ranged)
        except ProbeError as exc:
            return _replace(reading, notes=(*reading.notes, f"no backfill: {exc.reason}"))
        return _replace(reading, backfill=points)

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "url": self.client.shown_url,
            "timeout": format_duration(self.timeout),
            "tls": _tls_words(self.connection),
        }
        if self.probe.query is not None:
            facts["query"] = self.probe.query
            facts["top"] = self.probe.top
        else:
            facts["preset"] = self.probe.preset
        return facts


def _tls_words(connection: PrometheusConnection) -> str:
    if not connection.verify_tls:
        return "not verified"
    if connection.ca_file:
        return f"verified against {connection.ca_file}"
    return "verified"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _replace(reading: Reading, **changes: Any) -> Reading:
    return replace(reading, **changes)


# --- query results -----------------------------------------------------------------------


def parse_number(text: object) -> float:
    """A sample value as Prometheus sends it: a string, possibly NaN, +Inf or -Inf."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ProbeError("bad response: a sample value is not a number")
    try:
        return float(text)
    except ValueError:
        raise ProbeError(f"bad response: value {str(text)[:20]!r} is not a number") from None


def format_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _sort_key(item: tuple[Mapping[str, str], float]) -> tuple[int, float]:
    value = item[1]
    return (1, 0.0) if math.isnan(value) else (0, -value)


def parse_vector(result: Sequence[Any]) -> list[tuple[dict[str, str], float]]:
    """[(labels, value)] from an instant vector's result, highest value first, NaN last."""
    series: list[tuple[dict[str, str], float]] = []
    for item in result:
        if not isinstance(item, dict):
            raise ProbeError("bad response: a vector item is not an object")
        if "values" in item and "value" not in item:
            raise ProbeError(
                "query returns a range vector",
                hint="wrap it in a function such as rate(...[5m]) or last_over_time",
            )
        metric, pair = item.get("metric"), item.get("value")
        if not isinstance(metric, dict) or not isinstance(pair, list) or len(pair) != 2:
            raise ProbeError("bad response: a series has no metric or value")
        labels = {str(k): str(v) for k, v in metric.items()}
        series.append((labels, parse_number(pair[1])))
    series.sort(key=_sort_key)
    return series


def query_reading(result: Any, top: int, latency_ms: float) -> Reading:
    """The Reading for an instant query's result (see the module docstring for the rules)."""
    if not isinstance(result, list):
        raise ProbeError("bad response: no result list")
    if len(result) == 2 and isinstance(result[0], int | float) and not isinstance(result[0], bool):
        # A scalar or a string: [time, "text"]; the library does not say which.
        try:
            value = float(result[1])
        except (TypeError, ValueError):
            raise ProbeError("query returns a string, not a number") from None
        return _value_reading(value, 1, latency_ms, facts=())
    series = parse_vector(result)
    if not series:
        return Reading(
            value=None,
            fields={"series": 0},
            latency_ms=latency_ms,
            no_data="query returned no series",
        )
    labels, value = series[0]
    if len(series) == 1:
        single: tuple[tuple[str, str], ...] = ()
        if labels:
            single = (("series", label_text(_label_set(labels))),)
        return _value_reading(value, 1, latency_ms, facts=single)
    shown = series[:top]
    common = _common_labels([labels for labels, _ in series])
    rows = tuple((label_text(_label_set(lbls), skip=common), format_number(v)) for lbls, v in shown)
    table = Table(
        columns=("series", "value"),
        rows=rows,
        title=f"top {len(shown)} of {len(series)}",
        total_rows=len(series) if len(series) > len(shown) else None,
    )
    facts = (("series", str(len(series))), ("top", rows[0][0]))
    reading = _value_reading(value, len(series), latency_ms, facts=facts)
    return _replace(reading, table=table)


def _value_reading(
    value: float, count: int, latency_ms: float, facts: tuple[tuple[str, str], ...]
) -> Reading:
    notes: tuple[str, ...] = ()
    if math.isnan(value):
        notes = ("NaN (0/0, often no traffic): thresholds count it as no data",)
    fields: dict[str, FieldValue] = {"value": value, "series": count}
    return Reading(
        value=value,
        fields=fields,
        latency_ms=latency_ms,
        facts=(("value", format_number(value)), *facts),
        notes=notes,
    )


def _label_set(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Labels in display order: the metric name first, then by name."""
    return tuple(sorted(labels.items(), key=lambda kv: (kv[0] != "__name__", kv[0])))


def _common_labels(all_labels: Sequence[Mapping[str, str]]) -> set[str]:
    """Label names with the same value in every series: left out of each row. If that would
    leave a row empty (series that differ only by a missing label), nothing is left out."""
    first = all_labels[0]
    common = {k for k, v in first.items() if all(lbls.get(k) == v for lbls in all_labels)}
    if any(not (set(lbls) - common) for lbls in all_labels):
        return set()
    return common


def backfill_window(history: int, interval: float) -> tuple[float, float]:
    """(seconds looked back, step): history x interval, at most an hour, at most 11,000
    points (Prometheus' limit), step never below the interval."""
    window = min(history * interval, BACKFILL_MAX_SECONDS)
    step = max(interval, window / MAX_POINTS)
    return window, step


def backfill_points(result: Any) -> tuple[tuple[float, float], ...]:
    """(unix time, value) per step from a range query, oldest first. With several series the
    point is the highest value at that time, as the live value is the top series'."""
    if not isinstance(result, list):
        raise ProbeError("bad response: no result list")
    best: dict[float, float] = {}
    for item in result:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise ProbeError("bad response: a range series has no values")
        for pair in values:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProbeError("bad response: a range point is not [time, value]")
            at, value = parse_number(pair[0]), parse_number(pair[1])
            known = best.get(at)
            if known is None or math.isnan(known) or value > known:
                best[at] = value
    return tuple(sorted(best.items()))


# --- presets -----------------------------------------------------------------------------


def _since(active_at: object, now: float) -> str:
    if not isinstance(active_at, str):
        return ""
    try:
        when = datetime.fromisoformat(active_at)
    except ValueError:
        return active_at[:25]
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return format_duration(max(0.0, now - when.timestamp()))


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


_STATE_ORDER = {"firing": 0, "pending": 1}


def alerts_reading(data: Any, now: float, latency_ms: float) -> Reading:
    """/api/v1/alerts: value = firing alerts; the table lists them, firing first."""
    alerts = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(alerts, list):
        raise ProbeError("bad response: no alerts list", hint=HINT_URL)
    rows: list[tuple[int, str, str, str, str]] = []
    for alert in alerts:
        if not isinstance(alert, dict):
            raise ProbeError("bad response: an alert is not an object")
        labels = _mapping(alert.get("labels"))
        state = str(alert.get("state", "?"))
        rows.append(
            (
                _STATE_ORDER.get(state, 2),
                str(labels.get("alertname", "?")),
                str(labels.get("severity", "")),
                state,
                _since(alert.get("activeAt"), now),
            )
        )
    rows.sort()
    firing = sum(1 for r in rows if r[3] == "firing")
    pending = sum(1 for r in rows if r[3] == "pending")
    table = Table(
        columns=("alertname", "severity", "state", "since"),
        rows=tuple(r[1:] for r in rows),
        title="alerts",
    )
    return Reading(
        value=float(firing),
        fields={"firing": firing, "pending": pending},
        latency_ms=latency_ms,
        facts=(("firing", str(firing)), ("pending", str(pending))),
        table=table if rows else None,
    )


def targets_reading(data: Any, latency_ms: float) -> Reading:
    """/api/v1/targets: value = down targets; the table lists them with their last error."""
    targets = data.get("activeTargets") if isinstance(data, dict) else None
    if not isinstance(targets, list):
        raise ProbeError("bad response: no activeTargets list", hint=HINT_URL)
    up = down = 0
    rows: list[tuple[str, str, str]] = []
    for target in targets:
        if not isinstance(target, dict):
            raise ProbeError("bad response: a target is not an object")
        health = target.get("health")
        if health == "up":
            up += 1
        elif health == "down":
            down += 1
            labels = _mapping(target.get("labels"))
            error = _GO_REQUEST.sub("", " ".join(str(target.get("lastError", "")).split()))
            if len(error) > LAST_ERROR_LIMIT:
                error = error[: LAST_ERROR_LIMIT - 1] + "…"
            rows.append((str(labels.get("job", "")), str(labels.get("instance", "")), error))
    total = len(targets)
    fields: dict[str, FieldValue] = {"up": up, "down": down, "total": total}
    if total == 0:
        return Reading(
            value=None, fields=fields, latency_ms=latency_ms, no_data="no active targets"
        )
    rows.sort()
    return Reading(
        value=float(down),
        fields=fields,
        latency_ms=latency_ms,
        facts=(("down", str(down)), ("up", f"{up}/{total}")),
        table=Table(columns=("job", "instance", "lastError"), rows=tuple(rows), title="down")
        if rows
        else None,
    )


# --- failures ----------------------------------------------------------------------------


def _error_body(content: bytes) -> tuple[str | None, str | None]:
    """(errorType, error) from an API error body, when it is one."""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(body, dict):
        return None, None
    kind, error = body.get("errorType"), body.get("error")
    return (
        str(kind) if kind is not None else None,
        " ".join(str(error).split()) if error is not None else None,
    )


def _short(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def http_error(status: int, content: bytes) -> ProbeError:
    """A non-200 API answer as a short reason: PromQL errors say what is wrong."""
    kind, error = _error_body(content)
    detail = _short(content.decode("utf-8", "replace"), 300)
    if kind in ("bad_data", "execution") and error:
        message = error.removeprefix('invalid parameter "query": ')
        return ProbeError(f"PromQL: {_short(message)}", hint=HINT_PROMQL, detail=detail)
    if kind == "timeout":
        return ProbeError(
            "query timed out in Prometheus", hint="make the query cheaper", detail=detail
        )
    if status in (401, 403):
        return ProbeError(f"HTTP {status}", hint=HINT_CONFIG, detail=detail)
    if status == 404:
        return ProbeError("HTTP 404", hint=HINT_URL, detail=detail)
    suffix = f": {_short(error, 60)}" if error else ""
    return ProbeError(f"HTTP {status}{suffix}", detail=detail)


def _library_error(exc: PrometheusApiClientException) -> ProbeError | None:
    """The library reports non-200 answers as text: 'HTTP Status Code 400 (b'...')'."""
    match = _LIB_ERROR.match(str(exc))
    if match is None:
        return None
    try:
        content = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        content = b""
    return http_error(int(match.group(1)), content if isinstance(content, bytes) else b"")


def probe_error(exc: BaseException, timeout: float, connection: PrometheusConnection) -> ProbeError:
    """A short reason for a failed call, from requests', the library's or our own errors."""
    detail = _short(" ".join(str(exc).split()) or type(exc).__name__, 300)
    if isinstance(exc, PrometheusApiClientException):
        found = _library_error(exc)
        return found if found is not None else ProbeError("bad response", detail=detail)
    if isinstance(exc, TimeoutError | requests.Timeout):
        return ProbeError(f"timeout after {format_duration(timeout)}", detail=detail)
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            hint = "set ca_file to the CA that signed it" if connection.verify_tls else None
            return ProbeError("TLS: certificate verify failed", hint=hint, detail=detail)
        return ProbeError("TLS: handshake failed", detail=detail)
    if (
        isinstance(exc, OSError)
        and not isinstance(exc, requests.RequestException)
        and connection.ca_file
    ):  # requests checks the CA bundle path when it sends
        return ProbeError("TLS: cannot read ca_file", hint="check the ca_file path", detail=detail)
    if isinstance(exc, requests.ConnectionError):
        return ProbeError(_connection_reason(str(exc)), detail=detail)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return ProbeError("bad URL", detail=detail)
    if isinstance(exc, ValueError | KeyError | TypeError):  # a 200 that is not the API's JSON
        return ProbeError("bad response: not Prometheus API JSON", hint=HINT_URL, detail=detail)
    return ProbeError(f"request failed: {type(exc).__name__}", detail=detail)


def _connection_reason(text: str) -> str:
    lowered = text.lower()
    if "refused" in lowered:
        return "refused"
    if "name or service not known" in lowered or "nameresolution" in lowered:
        return "DNS: cannot resolve host"
    if "reset" in lowered or "aborted" in lowered or "remotedisconnected" in lowered:
        return "connection reset"
    if "unreachable" in lowered:
        return "host unreachable"
    return "cannot connect"
