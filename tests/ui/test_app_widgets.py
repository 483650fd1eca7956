"""The pieces of the dashboard on their own: formatting, sparklines, re-flow, header, footer
and a panel squeezed until only its state word is left."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult

from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Component, ProbeError, Reading
from opstui.states import Severity, State
from opstui.ui.dashboard import columns_for, reflow
from opstui.ui.format import (
    fit_parts,
    format_age,
    format_countdown,
    format_value,
    state_label,
    truncate,
)
from opstui.ui.header import HeaderInfo, HeaderModel, footer_items, summary_entries
from opstui.ui.panel import ProbePanel
from opstui.ui.panel_palette import PanelPalette
from opstui.ui.sparkline import GAP, sparkline
from opstui.ui.themes import STATE_DEFAULTS
from tests.ui.conftest import scenario_config


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (42.0, "ms", "42 ms"),
        (42.37, "ms", "42.4 ms"),
        (0.1234, "s", "0.123 s"),
        (3.5, None, "3.5"),
        (12345.0, None, "12,345"),
        (87.0, "%", "87%"),
        (25_000_000.0, None, "25.0M"),
        (float("nan"), None, "NaN"),
        (None, "ms", "—"),
    ],
)
def test_format_value(value: float | None, unit: str | None, text: str) -> None:
    assert format_value(value, unit) == text


@pytest.mark.parametrize(
    ("seconds", "age", "countdown"),
    [
        (0, "0s", "0s"),
        (3.4, "3s", "4s"),
        (59, "59s", "59s"),
        (80, "1m", "1m20s"),
        (120, "2m", "2m"),
        (3900, "1h5m", "1h5m"),
        (7200, "2h", "2h"),
        (93600, "1d2h", "26h"),
    ],
)
def test_format_age_and_countdown(seconds: float, age: str, countdown: str) -> None:
    assert format_age(seconds) == age
    assert format_countdown(seconds) == countdown


def test_state_label_is_glyph_and_word() -> None:
    assert state_label(State.CRIT) == "✖ CRIT"
    assert state_label(State.PENDING) == "△ WARN?"


def test_truncate_and_fit_parts_never_exceed_the_width() -> None:
    assert truncate("connection refused", 10) == "connectio…"
    assert truncate("short", 10) == "short"
    assert truncate("abc", 0) == ""
    assert fit_parts(["⚠ ERR refused", "retry 4s"], 30) == "⚠ ERR refused · retry 4s"
    assert fit_parts(["⚠ ERR refused", "retry 4s"], 20) == "⚠ ERR refused"
    assert fit_parts(["⚠ ERR refused", "retry 4s"], 8) == "⚠ ERR r…"


def test_sparkline_scales_marks_gaps_and_keeps_the_newest() -> None:
    assert sparkline([0.0, 7.0], 2) == "▁█"
    assert sparkline([1.0, None, 8.0], 3) == f"▁{GAP}█"
    assert sparkline([5.0, 5.0], 2) == "▄▄"
    assert sparkline([1.0, 2.0], 5) == "   ▁█"
    assert sparkline(list(range(100)), 4)[-1] == "█"
    assert sparkline([float(v) for v in range(100)], 4) == "▁▃▆█"
    assert sparkline([None, None], 3) == f" {GAP}{GAP}"
    assert sparkline([], 3) == "   "
    assert sparkline([1.0], 0) == ""


def test_columns_follow_the_terminal_width() -> None:
    assert columns_for(78) == 2
    assert columns_for(80) == 2
    assert columns_for(120) == 3
    assert columns_for(160) == 4
    assert columns_for(200) == 5
    assert columns_for(400) == 5
    assert columns_for(30) == 1


def test_reflow_splits_rows_into_balanced_rows() -> None:
    assert reflow([["a", "b", "c", "d", "e", "f"]], 5) == [["a", "b", "c"], ["d", "e", "f"]]
    assert reflow([["a", "b", "c"], ["d"]], 2) == [["a", "b"], ["c"], ["d"]]
    assert reflow([["a", "b"], []], 4) == [["a", "b"]]


def test_summary_lists_states_worst_first() -> None:
    counts = {State.OK: 3, State.ERROR: 1, State.CRIT: 1, State.WARN: 0}
    assert [label for _, label in summary_entries(counts)] == [
        "✖ CRIT 1",
        "⚠ ERR 1",
        "● OK 3",
    ]


def test_footer_drops_least_needed_keys_first() -> None:
    everything = footer_items(200)
    assert [key for key, _ in everything] == ["?", "^p", "1-9", "←↓↑→", "⏎", "e", "p", "R", "q"]
    narrow = [key for key, _ in footer_items(78)]
    assert "q" in narrow and "?" in narrow and "R" in narrow and "⏎" in narrow
    assert len(narrow) < len(everything)
    assert [key for key, _ in footer_items(10)] == ["q"]


class Harness(App[None]):
    """A bare app hosting widgets, with the state colours a theme would give."""

    CSS = "Screen { layout: vertical; }"

    def __init__(self, *widgets: ProbePanel | HeaderInfo) -> None:
        self._widgets = widgets
        super().__init__()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **STATE_DEFAULTS}

    def compose(self) -> ComposeResult:
        yield PanelPalette()  # where panels take their text styles from, as on a dashboard
        yield from self._widgets


def error_engine() -> tuple[Engine, ManualClock]:
    clock = ManualClock()
    engine = Engine(scenario_config(), clock=clock)
    components = (
        *(Component(f"dep{i}", Severity.OK, "up") for i in range(4)),
        Component("db", Severity.CRIT, "down"),
    )
    engine.ingest("auth", Reading(21.0, components=components))
    clock.advance(30)
    engine.ingest("auth", ProbeError("connection refused"))
    return engine, clock


@pytest.mark.parametrize("width", [12, 16, 24, 40, 60])
async def test_a_squeezed_panel_keeps_its_state_word_and_never_overflows(width: int) -> None:
    engine, clock = error_engine()
    panel = ProbePanel(engine.snapshot("auth"), clock)
    panel.styles.width = width
    panel.styles.height = 7
    async with Harness(panel).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = panel.visible_lines()
        inner = panel.content_size.width
        assert lines[0].startswith("⚠ ERR")
        assert all(cell_len(line) <= inner for line in lines)
        assert len(lines) == panel.content_size.height
        # Worst component first, and the count of the rest.
        assert lines[3].startswith("✖ db")
        if width >= 24:
            assert lines[1].endswith("30s ago")
            assert lines[4] == "+4 more"


async def test_panel_repaints_only_when_its_text_changes() -> None:
    engine, clock = error_engine()
    panel = ProbePanel(engine.snapshot("auth"), clock)
    panel.styles.height = 7
    async with Harness(panel).run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        before = list(panel._lines)
        clock.advance(0.3)  # 30.3 s: the age still reads 30s
        panel.tick()
        assert panel._lines == before
        clock.advance(1)
        panel.tick()
        assert panel._lines != before
        assert panel.visible_lines()[1].endswith("31s ago")
        await pilot.pause()
        assert panel.has_class("-error")
        clock.advance(1)
        panel.update_snapshot(engine.ingest("auth", Reading(30.0, verdict=Severity.CRIT)))
        assert panel.has_class("-crit") and not panel.has_class("-error")
        assert panel.visible_lines()[0] == " ✖ CRIT "


async def test_header_fits_80_columns_in_two_lines_at_most() -> None:
    model = HeaderModel(
        title="A very long dashboard title for the payments platform",
        environment="production",
        production=True,
        read_only=True,
        paused=True,
        counts={State.CRIT: 2, State.ERROR: 1, State.NODATA: 1, State.WARN: 3, State.OK: 9},
        views=["Overview", "Queues", "Databases", "Workers"],
        current_view=3,
    )
    info = HeaderInfo(model)
    async with Harness(info).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for width in (40, 71, 80, 120):
            lines = [line.plain for line in info.layout_lines(width)]
            assert 1 <= len(lines) <= 2
            assert all(cell_len(line) <= width for line in lines)
            text = "\n".join(lines)
            assert "✖ CRIT 2" in text
            assert "PRODUCTION" in text
            assert "[RO]🔒" in text and "⏸ PAUSED" in text
            assert "4:Workers" in text or "4/4:Workers" in text
        wide = [line.plain for line in info.layout_lines(250)]
        assert len(wide) == 1
        assert "1:Overview 2:Queues 3:Databases 4:Workers" in wide[0]
