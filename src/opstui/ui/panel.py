"""One probe drawn as one bordered panel: state, value, age, facts, sparkline, table,
components.

Data gets in only through `update_snapshot`; `tick` moves ages and countdowns on. Both work
out the lines the panel would show and repaint only the lines that changed, so a dashboard
of 24 panels at 1 Hz writes a few lines a second, not whole screens. Drawing uses Textual's
line API (`render_line`) with one cached strip per line, so a repaint renders only the lines
that changed rather than the whole panel.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from opstui.engine.clock import Clock
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.base import Component, Reading
from opstui.states import Severity, State
from opstui.ui.format import (
    fit_parts,
    format_age,
    format_countdown,
    format_number,
    format_value,
    severity_glyph,
    state_label,
    truncate,
)
from opstui.ui.panel_palette import PanelPalette
from opstui.ui.sparkline import sparkline
from opstui.ui.table_view import fact_line_count, fact_lines, table_lines

DIMMED_STATES = frozenset({State.ERROR, State.STALE})
"""States whose last value is old news: drawn dimmed, never in the fresh colour."""

MIN_HEIGHT = 6
"""Border, status, value, sparkline and one component line."""

TABLE_RESERVE = 3
"""Lines kept for a table (headers, a row, +N more) before facts take more than one line."""


def _state_css() -> str:
    rules = []
    for state in State:
        var = f"$state-{state.value}"
        rules.append(
            f"ProbePanel.-{state.value} {{ border: round {var}; }}\n"
            f"ProbePanel.-{state.value}:focus {{ border: heavy {var}; }}\n"
            # Wall mode: heavy borders, read from afar (the state word: see PanelPalette).
            f"ProbePanel.-wall.-{state.value} {{ border: heavy {var}; }}"
        )
    return "\n".join(rules)


class ProbePanel(Widget, can_focus=True):
    """A panel for one probe; the dashboard routes that probe's snapshots to it."""

    DEFAULT_CSS = """
    ProbePanel {
        height: 100%;
        width: 1fr;
        min-height: 4;
        padding: 0 1;
        border: round $state-init;
        border-title-color: $foreground;
        border-title-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ProbePanel:focus { border-title-style: bold reverse; background-tint: $foreground 4%; }
    """ + _state_css()

    def __init__(
        self,
        snapshot: ProbeSnapshot,
        clock: Clock,
        *,
        value_name: str | None = None,
        wall: bool = False,
        palette: PanelPalette | None = None,
    ) -> None:
        super().__init__()
        self.wall = wall
        self._palette = palette
        """Where the text styles come from (the dashboard's; else the screen's, found once)."""
        """Wall mode: never focused (no highlight), state word drawn as a reversed block."""
        self._snapshot = snapshot
        self._clock = clock
        self._lines: list[Text] = []
        self._strips: dict[int, Strip] = {}
        self._panel_styles: dict[str, Style] = {}
        self._strips_size: tuple[int, int] = (0, 0)
        self._value_name = value_name
        """The probe's `value` key (`waiting`), printed after a unit-less number."""
        self._body_reading: Reading | None = None
        self._body_key: tuple[object, ...] | None = None
        self._body: tuple[list[Text], list[Text]] = ([], [])
        self.live = True
        """False while the panel is off screen (its view hidden, or scrolled out): snapshots
        are kept, nothing is drawn until it comes back (see ViewGrid.update_on_screen)."""
        self.border_title = snapshot.title
        self.add_class(f"-{snapshot.state.value}")
        if wall:
            self.can_focus = False
            self.add_class("-wall")

    def on_mount(self) -> None:
        if self._value_name is None:
            self._value_name = _configured_value_name(self.app, self.probe_id)

    @property
    def probe_id(self) -> str:
        return self._snapshot.probe_id

    @property
    def value_name(self) -> str | None:
        return self._value_name

    @property
    def snapshot(self) -> ProbeSnapshot:
        return self._snapshot

    def update_snapshot(self, snapshot: ProbeSnapshot) -> None:
        """Take a new snapshot; repaint only what it changes on screen."""
        old = self._snapshot
        self._snapshot = snapshot
        if old.state is not snapshot.state:
            self.remove_class(f"-{old.state.value}")
            self.add_class(f"-{snapshot.state.value}")
        if old.title != snapshot.title:
            self.border_title = snapshot.title
        self._repaint_changed()

    def tick(self) -> None:
        """Called once a second: repaint if an age or countdown shown has moved on."""
        self._repaint_changed()

    def repaint_all(self) -> None:
        """Draw everything again from the latest snapshot (the panel just came on screen)."""
        self._strips.clear()
        self._lines = []
        self._strips_size = (0, 0)
        if self.is_mounted:
            self.refresh()

    def visible_lines(self) -> list[str]:
        """The text the panel shows now, line by line (for tests and the dashboard)."""
        size = self.content_size
        return [line.plain for line in self._build(size.width, size.height)]

    def _repaint_changed(self) -> None:
        if not self.is_mounted or not self.live:
            return
        size = self.content_size
        if size.width <= 0 or size.height <= 0:
            return
        lines = self._build(size.width, size.height)
        old = self._lines
        if lines == old:
            return
        self._lines = lines
        if len(lines) != len(old) or self._strips_size != (size.width, size.height):
            self._strips.clear()
            self.refresh()
            return
        changed = []
        for index, (new, previous) in enumerate(zip(lines, old, strict=True)):
            if new != previous:
                self._strips.pop(index, None)
                changed.append(Region(0, index, size.width, 1))
        self.refresh(*changed)

    def render_line(self, y: int) -> Strip:
        """One line of the panel, from the cache unless the line changed since it was drawn."""
        width, height = self.size
        if (width, height) != self._strips_size:
            self._strips.clear()
            self._strips_size = (width, height)
            self._lines = self._build(width, height)
        strip = self._strips.get(y)
        if strip is None:
            base = self.visual_style.rich_style
            if y < len(self._lines):
                text = self._lines[y]
                console = self.app.console
                # Text.render leaves out the text's own style when it has no spans.
                own = console.get_style(text.style) if text.style else Style.null()
                strip = Strip(text.render(console)).apply_style(own).apply_style(base)
                strip = strip.crop_extend(0, width, base)
            else:
                strip = Strip.blank(width, base)
            self._strips[y] = strip
        return strip

    def notify_style_update(self) -> None:
        """Focus, theme or state class changed: every cached line must be drawn again."""
        super().notify_style_update()
        self._panel_styles.clear()
        self._strips.clear()
        self._strips_size = (0, 0)

    # --- what the panel says ------------------------------------------------------------

    def _style(self, name: str) -> Style:
        # Textual empties its own style cache on every refresh and rebuilds component styles
        # from scratch (new Styles objects each time): at 200 panels polling that garbage
        # drove full GC pauses of 200 ms. Ours lives until the styles really change.
        style = self._panel_styles.get(name)
        if style is None:
            palette = self._palette
            if palette is None:
                palette = self._palette = self.screen.query_one(PanelPalette)
            style = self._panel_styles[name] = palette.style(name)
        return style

    def _build(self, width: int, height: int) -> list[Text]:
        if width <= 0 or height <= 0:
            return []
        snapshot = self._snapshot
        now = self._clock.monotonic()
        status, reason_shown = self._status_line(snapshot, now, width)
        lines = [status]
        if height >= 2:
            lines.append(self._value_line(snapshot, now, width))
        spark = height >= 3
        room = height - len(lines) - (1 if spark else 0)
        upper, lower = self._body_lines(snapshot, width, room, reason_shown)
        lines.extend(upper)
        if spark:
            lines.append(self._spark_line(snapshot, width))
        lines.extend(lower)
        room = height - len(lines)
        if room > 0 and snapshot.reading is not None:
            lines.extend(self._component_lines(snapshot.reading.components, width, room))
        room = height - len(lines)
        if room > 0:
            extras = self._extra_texts(snapshot, width)
            if extras and len(lines) > 3:
                extras.insert(0, "")
            muted = self._style("panel--muted")
            lines.extend(Text(truncate(t, width), style=muted, end="") for t in extras[:room])
        return lines

    def _body_lines(
        self, snapshot: ProbeSnapshot, width: int, room: int, reason_shown: bool
    ) -> tuple[list[Text], list[Text]]:
        """(lines above the sparkline, lines below it): the no-data reason when the status
        line had no room for it and the facts above, the table below. Cached per reading and
        size, so a tick that changes nothing here costs no layout work."""
        reading = snapshot.reading
        if reading is None or room <= 0:
            return [], []
        dim = snapshot.state in DIMMED_STATES
        key = (width, room, reason_shown, dim)
        if reading is self._body_reading and key == self._body_key:
            upper, lower = self._body
            return list(upper), list(lower)
        upper, lower = self._layout_body(reading, width, room, reason_shown, dim)
        self._body_reading = reading
        self._body_key = key
        self._body = (upper, lower)
        return list(upper), list(lower)

    def _layout_body(
        self, reading: Reading, width: int, room: int, reason_shown: bool, dim: bool
    ) -> tuple[list[Text], list[Text]]:
        muted = self._style("panel--dim" if dim else "panel--muted")
        plain = self._style("panel--dim") if dim else Style()
        upper: list[Text] = []
        if reading.no_data and not reason_shown:
            upper.append(Text(truncate(reading.no_data, width), style=muted, end=""))
        left = room - len(upper)
        table = reading.table
        if reading.facts and left > 0:
            wanted = fact_line_count(reading.facts, width)
            cap = left
            if table is not None and left > TABLE_RESERVE:
                cap = max(1, left - TABLE_RESERVE)
            upper.extend(
                fact_lines(
                    reading.facts,
                    width,
                    min(wanted, cap),
                    label_style=muted,
                    value_style=plain,
                    separator_style=muted,
                )
            )
        left = room - len(upper)
        lower: list[Text] = []
        if table is not None and left >= 2:
            lower = table_lines(
                table,
                width,
                left,
                header_style=self._style("panel--dim"),
                row_style=plain,
                more_style=muted,
                title_style=muted,
            )
        return upper, lower

    def _extra_texts(self, snapshot: ProbeSnapshot, width: int) -> list[str]:
        """What a tall panel adds below the components: range, hints, notes, runbook."""
        texts: list[str] = []
        history = snapshot.history
        if history is not None:
            values = [v for v in history.values(last=width) if v is not None]
            if values:
                unit = _unit(snapshot)
                low, high = min(values), max(values)
                mean = sum(values) / len(values)
                texts.append(
                    f"min {format_value(low, None)} · avg {format_value(mean, None)} · "
                    f"max {format_value(high, unit)}"
                )
        if snapshot.state is State.ERROR and snapshot.consecutive_errors > 1:
            texts.append(f"{snapshot.consecutive_errors} errors in a row")
        if snapshot.state is State.STALE and snapshot.error:
            texts.append(snapshot.error)  # why the view has nothing newer (via Prometheus)
        if snapshot.error_hint:
            texts.append(snapshot.error_hint)
        if snapshot.reading is not None:
            texts.extend(snapshot.reading.notes)
        if snapshot.runbook:
            texts.append(f"runbook: {snapshot.runbook}")
        return texts

    def _status_line(self, snapshot: ProbeSnapshot, now: float, width: int) -> tuple[Text, bool]:
        """The state line, and whether it showed a no-data reason in full."""
        state = snapshot.state
        label = state_label(state)
        extras: list[str] = []
        if state is State.PENDING:
            breached = snapshot.breached or Severity.WARN
            label = f"{state.glyph} {breached.value.upper()}?"
            if snapshot.pending_fires_at is not None:
                label += " " + format_countdown(snapshot.pending_fires_at - now)
        elif state is State.ERROR:
            if snapshot.error:
                label += " " + snapshot.error
            if snapshot.paused:
                extras.append("paused")
            elif snapshot.next_poll_at is not None:
                extras.append("retry " + format_countdown(snapshot.next_poll_at - now))
        elif state is State.STALE:
            age = snapshot.age(now)
            if age is not None:
                extras.append(format_age(age) + " ago")
        style = self._style(f"panel--{state.value}")
        if self.wall:
            return self._wall_status_line(state, label, extras, width, style)
        if state is State.CRIT:
            text = f" {label} " if cell_len(label) + 2 <= width else label
            return Text(truncate(text, width), style=style, end=""), True
        core = f"{state.glyph} {state.word}"
        if cell_len(label) > width:
            label = core if cell_len(core) <= width else label
        reason = snapshot.reading.no_data if snapshot.reading is not None else None
        if state is State.NODATA and reason:
            # The reason is the news: cut it with … rather than drop it, when a word fits.
            room = width - cell_len(label) - 3
            if room >= 8:
                text = f"{label} · {truncate(reason, room)}"
                return Text(text, style=style, end=""), truncate(reason, room) == reason
            return Text(truncate(label, width), style=style, end=""), False
        text = fit_parts([label, *extras], width)
        return Text(text, style=style, end=""), True

    def _wall_status_line(
        self, state: State, label: str, extras: list[str], width: int, style: Style
    ) -> tuple[Text, bool]:
        """` ● OK ` as a block of colour, then the extras (age, retry) in plain muted text;
        a no-data reason goes on the next line (the block leaves no room for it)."""
        block = f" {label} " if cell_len(label) + 2 <= width else label
        line = Text(truncate(block, width), style=style, end="")
        room = width - cell_len(line.plain) - 1
        rest = fit_parts(extras, room) if extras and room >= 4 else ""
        if rest:
            line.append(" " + rest, style=self._style("panel--muted"))
        reading = self._snapshot.reading
        reason = reading.no_data if reading is not None else None
        return line, not (state is State.NODATA and reason)

    def _value_line(self, snapshot: ProbeSnapshot, now: float, width: int) -> Text:
        value = value_text(snapshot.value, _unit(snapshot), self._value_name)
        age = snapshot.age(now)
        right = "no reading yet" if age is None else format_age(age) + " ago"
        dim = snapshot.state in DIMMED_STATES
        value_style = self._style("panel--dim" if dim else "panel--value")
        value = truncate(value, width)
        gap = width - cell_len(value) - cell_len(right)
        if gap < 2:
            right = format_age(age) if age is not None else ""
            gap = width - cell_len(value) - cell_len(right)
        if gap < 1 or not right:
            return Text(value, style=value_style, end="")
        return Text.assemble(
            (value, value_style), " " * gap, (right, self._style("panel--muted")), end=""
        )

    def _spark_line(self, snapshot: ProbeSnapshot, width: int) -> Text:
        history = snapshot.history
        values = history.values(last=width) if history is not None else []
        dim = snapshot.state in DIMMED_STATES
        style = self._style("panel--dim" if dim else "panel--spark")
        return Text(sparkline(values, width) if values else "", style=style, end="")

    def _component_lines(
        self, components: tuple[Component, ...], width: int, room: int
    ) -> list[Text]:
        if not components:
            return []
        ordered = sorted(components, key=_component_rank)
        shown = ordered if len(ordered) <= room else ordered[: max(1, room - 1)]
        lines = []
        for component in shown:
            colour = self._style(_severity_class(component.severity))
            status = truncate(component.status, max(1, width // 3))
            name = truncate(component.name, max(1, width - 3 - cell_len(status)))
            line = Text.assemble(
                (severity_glyph(component.severity), colour),
                " ",
                name,
                " ",
                (status, colour),
                end="",
            )
            line.truncate(width)
            lines.append(line)
        hidden = len(ordered) - len(shown)
        if hidden and len(lines) < room:
            more = f"+{hidden} more"
            lines.append(Text(truncate(more, width), style=self._style("panel--muted"), end=""))
        elif hidden:
            # One line only: the worst component, and how many more there are.
            more = f" +{hidden}"
            last = lines[-1]
            if cell_len(last.plain) + cell_len(more) > width:
                last.truncate(max(1, width - cell_len(more)))
                last.rstrip()
            last.append(more, style=self._style("panel--muted"))
        return lines


def value_text(value: float | None, unit: str | None, value_name: str | None) -> str:
    """`1,204 waiting` for a unit-less count named by the probe's `value` key, else
    `format_value` (`42 ms`, `87%`); `—` when there is no value."""
    if value is None or unit or not value_name:
        return format_value(value, unit)
    return f"{format_number(value)} {value_name.replace('_', ' ')}"


def _configured_value_name(app: object, probe_id: str) -> str | None:
    """The `value` key of the probe in the app's engine config, when it names a field."""
    engine = getattr(app, "engine", None)
    config = getattr(engine, "config", None)
    if config is None:
        return None
    try:
        probe = config.probe(probe_id)
    except (KeyError, LookupError, ValueError):
        return None
    name = getattr(probe, "value", None)
    return name if isinstance(name, str) and name else None


def _unit(snapshot: ProbeSnapshot) -> str | None:
    """The unit to print: the probe's own, or ms for a health check (its value is latency)."""
    return snapshot.unit or ("ms" if snapshot.kind == "health" else None)


def _severity_class(severity: Severity | None) -> str:
    return "panel--sev-unknown" if severity is None else f"panel--sev-{severity.value}"


def _component_rank(component: Component) -> int:
    """Worst first: crit, warn, unknown, ok."""
    if component.severity is None:
        return 2
    return {Severity.CRIT: 0, Severity.WARN: 1, Severity.OK: 3}[component.severity]
