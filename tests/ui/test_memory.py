"""ui/memory.py: the collector stays out of a key press, and still collects."""

from __future__ import annotations

import gc
import weakref

from opstui.ui.memory import (
    FULL_AT_LATEST,
    FULL_EVERY,
    IDLE_AFTER,
    NO_AUTOMATIC_FULL,
    YOUNG_THRESHOLD,
    IdleCollector,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_tunes_the_collector_and_stop_restores_it() -> None:
    before = gc.get_threshold()
    collector = IdleCollector()
    collector.start()
    try:
        assert gc.get_threshold() == (YOUNG_THRESHOLD, gc.get_threshold()[1], NO_AUTOMATIC_FULL)
    finally:
        collector.stop()
    assert gc.get_threshold() == before


def test_full_collections_wait_for_an_idle_moment_but_not_for_ever() -> None:
    clock = Clock()
    collector = IdleCollector(clock)
    clock.now += FULL_EVERY + 1
    collector.input_seen()  # keys are coming: not now
    assert not collector.tick()
    clock.now += IDLE_AFTER + 0.1
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage
    assert collector.tick()  # idle: the cycle is collected
    assert gone() is None
    assert not collector.tick()  # and not again until FULL_EVERY has passed
    for _ in range(int(FULL_AT_LATEST)):  # a key every second, for ever
        clock.now += 1
        collector.input_seen()
        if collector.tick():
            break
    else:
        raise AssertionError("no full collection while keys kept coming")
    assert collector.full_collections == 2


def test_a_key_holds_automatic_collections_until_the_keys_stop() -> None:
    from opstui.ui.memory import DEFER_AT_MOST

    clock = Clock()
    collector = IdleCollector(clock)
    collector.start()
    try:
        collector.input_seen()
        assert collector.holding and not gc.isenabled()
        clock.now += IDLE_AFTER / 2
        collector.input_seen()
        collector.tick()
        assert not gc.isenabled(), "keys still coming: still held"
        clock.now += IDLE_AFTER + 0.1
        collector.tick()
        assert gc.isenabled() and not collector.holding
        released = False
        for _ in range(int(2 * DEFER_AT_MOST) + 2):  # a key every half second, no pause
            clock.now += 0.5
            collector.input_seen()
            collector.tick()
            released = released or gc.isenabled()
        assert released, "held for longer than DEFER_AT_MOST"
    finally:
        collector.stop()
    assert gc.isenabled()
