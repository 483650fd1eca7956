"""The ring buffer: order, gaps, `last`, wrap-around, and bounded memory under many ingests."""

from __future__ import annotations

import pytest

from opstui.engine.clock import ManualClock
from opstui.engine.history import History
from opstui.engine.scheduler import Engine
from opstui.sources.base import ProbeError
from tests.engine.helpers import make_config, ok


def test_empty_history() -> None:
    history = History(3)
    assert len(history) == 0
    assert history.values() == []
    assert history.samples(5) == []


def test_values_and_samples_oldest_first_with_gaps() -> None:
    history = History(5)
    history.append(1.0, 101.0, 1.5)
    history.append(2.0, 102.0, None)
    history.append(3.0, 103.0, 3.5)
    assert history.values() == [1.5, None, 3.5]
    assert history.values(2) == [None, 3.5]
    assert history.values(0) == []
    samples = history.samples(2)
    assert [(s.at, s.wall, s.value) for s in samples] == [(2.0, 102.0, None), (3.0, 103.0, 3.5)]


def test_wraps_around_and_keeps_the_newest() -> None:
    history = History(4)
    for i in range(10):
        history.append(float(i), 1000.0 + i, float(i * 10))
    assert len(history) == 4
    assert history.values() == [60.0, 70.0, 80.0, 90.0]
    assert history.values(3) == [70.0, 80.0, 90.0]
    assert history.values(99) == [60.0, 70.0, 80.0, 90.0]
    assert [s.at for s in history.samples()] == [6.0, 7.0, 8.0, 9.0]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        History(0)


def test_ten_thousand_ingests_keep_history_bounded_and_shared() -> None:
    config = make_config({"id": "api", "history": 50})
    engine = Engine(config, clock=ManualClock())
    first = engine.snapshot("api")
    for i in range(10_000):
        outcome = ProbeError("refused") if i % 7 == 0 else ok(float(i))
        engine.ingest("api", outcome)
    snapshot = engine.snapshot("api")
    assert snapshot.history is not None
    # Snapshots share one buffer: no per-poll copies, so memory is flat.
    assert snapshot.history is first.history
    assert len(snapshot.history) == 50
    values = snapshot.history.values()
    assert len(values) == 50
    assert values[-1] == 9999.0
    assert values.count(None) == sum(1 for i in range(9950, 10_000) if i % 7 == 0)
    # The timeline is bounded too (only state changes are recorded, within its limit).
    assert len(engine.timeline) <= 5000
