"""Nagios-style flap detection over the last 21 judged states of one probe.

Each change between consecutive states counts with a weight rising linearly from 0.8 (oldest
of the 20 transitions) to 1.2 (newest), so recent churn matters more; the weighted sum over 20
is the state-change ratio. Flapping starts when the ratio goes above `high` and ends only when
it falls below `low` (hysteresis, so a probe does not flap in and out of flapping). While a
probe flaps its panel says FLAPPING and the bell stays quiet.
"""

from __future__ import annotations

from collections import deque

from opstui.states import State

WINDOW = 21
_TRANSITIONS = WINDOW - 1
_WEIGHTS = tuple(0.8 + 0.4 * i / (_TRANSITIONS - 1) for i in range(_TRANSITIONS))


class FlapDetector:
    """Feed one judged state per poll; `flapping` and `ratio` say where the probe stands."""

    __slots__ = ("_states", "flapping", "high", "low", "ratio")

    def __init__(self, low: float = 0.25, high: float = 0.5) -> None:
        if low > high:
            raise ValueError("flap low must not exceed flap high")
        self.low = low
        self.high = high
        self._states: deque[State] = deque(maxlen=WINDOW)
        self.flapping = False
        self.ratio = 0.0

    def record(self, state: State) -> bool:
        """Add the newest judged state; returns whether the probe is flapping now."""
        self._states.append(state)
        self.ratio = change_ratio(self._states)
        if self.flapping:
            if self.ratio < self.low:
                self.flapping = False
        elif self.ratio > self.high:
            self.flapping = True
        return self.flapping

    def reset(self) -> None:
        self._states.clear()
        self.flapping = False
        self.ratio = 0.0


def change_ratio(states: deque[State] | list[State]) -> float:
    """Weighted fraction (0..1) of transitions that changed state, out of a full window.

    A short history is judged against the full 20 transitions (weights aligned so the newest
    transition always weighs 1.2), so a young probe cannot flap on its first few polls.
    """
    if not states or states.count(states[-1]) == len(states):
        return 0.0  # one state throughout, the common case: no transition to weigh
    seq = list(states)[-WINDOW:]
    offset = _TRANSITIONS - (len(seq) - 1)
    total = 0.0
    for i in range(1, len(seq)):
        if seq[i] is not seq[i - 1]:
            total += _WEIGHTS[offset + i - 1]
    return round(total / _TRANSITIONS, 9)  # no float noise at the limits (1.0 is not > 1.0)
