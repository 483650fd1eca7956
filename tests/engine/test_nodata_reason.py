"""The NO DATA reason travels in the snapshot; sources see their effective cadence."""

from __future__ import annotations

from opstui.engine.tracker import ProbeTracker
from opstui.sources.base import Reading
from opstui.states import State
from tests.engine.helpers import make_config

WALL = 1_800_000_000.0


def test_a_missing_judged_field_says_why_in_the_snapshot() -> None:
    config = make_config({"id": "q", "thresholds": {"field": "waiting", "above": {"warn": 10}}})
    t = ProbeTracker(config.probes[0], interval=1.0)
    t.observe(Reading(value=3.0, fields={"active": 1}), 10.0, WALL)
    snap = t.evaluate(10.0)
    assert snap.state is State.NODATA
    assert snap.no_data is not None and "waiting" in snap.no_data


def test_a_sources_own_no_data_reason_is_kept() -> None:
    t = ProbeTracker(make_config({"id": "p"}).probes[0], interval=1.0)
    t.observe(Reading(value=None, no_data="query returned no series"), 10.0, WALL)
    assert t.evaluate(10.0).no_data == "query returned no series"
    t.observe(Reading(value=1.0), 11.0, WALL + 1)
    assert t.evaluate(11.0).no_data is None


def test_effective_probe_fills_interval_and_timeout_from_defaults() -> None:
    config = make_config({"id": "p"}, refresh="7s", timeout="3s")
    probe = config.probes[0]
    assert probe.interval is None
    effective = config.effective_probe(probe)
    assert effective.interval == 7.0 and effective.timeout == 3.0
    assert effective.id == probe.id
