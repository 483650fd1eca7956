"""The dashboard: one grid of panels per view, 1-9 to switch, arrows/hjkl to move focus.

A view's rows come from the config; each row is re-flowed to the terminal width (2 panels
per row at 80 columns, up to 5 at 200) and panels grow to fill the height, scrolling when
there are more rows than fit. Snapshots are routed to panels through references kept here,
never through DOM queries, so they land safely even while a modal screen is on top.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from opstui.config.layout import effective_views
from opstui.config.models import View
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.states import State
from opstui.ui.header import DashboardHeader, HeaderModel, KeysBar
from opstui.ui.panel import MIN_HEIGHT, ProbePanel
from opstui.ui.panel_palette import PanelPalette
from opstui.ui.wall import WallOptions, next_view

PANEL_WIDTH = 40
"""Columns per panel the re-flow aims at: 2 per row at 80 columns, 4 at 160, 5 at 200."""
MAX_COLUMNS = 5
EMPTY_TEXT = "No probes to show: add some under `probes:` in the config (see `opstui schema`)."


def columns_for(width: int) -> int:
    """Panels per row for a grid `width` cells wide (a production frame takes 2)."""
    return max(1, min(MAX_COLUMNS, (width + 4) // PANEL_WIDTH))


def reflow(rows: list[list[str]], columns: int) -> list[list[str]]:
    """Split each configured row into balanced rows of at most `columns` panels."""
    result: list[list[str]] = []
    for row in rows:
        if not row:
            continue
        chunks = math.ceil(len(row) / columns)
        base, extra = divmod(len(row), chunks)
        start = 0
        for index in range(chunks):
            size = base + (1 if index < extra else 0)
            result.append(row[start : start + size])
            start += size
    return result


class PanelRow(Horizontal):
    DEFAULT_CSS = """
    PanelRow { height: 6; width: 1fr; }
    """


class ViewGrid(VerticalScroll, can_focus=False, inherit_bindings=False):
    """The panels of one view; it owns their layout, the screen owns the data."""

    DEFAULT_CSS = """
    ViewGrid { height: 1fr; width: 1fr; scrollbar-size-vertical: 1; }
    """

    def __init__(
        self, view: View, engine: Engine, palette: PanelPalette, *, wall: bool = False
    ) -> None:
        super().__init__()
        self.view = view
        self._engine = engine
        self._palette = palette
        self._wall = wall
        self.columns = 0
        self.rows: list[list[ProbePanel]] = []
        self.focused_probe: str | None = None
        self.on_rebuilt: Callable[[ViewGrid], None] | None = None

    def panels(self) -> list[ProbePanel]:
        return [panel for row in self.rows for panel in row]

    def set_live(self, live: bool) -> None:
        """Show or hide this view; hidden panels keep their snapshot but skip drawing."""
        self.display = live
        if live:
            self.update_on_screen()
            return
        for panel in self.panels():
            panel.live = False

    def update_on_screen(self) -> None:
        """Only panels in rows on screen draw. Refreshing a panel scrolled out of view makes
        Textual lay out the whole screen again on the next frame (its full map is rebuilt for
        any refreshed widget it did not draw last time): with 200 panels that was a tenth of
        the TUI's time. A panel coming into view repaints at once from its latest snapshot."""
        if not self.display:
            return
        height = self._panel_height()
        viewport = self.size.height
        top = round(self.scroll_y)
        for index, row in enumerate(self.rows):
            on_screen = viewport <= 0 or (
                index * height < top + viewport and (index + 1) * height > top
            )
            for panel in row:
                if on_screen and not panel.live:
                    panel.live = True
                    panel.repaint_all()
                elif not on_screen:
                    panel.live = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.update_on_screen()

    def _panel_height(self) -> int:
        rows = len(self.rows)
        available = self.size.height
        if rows == 0 or available <= 0:
            return MIN_HEIGHT
        return max(MIN_HEIGHT, available // rows)

    async def rebuild(self, columns: int) -> None:
        """Lay the view out again for `columns` panels per row (on width changes only)."""
        if columns == self.columns and self.rows:
            return
        self.columns = columns
        await self.remove_children()
        self.rows = []
        row_widgets = []
        for ids in reflow(self.view.rows, columns):
            panels = [
                ProbePanel(
                    self._engine.snapshot(pid),
                    self._engine.clock,
                    wall=self._wall,
                    palette=self._palette,
                )
                for pid in ids
            ]
            for panel in panels:
                panel.live = False  # update_on_screen decides, once laid out
            self.rows.append(panels)
            row_widgets.append(PanelRow(*panels))
        height = self._panel_height()
        for row in row_widgets:
            row.styles.height = height
        await self.mount_all(row_widgets)
        self.update_on_screen()
        if self.on_rebuilt is not None:
            self.on_rebuilt(self)

    def on_resize(self, event: events.Resize) -> None:
        height = self._panel_height()
        for child in self.children:
            if child.styles.height is None or child.styles.height.cells != height:
                child.styles.height = height
        self.update_on_screen()

    def locate(self, panel: ProbePanel) -> tuple[int, int] | None:
        for row_index, row in enumerate(self.rows):
            for col_index, candidate in enumerate(row):
                if candidate is panel:
                    return row_index, col_index
        return None

    def neighbour(self, panel: ProbePanel, direction: str) -> ProbePanel | None:
        """The panel left/right in the same row, or up/down nearest in horizontal position."""
        where = self.locate(panel)
        if where is None:
            return None
        row_index, col_index = where
        row = self.rows[row_index]
        if direction == "left":
            return row[col_index - 1] if col_index > 0 else None
        if direction == "right":
            return row[col_index + 1] if col_index + 1 < len(row) else None
        target_row = row_index - 1 if direction == "up" else row_index + 1
        if not 0 <= target_row < len(self.rows):
            return None
        centre = (col_index + 0.5) / len(row)
        candidates = self.rows[target_row]
        best = min(
            range(len(candidates)),
            key=lambda i: (abs((i + 0.5) / len(candidates) - centre), i),
        )
        return candidates[best]


class DashboardScreen(Screen[None]):
    """Views of panels plus header and footer; the app feeds it snapshots and ticks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(n), f"show_view({n - 1})", f"View {n}", show=False) for n in range(1, 10)),
        Binding("left,h", "move('left')", "Focus left", show=False),
        Binding("right,l", "move('right')", "Focus right", show=False),
        Binding("up,k", "move('up')", "Focus up", show=False),
        Binding("down,j", "move('down')", "Focus down", show=False),
        Binding("enter", "open_detail", "Detail", show=False),
    ]

    DEFAULT_CSS = """
    DashboardScreen { layout: vertical; }
    DashboardScreen.-production { border: heavy $state-crit; }
    DashboardScreen > #views { height: 1fr; }
    DashboardScreen #empty { padding: 1 2; color: $text-muted; }
    """

    def __init__(
        self, engine: Engine, *, read_only: bool = False, wall: WallOptions | None = None
    ) -> None:
        super().__init__()
        self.engine = engine
        self.wall = wall
        """Wall mode: no footer, no focus, views rotated by the app through `rotate`."""
        config = engine.config
        self.views: list[View] = effective_views(config)
        self.palette = PanelPalette(wall=wall is not None)
        """The panels' text styles, computed once for all of them (ui/panel_palette.py)."""
        self.grids = [
            ViewGrid(view, engine, self.palette, wall=wall is not None) for view in self.views
        ]
        self._view_probes = [
            frozenset(pid for row in view.rows for pid in row) for view in self.views
        ]
        for grid in self.grids:
            grid.on_rebuilt = self._grid_rebuilt
        self.current = 0
        self._states = {s.probe_id: s.state for s in engine.snapshots()}
        self.header = DashboardHeader(
            HeaderModel(
                title=config.title,
                environment=config.environment,
                production=config.is_production,
                read_only=read_only,
                paused=engine.paused,
                counts=dict(Counter(self._states.values())),
                views=[view.name for view in self.views],
                wall=wall is not None,
                rotate=wall.rotate if wall is not None else 0.0,
                origin=engine.origin,
                origin_down=engine.origin_error is not None,
            ),
            engine.clock.wall,
        )
        self.keys_bar = KeysBar()
        if wall is not None:
            self.add_class("-wall")
            self.header.add_class("-wall")
            self.keys_bar.display = False
        self._panels: dict[str, list[ProbePanel]] = {}
        self.open_detail: Callable[[str], None] | None = None
        if config.shows_production_frame:
            self.add_class("-production")

    def compose(self) -> ComposeResult:
        yield self.palette
        yield self.header
        yield self.keys_bar
        with Container(id="views"):
            yield from self.grids
            if not self.grids:
                yield Static(EMPTY_TEXT, id="empty")

    async def on_mount(self) -> None:
        for index, grid in enumerate(self.grids):
            grid.set_live(index == self.current)
        await self._reflow(self.size.width)
        self._focus_remembered()

    async def on_resize(self, event: events.Resize) -> None:
        await self._reflow(event.size.width)

    async def _reflow(self, width: int) -> None:
        if width <= 0:
            return
        columns = columns_for(width)
        for grid in self.grids:
            await grid.rebuild(columns)

    class Rebuilt(Message):
        """The panels were rebuilt (mount, resize): a good moment to settle memory."""

    def _grid_rebuilt(self, grid: ViewGrid) -> None:
        self.post_message(self.Rebuilt())
        self._panels = {}
        for each in self.grids:
            for panel in each.panels():
                self._panels.setdefault(panel.probe_id, []).append(panel)
        if grid is self.current_grid and grid.focused_probe is not None:
            self.call_after_refresh(self._focus_remembered)

    # --- data in --------------------------------------------------------------------------

    def update_snapshot(self, snapshot: ProbeSnapshot) -> None:
        """Route one snapshot to every panel showing its probe, and the header's counts."""
        for panel in self._panels.get(snapshot.probe_id, ()):
            panel.update_snapshot(snapshot)
        if self._states.get(snapshot.probe_id) is not snapshot.state:
            self._states[snapshot.probe_id] = snapshot.state
            self.header.info.update_model(counts=dict(Counter(self._states.values())))

    def set_paused(self, paused: bool) -> None:
        self.header.info.update_model(paused=paused)

    def tick(self) -> None:
        """Once a second: the clock, and the ages/countdowns of the visible view's panels."""
        self.header.clock.tick()
        info = self.header.info
        down = self.engine.origin_error is not None
        if down is not info.model.origin_down:
            info.update_model(origin_down=down)
        stalled = self.engine.stalled_for()
        if stalled is not None:
            stalled = float(int(stalled))  # whole seconds: one repaint a second at most
        if stalled != info.model.stalled:
            info.update_model(stalled=stalled)
        if self.grids:
            for panel in self.current_grid.panels():
                panel.tick()

    def counts(self) -> dict[State, int]:
        return dict(Counter(self._states.values()))

    # --- navigation -----------------------------------------------------------------------

    @property
    def current_grid(self) -> ViewGrid:
        return self.grids[self.current]

    def focused_panel(self) -> ProbePanel | None:
        focused = self.focused
        return focused if isinstance(focused, ProbePanel) else None

    def _focus_remembered(self) -> None:
        if not self.grids or self.wall is not None:
            return
        grid = self.current_grid
        panels = grid.panels()
        if not panels:
            return
        target = next((p for p in panels if p.probe_id == grid.focused_probe), panels[0])
        self.set_focus(target)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, ProbePanel):
            self.current_grid.focused_probe = event.widget.probe_id

    def action_show_view(self, index: int) -> None:
        if not 0 <= index < len(self.grids) or index == self.current:
            return
        self.grids[self.current].set_live(False)
        self.current = index
        self.grids[index].set_live(True)
        self.header.info.update_model(current_view=index)
        self.call_after_refresh(self._focus_remembered)

    def rotate(self) -> int:
        """Wall mode's timer: show the next view by the rule in ui/wall.py (views are only
        shown and hidden, never rebuilt, so weeks of rotation allocate nothing new)."""
        crit = [pid for pid, state in self._states.items() if state is State.CRIT]
        target = next_view(self.current, self._view_probes, crit)
        self.action_show_view(target)
        return self.current

    def action_move(self, direction: str) -> None:
        panel = self.focused_panel()
        if panel is None:
            self._focus_remembered()
            return
        target = self.current_grid.neighbour(panel, direction)
        if target is not None:
            self.set_focus(target)

    def action_open_detail(self) -> None:
        panel = self.focused_panel()
        if panel is not None and self.open_detail is not None:
            self.open_detail(panel.probe_id)
