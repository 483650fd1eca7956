"""ProbeTracker: the state rules of DESIGN.md section 5 (with our stale rule), no asyncio."""

from __future__ import annotations

from typing import Any

from opstui.engine.tracker import ProbeTracker
from opstui.sources.base import Component, ProbeError, Reading
from opstui.states import Severity, State
from tests.engine.helpers import make_config, ok, verdict

WALL = 1_800_000_000.0


def tracker(interval: float = 1.0, **probe: Any) -> ProbeTracker:
    config = make_config({"id": "api", **probe})
    return ProbeTracker(config.probes[0], interval=interval)


def test_init_until_the_first_outcome() -> None:
    t = tracker()
    snap = t.evaluate(0.0)
    assert snap.state is State.INIT
    assert snap.reading is None and snap.age(0.0) is None
    assert snap.title == "api" and snap.kind == "health"


def test_error_keeps_the_last_reading_counts_and_leaves_a_gap() -> None:
    t = tracker()
    reading = ok(12.0)
    t.observe(reading, 10.0, WALL)
    t.observe(ProbeError("refused", hint="is it running?"), 11.0, WALL + 1)
    t.observe(ProbeError("refused"), 12.0, WALL + 2)
    snap = t.evaluate(12.0)
    assert snap.state is State.ERROR
    assert snap.reading is reading
    assert snap.age(12.0) == 2.0
    assert snap.error == "refused" and snap.consecutive_errors == 2
    assert snap.history is not None and snap.history.values() == [12.0, None, None]
    t.observe(ok(13.0), 13.0, WALL + 3)
    recovered = t.evaluate(13.0)
    assert recovered.state is State.OK and recovered.error is None
    assert recovered.consecutive_errors == 0


def test_error_before_any_reading() -> None:
    t = tracker()
    t.observe(ProbeError("timeout after 2s"), 2.0, WALL)
    snap = t.evaluate(2.0)
    assert snap.state is State.ERROR and snap.reading is None


def test_nodata_is_never_green() -> None:
    t = tracker()
    t.observe(Reading(value=None, verdict=Severity.OK, no_data="empty vector"), 0.0, WALL)
    snap = t.evaluate(0.0)
    assert snap.state is State.NODATA
    assert t.cause(snap) == "empty vector"


def test_missing_threshold_field_or_nan_is_nodata() -> None:
    t = tracker(thresholds={"field": "depth", "above": {"warn": 5}})
    t.observe(ok(1.0, fields={"other": 3}), 0.0, WALL)
    snap = t.evaluate(0.0)
    assert snap.state is State.NODATA and t.cause(snap) == "no field 'depth'"
    t.observe(ok(1.0, fields={"depth": "lots"}), 1.0, WALL)
    assert t.evaluate(1.0).state is State.NODATA
    t.observe(ok(1.0, fields={"depth": 7}), 2.0, WALL)
    assert t.evaluate(2.0).state is State.WARN
    t2 = tracker(thresholds={"above": {"warn": 5}})
    t2.observe(ok(float("nan")), 0.0, WALL)
    assert t2.evaluate(0.0).state is State.NODATA


def test_field_picks_a_reading_field_instead_of_the_value() -> None:
    t = tracker(thresholds={"field": "waiting", "above": {"warn": 100, "crit": 200}})
    t.observe(ok(1.0, fields={"waiting": 250}), 0.0, WALL)
    assert t.evaluate(0.0).state is State.CRIT


def test_verdict_counts_immediately_thresholds_wait_for_for() -> None:
    t = tracker(thresholds={"above": {"warn": 100}, "for": "30s"})
    t.observe(verdict(Severity.CRIT, value=150), 0.0, WALL)
    snap = t.evaluate(0.0)
    assert snap.state is State.CRIT  # the service said fail: no waiting
    assert snap.severity is Severity.CRIT
    t.observe(verdict(Severity.OK, value=150), 1.0, WALL)
    pending = t.evaluate(1.0)
    assert pending.state is State.PENDING
    assert pending.breached is Severity.WARN and pending.pending_fires_at == 30.0
    t.observe(verdict(Severity.OK, value=150), 30.0, WALL)
    assert t.evaluate(30.0).state is State.WARN


def test_worse_of_verdict_and_thresholds_wins() -> None:
    t = tracker(thresholds={"above": {"warn": 100, "crit": 200}})
    t.observe(verdict(Severity.WARN, value=250), 0.0, WALL)
    assert t.evaluate(0.0).state is State.CRIT
    t.observe(verdict(Severity.CRIT, value=150), 1.0, WALL)
    assert t.evaluate(1.0).state is State.CRIT
    t.observe(verdict(Severity.WARN, value=10), 2.0, WALL)
    assert t.evaluate(2.0).state is State.WARN


def test_pending_fires_on_evaluate_without_a_new_reading() -> None:
    t = tracker(interval=60.0, thresholds={"above": {"warn": 1}, "for": "10s"})
    t.observe(ok(5.0), 0.0, WALL)
    assert t.evaluate(9.0).state is State.PENDING
    assert t.evaluate(10.0).state is State.WARN


def test_stale_after_two_intervals_plus_latency() -> None:
    t = tracker(interval=5.0)
    t.observe(ok(1.0, latency_ms=3000.0), 100.0, WALL)
    assert t.evaluate(112.9).state is State.OK  # 2*5 + 3 s of latency
    assert t.evaluate(113.1).state is State.STALE
    t.observe(ok(1.0), 114.0, WALL)  # a new good reading clears it
    assert t.evaluate(114.0).state is State.OK


def test_measured_latency_overrides_the_readings_own() -> None:
    t = tracker(interval=1.0)
    t.observe(ok(1.0), 0.0, WALL, latency=1.5)
    assert t.evaluate(3.4).state is State.OK
    assert t.evaluate(3.6).state is State.STALE


def test_error_outranks_stale() -> None:
    t = tracker(interval=1.0)
    t.observe(ok(1.0), 0.0, WALL)
    assert t.evaluate(2.5).state is State.STALE
    t.observe(ProbeError("timeout after 2s"), 3.0, WALL)
    assert t.evaluate(10.0).state is State.ERROR


def test_flapping_applies_without_thresholds_and_yields_to_error() -> None:
    t = tracker()
    now = 0.0
    for i in range(21):
        t.observe(verdict(Severity.CRIT if i % 2 else Severity.OK), now, WALL)
        now += 1.0
    snap = t.evaluate(now - 1.0)
    assert snap.flapping is True
    assert snap.state is State.FLAPPING
    assert t.cause(snap) is not None and "state change" in (t.cause(snap) or "")
    t.observe(ProbeError("refused"), now, WALL)
    assert t.evaluate(now).state is State.ERROR
    assert t.evaluate(now).flapping is True


def test_flapping_uses_the_probes_thresholds_limits() -> None:
    t = tracker(thresholds={"above": {"crit": 100}, "flap_low": 0.9, "flap_high": 1.0})
    for i in range(21):
        t.observe(ok(150.0 if i % 2 else 50.0), float(i), WALL)
    # a ratio of 1.0 is not *above* 1.0: never flapping with these limits
    assert t.evaluate(20.0).flapping is False


def test_cause_for_crit_names_notes_components_and_limits() -> None:
    t = tracker(thresholds={"above": {"warn": 500}})
    reading = verdict(
        Severity.CRIT,
        value=812,
        notes=("HTTP 503",),
        components=(
            Component("db", Severity.CRIT, "down"),
            Component("cache", Severity.OK, "up"),
        ),
    )
    t.observe(reading, 0.0, WALL)
    snap = t.evaluate(0.0)
    assert snap.state is State.CRIT
    assert t.cause(snap) == "HTTP 503, db: down, value 812 > 500"


def test_paused_and_next_poll_are_carried() -> None:
    t = tracker()
    t.paused = True
    t.next_poll_at = 42.0
    snap = t.evaluate(0.0)
    assert snap.paused is True and snap.next_poll_at == 42.0


def test_worse_is_severity_worst_for_every_pair() -> None:
    from opstui.engine.tracker import _worse

    every = [None, Severity.OK, Severity.WARN, Severity.CRIT]
    for a in every:
        for b in every:
            assert _worse(a, b) is Severity.worst(a, b), (a, b)
