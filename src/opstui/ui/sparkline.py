"""One-line sparklines in block characters: cheap to draw and cheap to send over SSH."""

from __future__ import annotations

import math
from collections.abc import Sequence

BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"
"""Drawn where a poll failed, so a hole in the data never looks like a low value."""


def sparkline(values: Sequence[float | None], width: int) -> str:
    """The last `width` values as block characters, scaled between their min and max.

    None (a failed poll) and non-finite values become GAP; a flat series sits mid-height so
    it is not mistaken for zero. The result is right-aligned: newest value last, padded with
    spaces on the left while the history is shorter than the width.
    """
    if width <= 0:
        return ""
    window = list(values)[-width:]
    finite = [v for v in window if v is not None and math.isfinite(v)]
    if not finite:
        cells = [GAP if window else " " for _ in window]
        return "".join(cells).rjust(width)
    low, high = min(finite), max(finite)
    span = high - low
    top = len(BLOCKS) - 1
    cells = []
    for value in window:
        if value is None or not math.isfinite(value):
            cells.append(GAP)
        elif span <= 0:
            cells.append(BLOCKS[top // 2])
        else:
            cells.append(BLOCKS[round((value - low) / span * top)])
    return "".join(cells).rjust(width)
