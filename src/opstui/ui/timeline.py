"""The event timeline screen: state changes and control events, newest first, live.

Events arrive through Timeline.subscribe; a burst (200 probes changing at once) is folded into
one table rebuild, scheduled with call_later, so the table is rebuilt once per burst, not once
per event. Typing in the filter box keeps the rows whose text contains every typed word.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from opstui.engine.events import Event, EventKind
from opstui.engine.scheduler import Engine
from opstui.ui.detail import clock_text
from opstui.ui.incident import write_incident

COLUMNS = ("time", "probe", "change", "message")


def event_row(event: Event) -> tuple[str, str, str, str]:
    """The four cells of one event: HH:MM:SS, probe, `glyph OLD -> NEW`, message."""
    probe = event.probe_id or ""
    if event.old is not None and event.new is not None:
        change = f"{event.new.glyph} {event.old.word} -> {event.new.word}"
    elif event.kind is EventKind.STATE:
        change = "state"
    else:
        change = event.kind.value
    message = event.message
    prefix = f"{probe}: "
    if probe and message.startswith(prefix):
        message = message[len(prefix) :]
    if event.old is not None and event.new is not None:
        # The change column already says `OLD -> NEW`; keep only the cause after it.
        said = f"{event.old.word} -> {event.new.word}"
        if message.startswith(said):
            message = message[len(said) :].strip()
            if message.startswith("(") and message.endswith(")"):
                message = message[1:-1]
    return clock_text(event.wall), probe, change, message


def _matches(row: tuple[str, ...], words: list[str]) -> bool:
    haystack = " ".join(row).lower()
    return all(word in haystack for word in words)


class TimelineScreen(Screen[None]):
    """`TimelineScreen(engine)`: every event of engine.timeline, newest first; escape closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("slash", "focus_filter", "Filter", show=False),
        Binding("x", "export", "Export", show=False),
    ]

    DEFAULT_CSS = """
    TimelineScreen { background: $background; }
    TimelineScreen #timeline-title { height: 1; padding: 0 1; background: $panel;
        text-style: bold; }
    TimelineScreen #timeline-filter { dock: bottom; height: 3; margin: 0 0; }
    TimelineScreen #timeline-empty { padding: 1 2; color: $text-muted; }
    TimelineScreen #timeline-empty.-hidden { display: none; }
    TimelineScreen DataTable { height: 1fr; }
    TimelineScreen DataTable.-hidden { display: none; }
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._unsubscribe: Callable[[], None] | None = None
        self._rebuild_pending = False
        self._filter: list[str] = []
        self._title = Static(id="timeline-title")
        self._empty = Static("No events yet", id="timeline-empty")
        self._table: DataTable[str | Text] = DataTable(
            id="timeline-table", cursor_type="row", zebra_stripes=False
        )
        self._input = Input(
            placeholder="filter: type words (/ to focus, esc to close)", id="timeline-filter"
        )

    def compose(self) -> ComposeResult:
        yield self._title
        yield self._empty
        yield self._table
        yield self._input

    def on_mount(self) -> None:
        for column in COLUMNS:
            self._table.add_column(column, key=column)
        self._unsubscribe = self.engine.timeline.subscribe(self._on_event)
        self._rebuild()
        self._table.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: Event) -> None:
        if self._rebuild_pending or self._unsubscribe is None:
            return
        self._rebuild_pending = True
        self.call_later(self._rebuild)

    def on_input_changed(self, message: Input.Changed) -> None:
        self._filter = message.value.lower().split()
        self._rebuild()

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The rows shown now: filtered, newest first."""
        rows = [event_row(e) for e in reversed(self.engine.timeline.events())]
        if self._filter:
            rows = [row for row in rows if _matches(row, self._filter)]
        return rows

    def _rebuild(self) -> None:
        self._rebuild_pending = False
        events = len(self.engine.timeline)
        rows = self.rows()
        table = self._table
        table.clear()
        table.add_rows(rows)
        title = f"Event timeline · {events} event{'s' if events != 1 else ''}"
        if self._filter:
            title += f" · {len(rows)} shown"
        self._title.update(title)
        self._empty.update("No events yet" if not events else "No event matches the filter")
        self._empty.set_class(bool(rows), "-hidden")
        table.set_class(not rows, "-hidden")

    def action_focus_filter(self) -> None:
        self._input.focus()

    def action_export(self) -> None:
        """`x`: the whole timeline as a markdown incident log, in the current directory and
        on the clipboard (OSC 52, so it works over SSH)."""
        engine = self.engine
        try:
            path, text = write_incident(
                Path.cwd(), engine.config, engine.timeline.events(), engine.clock.wall()
            )
        except OSError as exc:
            self.notify(f"export failed: {exc.strerror or exc}", severity="error", timeout=8)
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"Incident log written to {path} (and copied to the clipboard)", timeout=8)

    def action_close(self) -> None:
        self.dismiss(None)
