"""The history chart: shape, threshold lines, gaps, edge cases and determinism."""

from __future__ import annotations

import math

import plotext
import pytest
from rich.cells import cell_len

from opstui.config.models import Thresholds
from opstui.engine.snapshot import Sample
from opstui.ui.chart import format_ago, render_history_chart, threshold_lines

BOX = set("┌┐└┘─│┤├┼")
ABOVE = Thresholds.model_validate({"above": {"warn": 300, "crit": 1000}, "for": "2m"})


def samples(values: list[float | None], step: float = 5.0, start: float = 1000.0) -> list[Sample]:
    return [Sample(start + i * step, 1.8e9 + i * step, v) for i, v in enumerate(values)]


def chart_rows(text: str) -> list[str]:
    return text.split("\n")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], "No history yet"),
        ([None, None, None], "all 3 polls in the history failed"),
        ([123.0], "One reading so far (123 ms)"),
        ([math.nan, None], "all 2 polls"),
    ],
)
def test_edge_cases_give_a_plain_message(values: list[float | None], expected: str) -> None:
    text = render_history_chart(
        samples(values), width=60, height=12, thresholds=ABOVE, unit="ms", colorless=True
    )
    assert expected in text.plain
    assert "\n" not in text.plain
    assert not BOX & set(text.plain)


def test_too_small_for_a_chart() -> None:
    text = render_history_chart(samples([1.0, 2.0]), width=10, height=3, colorless=True)
    assert "needs at least" in text.plain


def test_chart_fills_the_size_asked_and_labels_thresholds() -> None:
    values: list[float | None] = [100.0, 120, 350, 1100, 900, 200, 150, 130, 120, 110, 100, 90]
    text = render_history_chart(
        samples(values, step=10),
        width=70,
        height=14,
        thresholds=ABOVE,
        unit="ms",
        title="latency",
        colorless=True,
    )
    rows = chart_rows(text.plain)
    assert len(rows) == 14
    assert all(cell_len(row) <= 70 for row in rows)
    assert "latency (ms)" in rows[0]
    warn = next(row for row in rows if "warn > 300 ms" in row)
    crit = next(row for row in rows if "crit > 1,000 ms" in row)
    assert warn.count("─") > 20 and crit.count("─") > 20  # the lines run across the plot
    assert rows.index(crit) < rows.index(warn)  # crit (higher) is drawn above warn
    assert "now" in rows[-1] and "-1m" in rows[-1]


def test_below_band_and_lines_outside_the_data_range_are_shown() -> None:
    thresholds = Thresholds.model_validate({"above": {"crit": 5000}, "below": {"warn": 1}})
    text = render_history_chart(
        samples([10.0, 20, 15, 12]),
        width=60,
        height=12,
        thresholds=thresholds,
        unit=None,
        colorless=True,
    )
    assert "crit > 5,000" in text.plain
    assert "warn < 1" in text.plain


def test_gaps_are_marked_and_break_the_line() -> None:
    with_gaps = samples([100.0, 110, None, None, 120, 130, None, 140], step=30)
    without = samples([100.0, 110, 115, 118, 120, 130, 135, 140], step=30)
    gapped = render_history_chart(with_gaps, width=80, height=12, colorless=True).plain
    clean = render_history_chart(without, width=80, height=12, colorless=True).plain
    assert gapped.count("×") == 3
    assert "×" not in clean


def test_colours_are_ansi_16_and_colorless_has_none() -> None:
    data = samples([100.0, 400, 1200, None, 300])
    coloured = render_history_chart(data, width=60, height=12, thresholds=ABOVE, unit="ms")
    plain = render_history_chart(
        data, width=60, height=12, thresholds=ABOVE, unit="ms", colorless=True
    )
    assert coloured.plain == plain.plain
    assert not plain.spans
    colours = {span.style.color for span in coloured.spans if span.style.color}  # type: ignore[union-attr]
    assert colours
    for colour in colours:
        assert colour.number is not None and colour.number < 16
    assert all(span.style.bgcolor is None for span in coloured.spans)  # type: ignore[union-attr]


def test_rendering_is_deterministic_despite_plotext_global_state() -> None:
    data = samples([100.0, 400, 1200, None, 300, 250])
    first = render_history_chart(data, width=60, height=12, thresholds=ABOVE, unit="ms")
    render_history_chart(samples([1.0, 2.0, 3.0]), width=100, height=30, title="other")
    figure = plotext.figure
    figure.title("leftover")
    figure.draw(figure.signal([0, 1], [5, 6]))
    again = render_history_chart(data, width=60, height=12, thresholds=ABOVE, unit="ms")
    assert again.plain == first.plain
    assert again.spans == first.spans
    assert "leftover" not in again.plain


def test_x_axis_is_seconds_before_now() -> None:
    data = samples([1.0, 2.0, 3.0], step=30)  # 60 s of history
    text = render_history_chart(data, width=60, height=10, now=data[-1].at + 60, colorless=True)
    assert "-2m" in text.plain and "now" in text.plain


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0, "now"), (45, "-45s"), (60, "-1m"), (90, "-1m30s"), (3600, "-1h"), (5400, "-1h30m")],
)
def test_format_ago(seconds: float, label: str) -> None:
    assert format_ago(seconds) == label


def test_threshold_lines_words() -> None:
    lines = threshold_lines(ABOVE, "ms")
    assert [(line.value, line.label, line.crit) for line in lines] == [
        (300, "warn > 300 ms", False),
        (1000, "crit > 1,000 ms", True),
    ]
    assert threshold_lines(None, "ms") == []
