"""Turning client-library exceptions into the short reasons panels show."""

from __future__ import annotations

from collections.abc import Iterator


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """exc, its cause, the cause's cause... (context when no explicit cause), loop-safe.

    Client libraries wrap the root cause (a refused socket inside a timeout inside a client
    error); reasons are classified from the innermost one that says something."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def one_line(text: str, limit: int = 200) -> str:
    """Whitespace folded to single spaces, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
