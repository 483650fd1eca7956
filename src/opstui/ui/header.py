"""The header (title, environment, worst states, read-only, pause, views, clock) and footer.

The header is one line when everything fits, two at most; what does not fit is dropped in
order of least importance, never clipped mid-word. The clock is a widget of its own so the
once-a-second update repaints eight cells, not the whole line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.geometry import Size
from textual.widget import Widget

from opstui.states import State
from opstui.ui.format import fit_parts, format_age, state_label, truncate

SEPARATOR = " │ "
RO_TEXT = "[RO]🔒"
PAUSED_TEXT = "⏸ PAUSED"
WALL_TEXT = "WALL"


_TIE_ORDER = [
    State.CRIT,
    State.ERROR,
    State.NODATA,
    State.WARN,
    State.STALE,
    State.PENDING,
    State.FLAPPING,
    State.INIT,
    State.OK,
]


@dataclass
class HeaderModel:
    """What the header says; the dashboard fills it from config and snapshots."""

    title: str
    environment: str | None = None
    production: bool = False
    read_only: bool = False
    paused: bool = False
    counts: dict[State, int] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)
    current_view: int = 0
    wall: bool = False
    """Wall mode: a WALL flag (with the rotation period) and the current view always named
    with its place (`2/3:Queues`), readable from across the room without colour."""
    rotate: float = 0.0
    origin: str | None = None
    """`via prometheus host:9090` when the panels are not polled by this process."""
    origin_down: bool = False
    """The origin cannot be read: the flag turns red and says so."""
    stalled: float | None = None
    """Seconds polling has not moved (a poll blocking the engine's loop): no panel can
    change meanwhile, so the header says so in red."""


def origin_text(origin: str, down: bool) -> str:
    """`⇄ via prometheus 10.0.0.5:9090`, or `⇄ via prometheus UNREACHABLE` (the host is in
    the detail screen and the timeline then)."""
    shown = origin.replace("http://", "").replace("https://", "")
    if down:
        words = shown.split(" ")
        shown = " ".join([*words[:-1], "UNREACHABLE"]) if len(words) > 1 else "UNREACHABLE"
    return f"⇄ {shown}"


def stalled_text(seconds: float) -> str:
    """`⚠ POLLING STALLED 12s`."""
    return f"⚠ POLLING STALLED {format_age(seconds)}"


def summary_entries(counts: dict[State, int]) -> list[tuple[State, str]]:
    """`✖ CRIT 1`, `⚠ ERR 1`, `● OK 3`: states present, worst first."""
    present = [state for state, count in counts.items() if count > 0]
    present.sort(key=lambda state: (-state.rank, _TIE_ORDER.index(state)))
    return [(state, f"{state_label(state)} {counts[state]}") for state in present]


class HeaderInfo(Widget):
    """Everything in the header but the clock."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"header--{state.value}" for state in State),
        "header--title",
        "header--env",
        "header--prod",
        "header--flag",
        "header--view",
        "header--view-current",
        "header--sep",
    }

    DEFAULT_CSS = """
    HeaderInfo { width: 1fr; height: auto; text-wrap: nowrap; }
    HeaderInfo > .header--title { text-style: bold; }
    HeaderInfo > .header--env { color: $accent; text-style: bold; }
    HeaderInfo > .header--prod { color: $state-crit; text-style: bold reverse; }
    HeaderInfo > .header--flag { color: $warning; text-style: bold; }
    HeaderInfo > .header--view { color: $text-muted; }
    HeaderInfo > .header--view-current { text-style: bold reverse; }
    HeaderInfo > .header--sep { color: $text-muted; }
    HeaderInfo > .header--crit { color: $state-crit; text-style: bold reverse; }
    """ + "\n".join(
        f"HeaderInfo > .header--{state.value} {{ color: $state-{state.value}; text-style: bold; }}"
        for state in State
        if state is not State.CRIT
    )

    def __init__(self, model: HeaderModel) -> None:
        super().__init__()
        self.model = model
        self._lines: list[Text] = []

    def update_model(self, **changes: object) -> None:
        """Change some fields; repaint (and re-layout if the line count moves) when needed."""
        for name, value in changes.items():
            setattr(self.model, name, value)
        width = self.content_size.width
        if not self.is_mounted or width <= 0:
            return
        lines = self.layout_lines(width)
        if lines == self._lines:
            return
        self.refresh(layout=len(lines) != len(self._lines))
        self._lines = lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.layout_lines(width)) or 1

    def render(self) -> Text:
        self._lines = self.layout_lines(self.content_size.width)
        return Text("\n", no_wrap=True).join(self._lines)

    # --- layout -------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _segments_head(self) -> list[tuple[str, str]]:
        model = self.model
        segments = [(model.title, "header--title")]
        if model.environment:
            if model.production:
                segments.append((f" {model.environment.upper()} ", "header--prod"))
            else:
                segments.append((model.environment, "header--env"))
        return segments

    def _flags(self) -> list[tuple[str, str]]:
        flags = []
        if self.model.read_only:
            flags.append((RO_TEXT, "header--flag"))
        if self.model.paused:
            flags.append((PAUSED_TEXT, "header--flag"))
        if self.model.wall:
            flags.append((wall_text(self.model.rotate), "header--flag"))
        if self.model.origin is not None:
            down = self.model.origin_down
            style = "header--crit" if down else "header--view"
            flags.append((origin_text(self.model.origin, down), style))
        if self.model.stalled is not None:
            flags.append((stalled_text(self.model.stalled), "header--crit"))
        return flags

    def _views_text(self, width: int) -> Text:
        model = self.model
        if len(model.views) <= 1 or width <= 0:
            return Text("")
        names = [f"{index + 1}:{name}" for index, name in enumerate(model.views)]
        text = Text(end="")
        if model.wall or cell_len(" ".join(names)) > width:
            # Not all fit: the current one, with its place among them ("4/6:Workers").
            current = model.current_view
            label = f"{current + 1}/{len(names)}:{model.views[current]}"
            text.append(truncate(label, width), style=self._style("header--view-current"))
            return text
        for index, name in enumerate(names):
            if index:
                text.append(" ")
            style = "header--view-current" if index == model.current_view else "header--view"
            text.append(name, style=self._style(style))
        return text

    def _summary_text(self, width: int) -> Text:
        entries = summary_entries(self.model.counts)
        shown = fit_parts([label for _, label in entries], width)
        text = Text(end="")
        used = 0
        for index, (state, label) in enumerate(entries):
            sep = " · " if index else ""
            if used + cell_len(sep) + cell_len(label) > cell_len(shown):
                break
            if sep:
                text.append(sep, style=self._style("header--sep"))
            text.append(label, style=self._style(f"header--{state.value}"))
            used += cell_len(sep) + cell_len(label)
        if not text.plain and entries:
            state, label = entries[0]
            text.append(truncate(label, width), style=self._style(f"header--{state.value}"))
        return text

    def _join(self, parts: Iterable[Text]) -> Text:
        line = Text(end="")
        for part in parts:
            if not part.plain:
                continue
            if line.plain:
                line.append(SEPARATOR, style=self._style("header--sep"))
            line.append_text(part)
        return line

    def _styled(self, segments: list[tuple[str, str]]) -> list[Text]:
        return [Text(text, style=self._style(style), end="") for text, style in segments]

    def layout_lines(self, width: int) -> list[Text]:
        """One line if everything fits (with room kept for PAUSED), else two."""
        if width <= 0:
            return []
        head = self._styled(self._segments_head())
        flags = self._styled(self._flags())
        summary_full = self._summary_text(10_000)
        views_full = self._views_text(10_000)
        one = self._join([*head, summary_full, *flags, views_full])
        reserve = cell_len(SEPARATOR + PAUSED_TEXT) if not self.model.paused else 0
        if cell_len(one.plain) + reserve <= width:
            return [one]
        # Two lines: who/where + worst states on top; read-only, pause and views below.
        sep = cell_len(SEPARATOR)
        fixed = self._join(head[1:])
        title_room = width - cell_len(fixed.plain) - (sep if fixed.plain else 0)
        title_room = min(title_room, max(12, width // 3))
        title = Text(
            truncate(self.model.title, max(title_room, 8)), style=self._style("header--title")
        )
        top = self._join([title, *head[1:]])
        top.truncate(width)
        flags_len = cell_len(self._join(flags).plain)
        room = width - cell_len(top.plain) - sep
        if room >= 8:
            top = self._join([top, self._summary_text(room)])
            second_parts = flags
        else:
            summary_room = width - flags_len - (sep if flags_len else 0)
            second_parts = [self._summary_text(summary_room), *flags]
        used = cell_len(self._join(second_parts).plain)
        views = self._views_text(width - used - (sep if used else 0))
        bottom = self._join([*second_parts, views])
        bottom.truncate(width)
        return [top, bottom]


def wall_text(rotate: float) -> str:
    """`WALL ⟳30s` (views rotate every 30 s), or `WALL` when they do not rotate."""
    if rotate <= 0:
        return WALL_TEXT
    seconds = f"{rotate:g}s" if rotate < 60 or rotate % 60 else f"{rotate / 60:g}m"
    return f"{WALL_TEXT} ⟳{seconds}"


class HeaderClock(Widget):
    """HH:MM:SS from the engine's clock; ticks once a second through `tick`."""

    DEFAULT_CSS = """
    HeaderClock { width: 9; height: 1; padding-left: 1; color: $text-muted; }
    """

    def __init__(self, wall: Callable[[], float]) -> None:
        super().__init__()
        self._wall = wall
        self._text = self._now_text()

    def _now_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self._wall()))

    def tick(self) -> None:
        text = self._now_text()
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        self._text = self._now_text()
        return Text(self._text, end="")


class DashboardHeader(Horizontal):
    """Info on the left, clock on the right."""

    DEFAULT_CSS = """
    DashboardHeader { height: auto; background: $panel; dock: top; }
    DashboardHeader.-wall HeaderClock { color: $foreground; text-style: bold; }
    """

    def __init__(self, model: HeaderModel, wall: Callable[[], float]) -> None:
        super().__init__()
        self.info = HeaderInfo(model)
        self.clock = HeaderClock(wall)

    def compose(self) -> ComposeResult:
        yield self.info
        yield self.clock


FOOTER_KEYS: list[tuple[str, str, int]] = [
    ("?", "help", 1),
    ("^p", "palette", 6),
    ("1-9", "views", 4),
    ("←↓↑→", "focus", 8),
    ("⏎", "detail", 2),
    ("e", "events", 3),
    ("p", "pause", 5),
    ("R", "refresh", 7),
    ("q", "quit", 0),
]
"""(key, what it does, priority: lower stays longer when the line is short)."""


def footer_items(width: int) -> list[tuple[str, str]]:
    """The keys that fit in `width`, in display order, dropping the least needed first."""
    items = list(FOOTER_KEYS)

    def length(entries: list[tuple[str, str, int]]) -> int:
        words = sum(cell_len(key) + cell_len(label) + 1 for key, label, _ in entries)
        return 1 + words + 2 * max(0, len(entries) - 1)

    while items and length(items) > width:
        items.remove(max(items, key=lambda item: item[2]))
    return [(key, label) for key, label, _ in items]


class KeysBar(Widget):
    """The footer: the main keys, as many as fit."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"keys--key", "keys--label"}
    DEFAULT_CSS = """
    KeysBar { height: 1; dock: bottom; background: $panel; text-wrap: nowrap; }
    KeysBar > .keys--key { color: $accent; text-style: bold; }
    KeysBar > .keys--label { color: $text-muted; }
    """

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keys--key", partial=True)
        label_style = self.get_component_rich_style("keys--label", partial=True)
        text = Text(" ", end="")
        for index, (key, label) in enumerate(footer_items(self.content_size.width)):
            if index:
                text.append("  ")
            text.append(key, style=key_style)
            text.append(f" {label}", style=label_style)
        return text
