"""The Prometheus-backed view's engine: frames in, the exporter's picture out.

Frames are built the way Prometheus answers the frame query (the JSON shape of a real
`/api/v1/query` vector), so parse_frame and MirrorEngine are tested together. Reading a real
Prometheus fed by a real `opstui export` is tests/export/test_via_prometheus.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from opstui.config.kinds.prometheus import ViaPrometheus
from opstui.engine.clock import ManualClock
from opstui.engine.events import EventKind
from opstui.engine.mirror import ABSENT, MirrorEngine, fact_text
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.base import ProbeError, Reading
from opstui.sources.mirror import (
    MirrorFrame,
    Origin,
    PrometheusMirror,
    frame_query,
    parse_frame,
    parse_history,
    regex_alternatives,
    selector,
)
from opstui.states import State
from tests.engine.helpers import make_config

VIA = ViaPrometheus(url="http://127.0.0.1:9090", timeout=2.0)
A = {"instance": "10.0.0.1:9464", "job": "opstui"}
B = {"instance": "10.0.0.2:9464", "job": "opstui"}


def series(name: str, value: float, at: float = 1_800_000_000.0, **labels: str) -> dict[str, Any]:
    return {"metric": {"__name__": f"opstui_probe_{name}", **labels}, "value": [at, repr(value)]}


def probe_series(
    probe: str,
    state: str,
    *,
    kind: str = "health",
    values: dict[str, float] | None = None,
    last_success: float | None = None,
    latency: float | None = None,
    errors: dict[str, float] | None = None,
    origin: dict[str, str] = A,
) -> list[dict[str, Any]]:
    """Every series the exporter publishes for one probe, as Prometheus returns them."""
    out = [
        series("state", 1.0 if s.value == state else 0.0, probe=probe, kind=kind,
               state=s.value, **origin)
        for s in State
    ]
    for field, value in (values or {}).items():
        out.append(series("value", value, probe=probe, field=field, **origin))
    if latency is not None:
        out.append(series("latency_seconds", latency, probe=probe, **origin))
    if last_success is not None:
        out.append(series("last_success_timestamp_seconds", last_success, probe=probe, **origin))
    for reason, count in (errors or {}).items():
        out.append(series("errors_total", count, probe=probe, reason=reason, **origin))
    return out


class ScriptedMirror(PrometheusMirror):
    """Answers frame() from a list of results (or raises ProbeError); counts the reads."""

    def __init__(self, *results: list[dict[str, Any]] | ProbeError) -> None:
        self.results = list(results)
        self.shown_url = "http://127.0.0.1:9090"
        self.match = ""
        self.timeout = 2.0
        self.reads = 0
        self.history_asked: list[tuple[tuple[str, ...], float, float]] = []
        self.points: dict[tuple[str, Origin], list[tuple[float, float]]] = {}
        self.read = asyncio.Event()

    async def frame(self) -> MirrorFrame:
        self.reads += 1
        self.read.set()
        result = self.results[min(self.reads, len(self.results)) - 1]
        if isinstance(result, ProbeError):
            raise result
        return parse_frame(result, 0.0)

    async def history(
        self, probe_ids: Sequence[str], seconds: float, step: float
    ) -> dict[tuple[str, Origin], list[tuple[float, float]]]:
        self.history_asked.append((tuple(probe_ids), seconds, step))
        return self.points


def two_probes() -> Any:
    return make_config(
        {"id": "api", "path": "/health"},
        {"id": "queue", "path": "/q", "thresholds": {"above": {"warn": 1000}}},
    )


def engine_with(clock: ManualClock, config: Any = None) -> MirrorEngine:
    return MirrorEngine(config or two_probes(), VIA, clock=clock)


# --- parsing -------------------------------------------------------------------------------


def test_selectors_carry_the_views_label_matchers() -> None:
    assert selector("opstui_probe_value", "") == "opstui_probe_value"
    assert selector("opstui_probe_value", 'job="opstui",', 'field="value"') == (
        'opstui_probe_value{job="opstui",field="value"}'
    )
    query = frame_query('env="prod"')
    assert query.startswith('{env="prod",__name__=~"opstui_probe_(state|value|')
    assert "errors_total" in query and "last_success_timestamp_seconds" in query
    # Probe ids may hold dots: they must match literally in a probe=~ matcher (RE2 in a
    # PromQL string, so the backslash itself is escaped).
    assert regex_alternatives(["api.v2", "queue-1"]) == "api\\\\.v2|queue-1"


def test_a_frame_takes_each_probe_from_the_exporter_with_the_newest_reading() -> None:
    result = [
        *probe_series("api", "ok", values={"value": 12.0}, last_success=100.0, origin=A),
        *probe_series("api", "error", values={"value": 11.0}, last_success=90.0, origin=B),
        *probe_series("queue", "warn", values={"value": 5.0}, last_success=80.0, origin=A),
        *probe_series("queue", "crit", values={"value": 7.0}, last_success=95.0, origin=B),
        series("state", 1.0, kind="health", state="ok", **A),  # no probe label: ignored
    ]
    frame = parse_frame(result, 123.0)
    assert set(frame.probes) == {"api", "queue"}
    assert frame.probes["api"].state is State.OK and frame.probes["api"].values == {"value": 12.0}
    assert frame.probes["queue"].state is State.CRIT
    assert dict(frame.probes["queue"].origin)["instance"] == "10.0.0.2:9464"
    assert frame.probes["queue"].origin_text == "instance=10.0.0.2:9464,job=opstui"


def test_a_probe_without_a_current_state_series_is_not_in_the_frame() -> None:
    # Value series alone (a half-scraped target, or an exporter that dropped the probe) do
    # not make a picture: the view shows it stale rather than guess a state.
    frame = parse_frame([series("value", 3.0, probe="api", field="value", **A)], 0.0)
    assert frame.probes == {}


def test_bad_answers_are_one_line_errors() -> None:
    with pytest.raises(ProbeError, match="no result list"):
        parse_frame({"oops": 1}, 0.0)
    with pytest.raises(ProbeError, match="no metric or value"):
        parse_frame([{"metric": {}}], 0.0)
    with pytest.raises(ProbeError, match="not a number"):
        parse_frame([{"metric": {"probe": "a"}, "value": [1, "lots"]}], 0.0)
    with pytest.raises(ProbeError, match="no values"):
        parse_history([{"metric": {"probe": "a"}}])


def test_history_is_keyed_by_probe_and_exporter() -> None:
    result = [
        {"metric": {"probe": "api", "field": "value", **A}, "values": [[1, "2"], [2, "NaN"]]},
        {"metric": {"probe": "api", "field": "value", **B}, "values": [[1, "5"]]},
    ]
    history = parse_history(result)
    origin_a = tuple(sorted(A.items()))
    assert history[("api", origin_a)][0] == (1.0, 2.0)
    assert len(history) == 2


# --- the engine ----------------------------------------------------------------------------


def test_states_are_the_exporters_word_for_word() -> None:
    clock = ManualClock()
    engine = engine_with(clock)
    assert {s.state for s in engine.snapshots()} == {State.INIT}
    wall = clock.wall()
    frame = parse_frame(
        [
            *probe_series("api", "ok", values={"value": 4.5, "http_status": 200.0,
                                                "latency_ms": 4.5},
                          last_success=wall - 3.0, latency=0.0045),
            *probe_series("queue", "warn", kind="queue",
                          values={"value": 1234.0, "waiting": 1234.0, "completed_per_s": 0.25},
                          last_success=wall - 1.0),
        ],
        wall,
    )
    engine.apply(frame)
    api, queue = engine.snapshots()
    assert (api.state, queue.state) == (State.OK, State.WARN)
    assert api.reading is not None and api.reading.value == 4.5
    assert api.reading.latency_ms == pytest.approx(4.5)
    # The latency is its own line: facts carry the other numbers, labelled for people.
    assert api.reading.facts == (("http status", "200"),)
    assert queue.reading is not None
    assert queue.reading.facts == (("waiting", "1,234"), ("completed per s", "0.25"))
    # Ages are the exporter's: the reading is as old as its last success, not this frame.
    assert api.age(clock.monotonic()) == pytest.approx(3.0)
    assert api.reading_wall == pytest.approx(wall - 3.0)
    assert queue.severity is not None and queue.severity.value == "warn"


def test_an_erroring_probe_shows_the_reason_whose_counter_moved() -> None:
    clock = ManualClock()
    engine = engine_with(clock)
    wall = clock.wall()

    def frame(errors: dict[str, float], state: str = "error") -> MirrorFrame:
        return parse_frame(
            [*probe_series("api", state, errors=errors), *probe_series("queue", "ok")], wall
        )

    # First look: the reason counted most so far.
    engine.apply(frame({"refused": 7.0, "timeout after 2s": 2.0}))
    assert engine.snapshot("api").error == "refused"
    assert engine.snapshot("api").consecutive_errors == 1
    clock.advance(1.0)
    engine.apply(frame({"refused": 7.0, "timeout after 2s": 4.0}))
    assert engine.snapshot("api").error == "timeout after 2s"
    assert engine.snapshot("api").consecutive_errors == 3
    clock.advance(1.0)
    engine.apply(frame({"refused": 7.0, "timeout after 2s": 4.0}, state="ok"))
    assert engine.snapshot("api").state is State.OK
    assert engine.snapshot("api").error is None
    assert engine.snapshot("api").consecutive_errors == 0


def test_series_gone_from_prometheus_turn_the_panel_stale_keeping_the_reading() -> None:
    clock = ManualClock()
    engine = engine_with(clock)
    wall = clock.wall()
    engine.apply(parse_frame(
        [*probe_series("api", "crit", values={"value": 9.0}, last_success=wall),
         *probe_series("queue", "ok", values={"value": 1.0}, last_success=wall)], wall))
    assert engine.snapshot("api").state is State.CRIT
    events: list[str] = []
    engine.timeline.subscribe(lambda event: events.append(event.message))
    clock.advance(1.0)
    engine.apply(parse_frame(probe_series("queue", "ok", values={"value": 1.0},
                                          last_success=wall), wall))
    api = engine.snapshot("api")
    assert api.state is State.STALE  # never the last colour
    assert api.error == ABSENT
    assert api.reading is not None and api.reading.value == 9.0
    assert api.severity is None
    assert any(message.startswith("api: CRIT -> STALE") for message in events), events


def test_a_new_reading_is_published_and_an_unchanged_one_is_the_same_object() -> None:
    clock = ManualClock()
    engine = engine_with(clock)
    seen: list[ProbeSnapshot] = []
    engine.subscribe(seen.append)
    wall = clock.wall()

    def frame(last: float, value: float) -> MirrorFrame:
        return parse_frame(
            [*probe_series("api", "ok", values={"value": value}, last_success=last),
             *probe_series("queue", "ok")], wall)

    engine.apply(frame(wall, 1.0))
    first = engine.snapshot("api").reading
    count = len([s for s in seen if s.probe_id == "api"])
    clock.advance(1.0)
    engine.apply(frame(wall, 1.0))  # Prometheus has nothing newer: nothing to redraw
    assert engine.snapshot("api").reading is first
    assert len([s for s in seen if s.probe_id == "api"]) == count
    clock.advance(1.0)
    engine.apply(frame(wall + 2.0, 2.0))
    assert engine.snapshot("api").value == 2.0
    assert len([s for s in seen if s.probe_id == "api"]) == count + 1


def test_sparkline_gets_one_point_per_interval_and_a_gap_while_stale() -> None:
    clock = ManualClock()
    engine = engine_with(clock, make_config({"id": "api", "path": "/h"}, refresh="2s"))
    wall = clock.wall()
    present = parse_frame(probe_series("api", "ok", values={"value": 3.0}, last_success=wall),
                          wall)
    for _ in range(4):  # frames every second, points every 2 s (the probe's interval)
        engine.apply(present)
        clock.advance(1.0)
    engine.apply(parse_frame([], wall))
    history = engine.snapshot("api").history
    assert history is not None
    assert history.values() == [3.0, 3.0, None]


async def test_backfill_fills_the_sparkline_from_the_chosen_exporter() -> None:
    clock = ManualClock()
    wall = clock.wall()
    origin_b = tuple(sorted(B.items()))
    mirror = ScriptedMirror(
        [*probe_series("api", "ok", values={"value": 5.0}, last_success=wall, origin=B),
         *probe_series("queue", "ok", values={"value": 1.0}, last_success=wall, origin=B)]
    )
    mirror.points = {
        ("api", tuple(sorted(A.items()))): [(wall - 3, 100.0)],
        ("api", origin_b): [(wall - 3, 1.0), (wall - 2, float("nan")), (wall - 1, 3.0)],
    }
    engine = MirrorEngine(two_probes(), VIA, clock=clock, mirror=mirror)
    await engine.read_once(backfill=True)
    assert mirror.history_asked == [(("api", "queue"), 600.0, 1.0)]  # 600 points at 1 s
    history = engine.snapshot("api").history
    assert history is not None
    assert history.values() == [1.0, None, 3.0, 5.0]


async def test_an_unreadable_prometheus_turns_panels_stale_after_the_allowance() -> None:
    clock = ManualClock()
    wall = clock.wall()
    good = [*probe_series("api", "ok", values={"value": 1.0}, last_success=wall),
            *probe_series("queue", "ok", values={"value": 1.0}, last_success=wall)]
    mirror = ScriptedMirror(good, ProbeError("refused"), ProbeError("refused"), good)
    engine = MirrorEngine(two_probes(), VIA, clock=clock, mirror=mirror)
    errors: list[str] = []
    engine.timeline.subscribe(
        lambda event: errors.append(event.message) if event.kind is EventKind.ERROR else None
    )
    await engine.read_once()
    clock.advance(1.0)
    await engine.read_once()
    # Within 2 x interval + timeout (4 s here) the last picture holds: one failed query is
    # not news, but the header already says Prometheus is unreadable.
    assert engine.snapshot("api").state is State.OK
    assert engine.origin_error == "Prometheus: refused"
    assert errors == ["cannot read http://127.0.0.1:9090: refused"]
    clock.advance(3.5)
    await engine.read_once()
    assert errors == ["cannot read http://127.0.0.1:9090: refused"]  # said once
    api = engine.snapshot("api")
    assert api.state is State.STALE
    assert api.error == "Prometheus: refused"
    assert api.reading is not None
    clock.advance(1.0)
    await engine.read_once()
    assert engine.snapshot("api").state is State.OK
    assert engine.origin_error is None


async def test_the_loop_reads_each_period_and_on_refresh_but_not_while_paused() -> None:
    clock = ManualClock()
    mirror = ScriptedMirror([*probe_series("api", "ok"), *probe_series("queue", "ok")])
    engine = MirrorEngine(two_probes(), VIA, clock=clock, mirror=mirror)

    async def reads(count: int, advance: float = 0.0) -> None:
        """Until the mirror has been read `count` times, moving the clock `advance` seconds
        at a time (the loop may not be asleep yet when the test first moves it)."""
        async with asyncio.timeout(5):
            while mirror.reads < count:
                mirror.read.clear()
                clock.advance(advance)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(mirror.read.wait(), 0.05)

    await engine.start()
    try:
        assert engine.running
        await reads(1)
        await reads(2, advance=1.0)
        engine.refresh()  # no clock movement: the refresh alone reads
        await reads(3)
        engine.pause()
        assert all(s.paused for s in engine.snapshots())
        for _ in range(3):
            clock.advance(1.0)
            await asyncio.sleep(0.05)
        assert mirror.reads == 3
        engine.resume()
        await reads(4)
    finally:
        await engine.stop()
    assert not engine.running


def test_poll_outcomes_are_refused() -> None:
    engine = engine_with(ManualClock())
    with pytest.raises(TypeError, match="frames"):
        engine.ingest("api", Reading(value=1.0))
    assert engine.origin == "via prometheus http://127.0.0.1:9090"


def test_fact_text() -> None:
    assert fact_text(1234.0) == "1,234"
    assert fact_text(0.157857) == "0.1579"
    assert fact_text(float("nan")) == "NaN"
    assert fact_text(float("-inf")) == "-Inf"
