"""Facts and tables laid out in a fixed number of cells: the pure part of a panel's body.

Kept free of widgets so the rules (wrap facts in source order, truncate rows with `…`, say
"+N more") are tested without an app, and so a panel can cache the result per reading.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from opstui.sources.base import Table
from opstui.ui.format import ELLIPSIS, truncate

FACT_SEPARATOR = " · "
COLUMN_GAP = 2
MIN_COLUMN = 3
_NUMERIC = re.compile(r"^[-+]?[\d,.]+\s*[%a-zA-Zµ/]*$")


def fact_lines(
    facts: Sequence[tuple[str, str]],
    width: int,
    max_lines: int,
    *,
    label_style: Style | str = "",
    value_style: Style | str = "",
    separator_style: Style | str = "",
) -> list[Text]:
    """`label value` items joined with ` · `, wrapped in order onto at most `max_lines` lines.

    An item never splits across lines; one wider than the panel is truncated. Items that do
    not fit are dropped from the end (the source put the important ones first) and the last
    line then ends with `…`, so nothing disappears silently."""
    if width <= 0 or max_lines <= 0 or not facts:
        return []
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    dropped = False
    for index, (label, value) in enumerate(facts):
        size = cell_len(_item_text(label, value))
        current = lines[-1]
        needed = size if not current else used + cell_len(FACT_SEPARATOR) + size
        if current and needed > width:
            if len(lines) == max_lines:
                dropped = index < len(facts)
                break
            lines.append([])
            current = lines[-1]
            needed = size
        current.append((label, value))
        used = needed
    result = [_assemble(items, width, label_style, value_style, separator_style) for items in lines]
    if dropped:
        last = result[-1]
        if cell_len(last.plain) + 2 <= width:
            last.append(" " + ELLIPSIS, style=separator_style)
        else:
            last.truncate(max(1, width - 1))
            last.rstrip()
            last.append(ELLIPSIS, style=separator_style)
    return result


def fact_line_count(facts: Sequence[tuple[str, str]], width: int) -> int:
    """How many lines all the facts take at `width` (what a panel needs to show them all)."""
    return len(fact_lines(facts, width, max(1, len(facts))))


def _item_text(label: str, value: str) -> str:
    return f"{label} {value}" if label else value


def _assemble(
    items: list[tuple[str, str]],
    width: int,
    label_style: Style | str,
    value_style: Style | str,
    separator_style: Style | str,
) -> Text:
    line = Text(end="", no_wrap=True)
    for position, (label, value) in enumerate(items):
        if position:
            line.append(FACT_SEPARATOR, style=separator_style)
        if label:
            line.append(label + " ", style=label_style)
        line.append(value, style=value_style)
    if cell_len(line.plain) > width:
        line.truncate(width - 1)
        line.rstrip()
        line.append(ELLIPSIS, style=value_style)
    return line


def is_numeric_column(table: Table, column: int) -> bool:
    """True when every non-empty cell of the column reads as a number (then right-aligned)."""
    cells = [row[column] for row in table.rows if column < len(row) and row[column].strip()]
    return bool(cells) and all(_NUMERIC.match(cell.strip()) for cell in cells)


def natural_widths(table: Table) -> list[int]:
    """Each column's widest cell (header included)."""
    count = len(table.columns)
    widths = [cell_len(name) for name in table.columns]
    for row in table.rows:
        for index, cell in enumerate(row[:count]):
            widths[index] = max(widths[index], cell_len(cell))
    return widths


def column_gap(table: Table, width: int) -> int:
    """Two spaces between columns when everything fits, one when cells must be cut."""
    widths = natural_widths(table)
    fits = sum(widths) + COLUMN_GAP * (len(widths) - 1) <= width
    return COLUMN_GAP if fits else 1


def column_widths(table: Table, width: int, gap: int = COLUMN_GAP) -> list[int]:
    """Natural column widths, shrunk widest-first until the row fits in `width` cells."""
    count = len(table.columns)
    if count == 0:
        return []
    widths = natural_widths(table)
    budget = width - gap * (count - 1)
    numeric = [is_numeric_column(table, i) for i in range(count)]
    # Text columns (names, queries, labels) give way first: a cut number misleads.
    for shrinkable in ([i for i in range(count) if not numeric[i]], list(range(count))):
        while sum(widths) > budget:
            candidates = [i for i in shrinkable if widths[i] > MIN_COLUMN]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: (widths[i], -i))
            widths[widest] -= 1
    return widths


def format_row(
    cells: Sequence[str],
    widths: Sequence[int],
    numeric: Sequence[bool],
    width: int,
    gap: int = COLUMN_GAP,
) -> str:
    """One row padded to its columns, each cell cut with `…`, the whole cut to `width`."""
    parts = []
    for index, column_width in enumerate(widths):
        cell = cells[index] if index < len(cells) else ""
        cell = truncate(cell, column_width)
        pad = " " * (column_width - cell_len(cell))
        parts.append(pad + cell if numeric[index] else cell + pad)
    return truncate((" " * gap).join(parts).rstrip(), width)


def more_count(table: Table, shown: int) -> int:
    """Rows the reader does not see: of the whole result (total_rows) when the source says."""
    total = table.total_rows if table.total_rows is not None else len(table.rows)
    return max(0, max(total, len(table.rows)) - shown)


def table_lines(
    table: Table,
    width: int,
    max_lines: int,
    *,
    header_style: Style | str = "",
    row_style: Style | str = "",
    more_style: Style | str = "",
    title_style: Style | str = "",
) -> list[Text]:
    """The table in at most `max_lines` lines: [title], dim headers, rows, then `+N more`.

    The title is shown only when every row fits with it; rows are cut to `width`; when rows
    are left out, the last line says how many (of total_rows when the source cut the table)."""
    if width <= 0 or max_lines < 2 or not table.columns:
        return []
    gap = column_gap(table, width)
    widths = column_widths(table, width, gap)
    numeric = [is_numeric_column(table, i) for i in range(len(widths))]
    rows = list(table.rows)
    hidden_all = more_count(table, len(rows))
    lines: list[Text] = []
    needed_with_title = 2 + len(rows) + (1 if hidden_all else 0)
    if table.title and needed_with_title <= max_lines:
        lines.append(Text(truncate(table.title, width), style=title_style, end=""))
    room = max_lines - len(lines) - 1
    header = format_row(table.columns, widths, numeric, width, gap)
    lines.append(Text(header, style=header_style, end=""))
    if not rows:
        if room > 0 and hidden_all == 0:
            lines.append(Text(truncate("(no rows)", width), style=more_style, end=""))
        elif room > 0:
            lines.append(Text(truncate(f"+{hidden_all} more", width), style=more_style, end=""))
        return lines
    shown = len(rows) if len(rows) + (1 if hidden_all else 0) <= room else max(0, room - 1)
    for row in rows[:shown]:
        lines.append(Text(format_row(row, widths, numeric, width, gap), style=row_style, end=""))
    hidden = more_count(table, shown)
    if hidden and len(lines) < max_lines:
        lines.append(Text(truncate(f"+{hidden} more", width), style=more_style, end=""))
    return lines
