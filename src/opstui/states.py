"""Panel states and severities (DESIGN.md section 5): the vocabulary every layer shares.

A state is always drawn as glyph + word + colour, so it stays readable from 3 m away, in
16 colours and with NO_COLOR; the glyph and word live here so every consumer says the same.
"""

from __future__ import annotations

from enum import Enum


class Severity(Enum):
    """How bad a value is, as judged by thresholds or by the service itself."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @staticmethod
    def worst(*severities: Severity | None) -> Severity:
        present = [s for s in severities if s is not None]
        return max(present, key=lambda s: s.rank) if present else Severity.OK


_SEVERITY_RANK = {Severity.OK: 0, Severity.WARN: 1, Severity.CRIT: 2}


class State(Enum):
    """What a panel shows: freshness and badness folded into one word."""

    INIT = "init"
    OK = "ok"
    PENDING = "pending"
    WARN = "warn"
    CRIT = "crit"
    NODATA = "nodata"
    ERROR = "error"
    STALE = "stale"
    FLAPPING = "flapping"

    @property
    def glyph(self) -> str:
        return _GLYPHS[self]

    @property
    def word(self) -> str:
        return _WORDS[self]

    @property
    def rank(self) -> int:
        """Rollup order: crit > error = nodata > warn > stale > pending = flapping > ok."""
        return _ROLLUP_RANK[self]

    @property
    def exit_code(self) -> int:
        """Nagios-style exit code used by `opstui check`."""
        if self in (State.CRIT, State.ERROR, State.NODATA):
            return 2
        if self is State.OK:
            return 0
        if self is State.INIT:
            return 3
        return 1


_GLYPHS = {
    State.INIT: "…",
    State.OK: "●",
    State.PENDING: "△",
    State.WARN: "▲",
    State.CRIT: "✖",
    State.NODATA: "∅",
    State.ERROR: "⚠",
    State.STALE: "⏱",
    State.FLAPPING: "⇅",
}

_WORDS = {
    State.INIT: "waiting",
    State.OK: "OK",
    State.PENDING: "WARN?",
    State.WARN: "WARN",
    State.CRIT: "CRIT",
    State.NODATA: "NO DATA",
    State.ERROR: "ERR",
    State.STALE: "STALE",
    State.FLAPPING: "FLAP",
}

_ROLLUP_RANK = {
    State.OK: 0,
    State.INIT: 1,
    State.PENDING: 2,
    State.FLAPPING: 2,
    State.STALE: 3,
    State.WARN: 4,
    State.ERROR: 5,
    State.NODATA: 5,
    State.CRIT: 6,
}


def rollup(states: list[State] | tuple[State, ...]) -> State:
    """The worst state of a set; ties keep the first (so error and nodata stay distinct)."""
    worst = State.OK
    for state in states:
        if state.rank > worst.rank:
            worst = state
    return worst
