"""Flap detection: weighted change ratio, start above high, end below low."""

from __future__ import annotations

import pytest

from opstui.engine.flapping import FlapDetector, change_ratio
from opstui.states import State


def test_ratio_extremes_and_weights() -> None:
    assert change_ratio([State.OK] * 21) == 0.0
    alternating = [State.OK if i % 2 else State.CRIT for i in range(21)]
    assert change_ratio(alternating) == pytest.approx(1.0)
    # One change: newest transition weighs 1.2, oldest 0.8 (out of 20).
    newest = [State.OK] * 20 + [State.CRIT]
    oldest = [State.CRIT] + [State.OK] * 20
    assert change_ratio(newest) == pytest.approx(1.2 / 20)
    assert change_ratio(oldest) == pytest.approx(0.8 / 20)


def test_short_history_cannot_flap_early() -> None:
    detector = FlapDetector()
    for state in (State.OK, State.CRIT, State.OK, State.CRIT):
        assert detector.record(state) is False
    assert detector.ratio < 0.5


def test_starts_above_high_and_ends_below_low() -> None:
    detector = FlapDetector(low=0.25, high=0.5)
    states = [State.OK if i % 2 else State.CRIT for i in range(21)]
    flags = [detector.record(s) for s in states]
    assert flags[-1] is True
    started = flags.index(True)
    assert detector.ratio > 0.5
    assert all(flags[started:])
    # Calm readings lower the ratio; flapping lasts until it is under 25 %.
    calm = 0
    while detector.record(State.OK):
        calm += 1
        assert detector.ratio >= 0.25
        assert calm < 21
    assert detector.ratio < 0.25
    assert calm > 0


def test_between_low_and_high_keeps_the_current_mode() -> None:
    detector = FlapDetector(low=0.2, high=0.6)
    # 8 changes among the newest transitions: ~45 %, between the limits.
    states = [State.OK] * 12 + [State.OK if i % 2 else State.WARN for i in range(9)]
    for state in states:
        detector.record(state)
    assert 0.2 < detector.ratio < 0.6
    assert detector.flapping is False


def test_invalid_limits() -> None:
    with pytest.raises(ValueError):
        FlapDetector(low=0.6, high=0.5)


def test_uniform_windows_and_the_full_computation_agree() -> None:
    from collections import deque

    for states in ([], [State.OK], [State.OK] * 5, [State.CRIT] * 30):
        assert change_ratio(states) == 0.0
        assert change_ratio(deque(states, maxlen=21)) == 0.0
    # uniform in the newest 21 but not before: still no change in the window
    assert change_ratio([State.CRIT] * 5 + [State.OK] * 21) == 0.0
    assert change_ratio([State.OK] * 10 + [State.CRIT]) == pytest.approx(1.2 / 20)
