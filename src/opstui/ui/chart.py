"""The detail screen's history chart: plotext drawn to a string, then turned into rich Text.

plotext keeps one global figure; it is cleared and fully configured on every call, and the
call runs synchronously on the UI thread, so nothing leaks from one chart into the next and
the same samples always give the same picture. Only the 16 ANSI colours are used, so the
chart reads the same under every theme (including the 16-colour bastion one). plotext is
imported lazily: only the detail screen needs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from opstui.config.models import Thresholds
from opstui.engine.snapshot import Sample
from opstui.ui.format import format_value

MIN_WIDTH = 24
MIN_HEIGHT = 5
_LINE_COLOUR = "cyan"
_GAP_COLOUR = "red"
_WARN_COLOUR = "yellow"
_CRIT_COLOUR = "red"
_BACKGROUND = re.compile(r"\x1b\[(?:48;5;\d+|48;2;\d+;\d+;\d+|4[0-7]|10[0-7])m")


@dataclass(frozen=True, slots=True)
class ThresholdLine:
    """One horizontal line: a band's limit, with the words drawn on it."""

    value: float
    label: str
    crit: bool


def threshold_lines(thresholds: Thresholds | None, unit: str | None) -> list[ThresholdLine]:
    """The warn and crit limits of the above/below bands, labelled like `crit > 1000 ms`."""
    if thresholds is None:
        return []
    lines: list[ThresholdLine] = []
    for band, sign in ((thresholds.above, ">"), (thresholds.below, "<")):
        if band is None:
            continue
        if band.warn is not None:
            lines.append(
                ThresholdLine(band.warn, f"warn {sign} {format_value(band.warn, unit)}", False)
            )
        if band.crit is not None:
            lines.append(
                ThresholdLine(band.crit, f"crit {sign} {format_value(band.crit, unit)}", True)
            )
    return lines


def format_ago(seconds: float) -> str:
    """Axis labels: `now`, `-30s`, `-5m`, `-1h30m` (seconds before the newest moment)."""
    seconds = round(seconds)
    if seconds <= 0:
        return "now"
    if seconds < 60:
        return f"-{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"-{minutes}m{rest}s" if rest else f"-{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"-{hours}h{minutes}m" if minutes else f"-{hours}h"


def _message(text: str, colorless: bool) -> Text:
    return Text(text, style="" if colorless else "italic")


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Split the history at gaps, so a failed poll breaks the line instead of bridging it."""
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, y in points:
        if y is None:
            if current:
                runs.append(current)
                current = []
        else:
            current.append((x, y))
    if current:
        runs.append(current)
    return runs


def _y_limits(values: list[float], lines: list[ThresholdLine]) -> tuple[float, float]:
    everything = values + [line.value for line in lines]
    low, high = min(everything), max(everything)
    if low >= 0 and low <= high * 0.25:
        low = 0.0  # counts and latencies read best from zero when the data nearly starts there
    if math.isclose(low, high):
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return (low - pad if low != 0.0 else 0.0), high + pad


def _x_ticks(span: float, width: int) -> tuple[list[float], list[str]]:
    """About one tick per 16 columns, at round steps of seconds/minutes/hours."""
    wanted = max(2, min(7, width // 16))
    steps = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
    step = next((s for s in steps if span / s <= wanted), steps[-1] * math.ceil(span / 86400))
    positions: list[float] = []
    tick = 0.0
    while tick <= span + 1e-9:
        positions.append(-tick)
        tick += step
    positions.reverse()
    return positions, [format_ago(-p) for p in positions]


def render_history_chart(
    samples: Sequence[Sample],
    *,
    width: int,
    height: int,
    thresholds: Thresholds | None = None,
    unit: str | None = None,
    title: str | None = None,
    colorless: bool = False,
    now: float | None = None,
) -> Text:
    """The history as a line over time (x = seconds before `now`), gaps from failed polls
    marked on the baseline, threshold lines labelled; a plain message when there is nothing
    to draw. `now` defaults to the newest sample's time, so the output depends only on the
    arguments."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return _message(f"(the chart needs at least {MIN_WIDTH}x{MIN_HEIGHT} cells)", colorless)
    if not samples:
        return _message("No history yet: the chart starts with the first reading.", colorless)
    values = [s.value for s in samples if s.value is not None and math.isfinite(s.value)]
    if not values:
        return _message(
            f"No values to chart: all {len(samples)} polls in the history failed "
            "or returned no data.",
            colorless,
        )
    if len(samples) == 1:
        return _message(
            f"One reading so far ({format_value(values[0], unit)}); the chart needs two.",
            colorless,
        )
    end = samples[-1].at if now is None else now
    points = [
        (s.at - end, s.value if s.value is not None and math.isfinite(s.value) else None)
        for s in samples
    ]
    lines = threshold_lines(thresholds, unit)
    text = _build(points, lines, width, height, unit, title, colorless)
    return text


def _build(
    points: list[tuple[float, float | None]],
    lines: list[ThresholdLine],
    width: int,
    height: int,
    unit: str | None,
    title: str | None,
    colorless: bool,
) -> Text:
    import plotext

    fig: Any = plotext.figure
    fig.clear()
    plotext.terminal.limit(False, False)
    fig.theme("simple")
    fig.canvas("default")
    fig.plot_size(width, height)
    fig.legend(False)
    if title:
        fig.title(f"{title} ({unit})" if unit else title)

    values = [y for _, y in points if y is not None]
    low, high = _y_limits(values, lines)
    span = max(1.0, -points[0][0])
    fig.ruler("x").lim(-span, 0.0)
    fig.ruler("y").lim(low, high)
    positions, labels = _x_ticks(span, width)
    fig.ruler("x").ticks(positions, labels)

    data_marker = plotext.marker("hd", pixel=_LINE_COLOUR)
    for run in _runs(points):
        xs, ys = [p[0] for p in run], [p[1] for p in run]
        signal = fig.signal(xs, ys, marker=data_marker)
        fig.draw(signal.lines(len(run) > 1))
    gaps = [x for x, y in points if y is None]
    if gaps:
        fig.draw(fig.signal(gaps, [low] * len(gaps), marker=plotext.marker("×", pixel=_GAP_COLOUR)))
    for line in lines:
        colour = _CRIT_COLOUR if line.crit else _WARN_COLOUR
        fig.line(line.value, pixel=colour)
        label = plotext.colorize(f" {line.label} ", pixel=colour)
        fig.draw(fig.text(-span, line.value, label, alignment="left"))

    built = fig.build().string(colorless=colorless)
    fig.clear()
    # plotext paints line cells on its own background; the screen's background must show.
    built = _BACKGROUND.sub("", built)
    rendered = Text.from_ansi(built.rstrip("\n"), no_wrap=True)
    rendered.no_wrap = True
    rendered.overflow = "crop"
    return rendered
