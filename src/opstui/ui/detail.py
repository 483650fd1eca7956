"""The panel detail screen: state with countdowns, the history chart, the raw reading.

Everything time-related comes from engine.clock, so a ManualClock gives the same screen every
time. The chart is the expensive part: it is redrawn when the screen is resized and at most
once per CHART_MIN_INTERVAL when new readings arrive, and only if what it shows changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from opstui.config.models import (
    AwsConnection,
    Band,
    ConnectionConfig,
    EcsProbe,
    HealthProbe,
    PostgresConnection,
    ProbeConfig,
    PrometheusProbe,
    QueueProbe,
    RedisInfoProbe,
    ScrapeProbe,
    SqlProbe,
    Thresholds,
)
from opstui.config.types import Secret, format_duration, redact
from opstui.engine.events import EventKind
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.base import Reading
from opstui.sources.base import Table as ReadingTable
from opstui.states import State
from opstui.ui.chart import MIN_HEIGHT, MIN_WIDTH, render_history_chart
from opstui.ui.format import (
    format_age,
    format_countdown,
    format_value,
    severity_glyph,
    state_label,
)
from opstui.ui.panel import value_text
from opstui.ui.table_view import is_numeric_column


def clock_text(wall: float) -> str:
    """HH:MM:SS in local time, the form every opstui screen uses for a moment."""
    return time.strftime("%H:%M:%S", time.localtime(wall))


def _limit_words(band: Band, side: str, unit: str | None) -> list[str]:
    words = []
    if band.warn is not None:
        words.append(("warn", band.warn))
    if band.crit is not None:
        words.append(("crit", band.crit))
    return [f"{name} {side} {format_value(limit, unit)}" for name, limit in words]


def thresholds_in_words(thresholds: Thresholds, unit: str | None) -> str:
    """`warn above 300 ms, crit above 1,000 ms, for 2m` plus hysteresis and the field judged."""
    parts: list[str] = []
    if thresholds.above is not None:
        parts.extend(_limit_words(thresholds.above, "above", unit))
    if thresholds.below is not None:
        parts.extend(_limit_words(thresholds.below, "below", unit))
    text = ", ".join(parts)
    if thresholds.for_ > 0:
        text += f", for {format_duration(thresholds.for_)}"
    else:
        text += ", at once"
    if thresholds.hysteresis > 0:
        text += f"; recovers {thresholds.hysteresis:.0%} inside the limit"
    if thresholds.field is not None:
        text += f"; judged on field {thresholds.field!r}"
    return text


def _url_of(connection: object) -> str | None:
    for name in ("base_url", "url", "dsn"):
        value = getattr(connection, name, None)
        if isinstance(value, str | Secret):
            return redact(value)
    return None


def _join(base: str | None, path: str) -> str:
    return f"{base.rstrip('/')}/{path.lstrip('/')}" if base else path


def describe_probe(
    probe: ProbeConfig, connection: ConnectionConfig | None
) -> list[tuple[str, str]]:
    """What a probe targets, from its config alone, for the detail screen: the connection
    (its URL or DSN, a password shown as ***), then the kind's own keys (queue flavor and
    name, SQL text or preset, cluster/service, PromQL or preset, metric/labels/mode)."""
    rows = [("connection", f"{probe.connection} ({connection.kind if connection else '?'})")]
    url = _url_of(connection) if connection is not None else None
    if isinstance(probe, HealthProbe):
        rows.append(("request", f"{probe.method} {_join(url, probe.path)}"))
        return rows
    if isinstance(probe, ScrapeProbe):
        rows.append(("scrape", f"GET {_join(url, probe.path)}"))
        rows.append(("metric", probe.metric))
        if probe.labels:
            labels = ", ".join(f'{k}="{v}"' for k, v in sorted(probe.labels.items()))
            rows.append(("labels", "{" + labels + "}"))
        mode: str = probe.mode
        if probe.mode == "quantile" and probe.quantile is not None:
            mode = f"quantile {probe.quantile:g}"
        rows.append(("mode", f"{mode} ({probe.aggregate} of matching series)"))
        return rows
    if url is not None:
        name = "dsn" if isinstance(connection, PostgresConnection) else "url"
        rows.append((name, url))
    if isinstance(connection, AwsConnection):
        rows.append(("region", connection.region))
        if connection.endpoint_url is not None:
            rows.append(("endpoint", redact(connection.endpoint_url)))
    if isinstance(probe, QueueProbe):
        rows.append(("flavor", probe.flavor))
        rows.append(("queue", "* (every queue found)" if probe.queue == "*" else probe.queue))
        if probe.prefix is not None:
            rows.append(("prefix", probe.prefix))
        if probe.group is not None:
            rows.append(("group", probe.group))
    elif isinstance(probe, RedisInfoProbe):
        rows.append(("reads", "INFO, CONFIG GET maxmemory/maxclients, SLOWLOG LEN"))
    elif isinstance(probe, SqlProbe):
        if probe.preset is not None:
            rows.append(("preset", probe.preset))
        if probe.query is not None:
            rows.append(("query", probe.query.strip()))
        rows.append(("runs in", f"a read-only transaction; keeps {probe.max_rows} rows"))
    elif isinstance(probe, EcsProbe):
        rows.append(("cluster", probe.cluster))
        rows.append(("service", probe.service))
        rows.append(("stopped tasks", f"last {probe.stopped_tasks} described"))
    elif isinstance(probe, PrometheusProbe):
        if probe.preset is not None:
            what = "firing and pending alerts" if probe.preset == "alerts" else "down targets"
            rows.append(("preset", f"{probe.preset} ({what})"))
        if probe.query is not None:
            rows.append(("promql", probe.query.strip()))
            rows.append(("vector", f"top {probe.top} series shown"))
            rows.append(("backfill", "range query at start" if probe.backfill else "off"))
    value = getattr(probe, "value", None)
    if isinstance(value, str):
        rows.append(("value", value))
    return rows


def _target_of(engine: Engine, probe: ProbeConfig) -> list[tuple[str, str]]:
    """Where the probe points: the source's own describe() when the engine exposes its
    sources, otherwise what the config says (describe_probe)."""
    sources = getattr(engine, "sources", None)
    if isinstance(sources, Mapping) and probe.id in sources:
        described = sources[probe.id].describe()
        if described:
            return [(str(k), str(v)) for k, v in described.items()]
    return describe_probe(probe, engine.config.connections.get(probe.connection))


class DetailScreen(Screen[None]):
    """One probe in full: `DetailScreen(engine, probe_id)`; escape or q closes it."""

    CHART_MIN_INTERVAL: ClassVar[float] = 1.0
    """Seconds between chart redraws caused by new readings (resizes redraw at once)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("R", "refresh_probe", "Refresh now"),
    ]

    DEFAULT_CSS = """
    DetailScreen { background: $background; }
    DetailScreen #detail-head { height: auto; padding: 0 1; background: $panel; }
    DetailScreen #detail-title { text-style: bold; }
    DetailScreen #detail-state { color: $foreground; }
    DetailScreen #detail-state.-ok { color: $state-ok; }
    DetailScreen #detail-state.-warn { color: $state-warn; text-style: bold; }
    DetailScreen #detail-state.-crit { color: $state-crit; text-style: bold reverse; }
    DetailScreen #detail-state.-error { color: $state-error; text-style: bold; }
    DetailScreen #detail-state.-nodata { color: $state-nodata; text-style: bold; }
    DetailScreen #detail-state.-stale { color: $state-stale; }
    DetailScreen #detail-state.-pending { color: $state-pending; }
    DetailScreen #detail-state.-flapping { color: $state-flapping; }
    DetailScreen #detail-state.-init { color: $state-init; }
    DetailScreen #detail-body { padding: 0 1; scrollbar-size-vertical: 1; }
    DetailScreen #detail-chart { height: auto; margin: 1 0 1 0; }
    DetailScreen #detail-reading { height: auto; }
    DetailScreen #detail-keys { dock: bottom; height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, engine: Engine, probe_id: str) -> None:
        super().__init__()
        self.engine = engine
        self.probe_id = probe_id
        self.probe: ProbeConfig = engine.config.probe(probe_id)
        self._snapshot = engine.snapshot(probe_id)
        self._unsubscribe: Callable[[], None] | None = None
        self._chart_timer: Timer | None = None
        self._chart_drawn_at = -1e9
        self._chart_key: tuple[Any, ...] | None = None
        self._state_text: Text | None = None
        self._title = Static(id="detail-title")
        self._state = Static(id="detail-state")
        self._chart = Static(id="detail-chart")
        self._reading = Static(id="detail-reading")

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-head"):
            yield self._title
            yield self._state
        with VerticalScroll(id="detail-body"):
            yield self._chart
            yield self._reading
        yield Static("esc close · R refresh now · ↑↓ scroll", id="detail-keys")

    # --- lifecycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        probe = self.probe
        title = Text(probe.display_title, style="bold")
        title.append(f"  {probe.id} · {probe.kind}", style="not bold")
        self._title.update(title)
        self._unsubscribe = self.engine.subscribe(self._on_snapshot)
        self._snapshot = self.engine.snapshot(self.probe_id)
        self._show_text()
        self.set_interval(1.0, self._update_state_line)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_resize(self, event: events.Resize) -> None:
        self._draw_chart()

    # --- updates -----------------------------------------------------------------------------

    def _on_snapshot(self, snapshot: ProbeSnapshot) -> None:
        if snapshot.probe_id != self.probe_id:
            return
        self._snapshot = snapshot
        self._show_text()
        self._chart_wanted()

    def _show_text(self) -> None:
        self._update_state_line()
        self._reading.update(self._reading_renderable())

    def _chart_wanted(self) -> None:
        """Redraw now, or once the minimum interval since the last redraw has passed.

        The throttle runs on real time on purpose (it bounds CPU, not what is shown); the
        chart's content depends only on the history and engine.clock."""
        if self._chart_timer is not None:
            return
        wait = self.CHART_MIN_INTERVAL - (time.monotonic() - self._chart_drawn_at)
        if wait <= 0:
            self._draw_chart()
        else:
            self._chart_timer = self.set_timer(wait, self._chart_timer_fired)

    def _chart_timer_fired(self) -> None:
        self._chart_timer = None
        self._draw_chart()

    def chart_size(self) -> tuple[int, int]:
        """Chart cells for the current screen: full width, about half the height."""
        width, height = self.size
        chart_width = max(MIN_WIDTH, width - 3)
        chart_height = max(MIN_HEIGHT + 1, min(30, (height - 4) // 2))
        return chart_width, chart_height

    def _draw_chart(self) -> None:
        if not self.is_mounted:
            return
        width, height = self.chart_size()
        history = self._snapshot.history
        samples = list(history.samples()) if history is not None else []
        newest = samples[-1].at if samples else None
        key = (width, height, len(samples), newest)
        if key == self._chart_key:
            return
        self._chart_key = key
        self._chart_drawn_at = time.monotonic()
        thresholds = self.probe.thresholds
        if thresholds is not None and thresholds.field not in (None, _value_name(self.probe)):
            thresholds = None  # judged on another field: its limits are not on this axis
        chart = render_history_chart(
            samples,
            width=width,
            height=height,
            thresholds=thresholds,
            unit=self.probe.unit,
            title=f"history of {_value_name(self.probe)}",
            colorless=self.app.no_color,
            now=self.engine.clock.monotonic(),
        )
        self._chart.update(chart)

    def _update_state_line(self) -> None:
        text = self._state_line(self.engine.clock.monotonic())
        if self._state_text is not None and text == self._state_text:
            return
        self._state_text = text
        self._state.update(text)
        for state in State:
            self._state.set_class(state is self._snapshot.state, f"-{state.value}")

    # --- content -----------------------------------------------------------------------------

    def _state_line(self, now: float) -> Text:
        snap = self._snapshot
        parts = [state_label(snap.state)]
        since = self._since()
        if since is not None:
            parts.append(f"since {clock_text(since[1])} ({format_age(now - since[0])} ago)")
        if snap.state is State.PENDING and snap.pending_fires_at is not None:
            becomes = snap.breached.value.upper() if snap.breached is not None else "WARN"
            parts.append(f"{becomes} in {format_countdown(snap.pending_fires_at - now)}")
        if snap.error is not None:
            parts.append(snap.error)
            if snap.consecutive_errors > 1:
                parts.append(f"{snap.consecutive_errors} errors in a row")
        age = snap.age(now)
        if age is not None:
            parts.append(f"last reading {format_age(age)} ago")
        if snap.flapping and snap.state is not State.FLAPPING:
            parts.append("flapping")
        if snap.paused:
            parts.append("polling paused")
        elif snap.next_poll_at is not None:
            word = "retry" if snap.error is not None else "next poll"
            parts.append(f"{word} in {format_countdown(snap.next_poll_at - now)}")
        return Text(" · ".join(parts))

    def _since(self) -> tuple[float, float] | None:
        """(monotonic, wall) of the event that put the probe in its current state."""
        state = self._snapshot.state
        for event in reversed(self.engine.timeline.events()):
            if event.kind is EventKind.STATE and event.probe_id == self.probe_id:
                return (event.at, event.wall) if event.new is state else None
        return None

    def _reading_renderable(self) -> RenderableType:
        snap = self._snapshot
        probe = self.probe
        unit = probe.unit
        now = self.engine.clock.monotonic()
        parts: list[RenderableType] = []
        split = snap.reading is not None and snap.reading.table is not None
        grid = _new_grid(split)

        def section(name: str) -> None:
            grid.add_row(Text(name, style="bold underline"), "")

        section("Reading")
        reading = snap.reading
        if reading is None:
            grid.add_row("value", "no reading yet")
        else:
            when = ""
            if snap.reading_wall is not None and snap.reading_at is not None:
                ago = format_age(now - snap.reading_at)
                when = f"  at {clock_text(snap.reading_wall)} ({ago} ago)"
            value = value_text(reading.value, unit, _value_key(probe))
            grid.add_row("value", value + when)
            if reading.latency_ms is not None:
                grid.add_row("latency", format_value(reading.latency_ms, "ms"))
            if reading.verdict is not None:
                verdict = f"{severity_glyph(reading.verdict)} {reading.verdict.value}"
                grid.add_row("service says", verdict)
            if reading.no_data is not None:
                grid.add_row("no data", reading.no_data)
            if reading.facts:
                section("Facts")
                for label, text in reading.facts:
                    grid.add_row(label, text)
            if reading.table is not None:
                # The table gets the full width; the two-column list goes on below it.
                heading = Text(_table_heading(reading.table), style="bold underline")
                parts.extend([grid, heading, _full_table(reading.table)])
                grid = _new_grid(split)
            _add_fields(grid, reading, section)
        if snap.error is not None:
            section("Error")
            grid.add_row("reason", f"⚠ {snap.error}")
            if snap.error_hint:
                grid.add_row("hint", snap.error_hint)
            grid.add_row("in a row", str(snap.consecutive_errors))
        section("Target")
        for name, value in _target_of(self.engine, probe):
            grid.add_row(name, value)
        section("Thresholds")
        if probe.thresholds is None:
            grid.add_row("", "none: only the service's own verdict counts")
        else:
            grid.add_row("", thresholds_in_words(probe.thresholds, unit))
        section("Polling")
        config = self.engine.config
        grid.add_row("interval", format_duration(config.interval_of(probe)))
        grid.add_row("timeout", format_duration(config.timeout_of(probe)))
        origin = self.engine.origin
        if origin is not None:
            grid.add_row("read", f"{origin} (polled by opstui export, not by this view)")
            if self.engine.origin_error is not None:
                grid.add_row("", f"⚠ {self.engine.origin_error}")
        if probe.runbook:
            grid.add_row("runbook", probe.runbook)
        parts.append(grid)
        return Group(*parts)

    # --- actions -----------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_refresh_probe(self) -> None:
        self.engine.refresh(self.probe_id)


def _value_name(probe: ProbeConfig) -> str:
    value = getattr(probe, "value", None)
    return value if isinstance(value, str) else "value"


LABEL_WIDTH = 14
"""Cells of the label column, fixed so the lists above and below a table line up."""


def _new_grid(aligned: bool = False) -> Table:
    """The two-column list; `aligned` fixes the label width (when a table splits it)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True, min_width=LABEL_WIDTH if aligned else None)
    grid.add_column(overflow="fold")
    return grid


def _value_key(probe: ProbeConfig) -> str | None:
    value = getattr(probe, "value", None)
    return value if isinstance(value, str) else None


def _table_heading(table: ReadingTable) -> str:
    title = table.title or "Table"
    shown = len(table.rows)
    total = table.total_rows if table.total_rows is not None else shown
    if total > shown:
        return f"{title[:1].upper()}{title[1:]} ({shown} of {total:,} rows)"
    return f"{title[:1].upper()}{title[1:]} ({shown} row{'s' if shown != 1 else ''})"


def _full_table(table: ReadingTable) -> Table:
    """Every row the reading has; the screen's body scrolls, so nothing is cut here but
    cells wider than the screen, which fold."""
    grid = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, pad_edge=False)
    for index, name in enumerate(table.columns):
        numeric = is_numeric_column(table, index)
        grid.add_column(
            name, header_style="dim bold", justify="right" if numeric else "left", overflow="fold"
        )
    for row in table.rows:
        cells = list(row[: len(table.columns)])
        cells += [""] * (len(table.columns) - len(cells))
        grid.add_row(*cells)
    return grid


def _add_fields(grid: Table, reading: Reading, section: Callable[[str], None]) -> None:
    if reading.fields:
        section("Fields")
        for name, value in reading.fields.items():
            grid.add_row(name, str(value))
    if reading.components:
        section("Components")
        for component in reading.components:
            status = f"{severity_glyph(component.severity)} {component.status}"
            if component.observed:
                status += f"  observed {component.observed}"
            grid.add_row(component.name, status)
    if reading.notes:
        section("Notes")
        for note in reading.notes:
            grid.add_row("!", note)
