"""Short, width-conscious text for values, ages and states, shared by every screen.

Everything here is pure (no Textual), so the words a panel shows are tested without an app.
"""

from __future__ import annotations

import math

from rich.cells import cell_len, set_cell_size

from opstui.states import Severity, State

ELLIPSIS = "…"


def format_number(value: float) -> str:
    """A number short enough for a panel: 42, 3.14, 0.012, 12,345, 1.2M."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude >= 10_000_000:
        for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M")):
            if magnitude >= limit:
                return f"{value / limit:.1f}{suffix}"
    if magnitude >= 100 or float(value).is_integer():
        return f"{round(value):,}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def format_value(value: float | None, unit: str | None) -> str:
    """`42 ms`, `0.12 s`, `87 %`, or `—` when there is no value."""
    if value is None:
        return "—"
    text = format_number(value)
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def format_age(seconds: float) -> str:
    """An age to the precision people read it at: 3s, 2m, 1h5m, 2d3h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def format_countdown(seconds: float) -> str:
    """Time left, to the second while it matters: 9s, 1m20s, 1h5m."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def state_label(state: State) -> str:
    """Glyph + word, the form a state always takes on screen: `✖ CRIT`."""
    return f"{state.glyph} {state.word}"


_SEVERITY_GLYPHS = {
    Severity.OK: State.OK.glyph,
    Severity.WARN: State.WARN.glyph,
    Severity.CRIT: State.CRIT.glyph,
}
UNKNOWN_GLYPH = "○"


def severity_glyph(severity: Severity | None) -> str:
    """The state glyph matching a severity; `○` when nothing was said."""
    return UNKNOWN_GLYPH if severity is None else _SEVERITY_GLYPHS[severity]


def truncate(text: str, width: int) -> str:
    """Cut `text` to `width` cells, ending with `…` when something was cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    return set_cell_size(text, width - 1).rstrip() + ELLIPSIS


def fit_parts(parts: list[str], width: int, separator: str = " · ") -> str:
    """Join as many leading parts as fit in `width`; the first part is truncated if alone."""
    if not parts:
        return ""
    text = parts[0]
    for part in parts[1:]:
        candidate = text + separator + part
        if cell_len(candidate) > width:
            break
        text = candidate
    return truncate(text, width)
