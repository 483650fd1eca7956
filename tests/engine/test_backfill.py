"""Backfill: a backend's own earlier points fill an empty history once, in order."""

from __future__ import annotations

from opstui.engine.tracker import ProbeTracker
from opstui.sources.base import ProbeError, Reading
from tests.engine.helpers import make_config

WALL = 1_800_000_000.0


def _tracker() -> ProbeTracker:
    return ProbeTracker(make_config({"id": "p95"}).probes[0], interval=1.0)


def test_backfill_fills_an_empty_history_before_the_first_live_point() -> None:
    t = _tracker()
    points = ((WALL - 30, 1.0), (WALL - 20, 2.0), (WALL - 10, 3.0))
    t.observe(Reading(value=4.0, backfill=points), 100.0, WALL)
    samples = t.evaluate(100.0).history.samples()  # type: ignore[union-attr]
    assert [s.value for s in samples] == [1.0, 2.0, 3.0, 4.0]
    assert [s.at for s in samples] == [70.0, 80.0, 90.0, 100.0]
    assert [s.wall for s in samples] == [WALL - 30, WALL - 20, WALL - 10, WALL]


def test_backfill_is_used_once_and_drops_future_and_unordered_points() -> None:
    t = _tracker()
    t.observe(Reading(value=1.0), 100.0, WALL)
    t.observe(Reading(value=2.0, backfill=((WALL - 50, 9.0),)), 101.0, WALL + 1)
    assert t.evaluate(101.0).history.values() == [1.0, 2.0]  # type: ignore[union-attr]

    fresh = _tracker()
    messy = ((WALL - 10, 1.0), (WALL - 20, 2.0), (WALL + 5, 3.0), (WALL - 5, 4.0))
    fresh.observe(Reading(value=5.0, backfill=messy), 100.0, WALL)
    assert fresh.evaluate(100.0).history.values() == [1.0, 4.0, 5.0]  # type: ignore[union-attr]


def test_gaps_from_earlier_failures_give_way_to_backfill() -> None:
    t = _tracker()
    t.observe(ProbeError("refused"), 98.0, WALL - 2)
    t.observe(Reading(value=3.0, backfill=((WALL - 60, 1.0), (WALL - 30, 2.0))), 100.0, WALL)
    history = t.evaluate(100.0).history
    assert history is not None
    assert history.values() == [1.0, 2.0, 3.0]
    ats = [s.at for s in history.samples()]
    assert ats == sorted(ats)
