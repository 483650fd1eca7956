"""The Engine on a ManualClock: poll loops, scheduling, backoff, controls, publishing, events."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from opstui.config.models import Config
from opstui.engine import scheduler
from opstui.engine.clock import ManualClock
from opstui.engine.events import Event, EventKind
from opstui.engine.scheduler import Engine, backoff_delay
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.base import Client, Component, ProbeError
from opstui.sources.registry import ClientPool
from opstui.states import Severity, State
from tests.engine.helpers import ScriptedSource, make_config, ok, settle, verdict


@asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[Engine]:
    await engine.start()
    await settle()
    try:
        yield engine
    finally:
        await engine.stop()


async def advance(clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    """Move time forward in small steps, letting loops run at each step."""
    remaining = seconds
    while remaining > 1e-9:
        move = min(step, remaining)
        clock.advance(move)
        remaining -= move
        await settle()


async def advance_to(clock: ManualClock, when: float) -> None:
    clock.advance(max(0.0, when - clock.monotonic()))
    await settle()


def one_probe(**probe: Any) -> Config:
    return make_config({"id": "api", **probe})


async def test_polls_at_a_fixed_rate_and_publishes() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok(1.0))
    engine = Engine(one_probe(), clock=clock, sources={"api": source})
    seen: list[ProbeSnapshot] = []
    engine.subscribe(seen.append)
    async with running(engine):
        assert source.calls == 1  # a lone probe polls at once
        assert engine.snapshot("api").state is State.OK
        assert engine.snapshot("api").next_poll_at == clock.monotonic() + 1.0
        await advance(clock, 3.0)
        assert source.calls == 4
        assert len(seen) >= 4 and seen[-1].state is State.OK
    assert engine.snapshot("api").history is not None
    assert len(engine.snapshot("api").history or []) == 4


async def test_start_and_stop_are_idempotent() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok())
    engine = Engine(one_probe(), clock=clock, sources={"api": source})
    await engine.start()
    await engine.start()
    await settle()
    assert source.calls == 1
    await engine.stop()
    await engine.stop()
    await advance(clock, 5.0)
    assert source.calls == 1


async def test_first_polls_are_spread_within_the_first_interval() -> None:
    clock = ManualClock()
    probes = [{"id": f"p{i}"} for i in range(200)]
    config = make_config(*probes, refresh="1s")
    sources = {f"p{i}": ScriptedSource(ok()) for i in range(200)}
    engine = Engine(config, clock=clock, sources=sources, rng=random.Random(7))
    start = clock.monotonic()
    await engine.start()
    firsts = [s.next_poll_at for s in engine.snapshots()]
    assert all(f is not None and start <= f <= start + 1.0 for f in firsts)
    assert len(set(firsts)) > 150  # not all in the same instant
    try:
        await advance(clock, 1.0, step=0.05)
        assert all(s.calls >= 1 for s in sources.values())
    finally:
        await engine.stop()


async def test_raising_source_becomes_an_error_and_the_loop_survives() -> None:
    clock = ManualClock()
    source = ScriptedSource(
        RuntimeError("boom\nsecond line"),
        asyncio.CancelledError(),
        TimeoutError("read timed out"),
        ok(3.0),
    )
    engine = Engine(one_probe(), clock=clock, sources={"api": source}, rng=random.Random(1))
    async with running(engine):
        snap = engine.snapshot("api")
        assert snap.state is State.ERROR and snap.error == "RuntimeError: boom"
        await advance_to(clock, snap.next_poll_at or 0)
        snap = engine.snapshot("api")
        assert snap.state is State.ERROR and snap.error == "poll cancelled"
        assert snap.consecutive_errors == 2
        await advance_to(clock, snap.next_poll_at or 0)
        snap = engine.snapshot("api")
        # a timeout raised by the source itself is not our poll timeout
        assert snap.state is State.ERROR and snap.error == "TimeoutError: read timed out"
        await advance_to(clock, snap.next_poll_at or 0)
        assert engine.snapshot("api").state is State.OK
        assert source.calls == 4


async def test_hung_poll_goes_stale_then_error_then_recovers_by_itself() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok(1.0))
    config = one_probe(interval="1s", timeout="5s")
    engine = Engine(config, clock=clock, sources={"api": source}, rng=random.Random(2))
    states: list[State] = []
    engine.subscribe(lambda s: states.append(s.state))
    async with running(engine):
        t0 = clock.monotonic()
        assert engine.snapshot("api").state is State.OK
        source.gate = asyncio.Event()  # the service hangs from now on
        await advance(clock, 2.0)
        assert source.in_flight == 1 and engine.snapshot("api").state is State.OK
        await advance(clock, 1.0)  # the ticker re-evaluates at t0+3: older than 2 x 1 s
        assert engine.snapshot("api").state is State.STALE
        assert states[-1] is State.STALE
        await advance_to(clock, t0 + 1.0 + 5.0)  # the hung poll (started t0+1) times out
        snap = engine.snapshot("api")
        assert snap.state is State.ERROR and snap.error == "timeout after 5s"
        assert snap.reading is not None and snap.age(clock.monotonic()) == pytest.approx(6.0)
        source.gate.set()  # the service answers again
        await advance_to(clock, snap.next_poll_at or 0)
        assert engine.snapshot("api").state is State.OK
    changes = [(e.old, e.new) for e in engine.timeline.events() if e.kind is EventKind.STATE]
    assert changes == [
        (State.INIT, State.OK),
        (State.OK, State.STALE),
        (State.STALE, State.ERROR),
        (State.ERROR, State.OK),
    ]


async def test_slow_source_never_has_two_polls_in_flight() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok())
    source.gate = asyncio.Event()
    engine = Engine(one_probe(timeout="10s"), clock=clock, sources={"api": source})
    async with running(engine):
        assert source.in_flight == 1
        for _ in range(5):
            engine.refresh("api")
            await advance(clock, 1.0)
        engine.refresh()
        await settle()
        assert source.calls == 1 and source.max_in_flight == 1
        source.gate.set()
        await advance(clock, 0.25)
        # The refreshes asked while the poll was in flight were absorbed by it.
        assert source.calls == 1
        await advance(clock, 3.0)
        assert source.calls >= 3
    assert source.max_in_flight == 1


async def test_slow_poll_skips_missed_slots_instead_of_catching_up() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok())
    engine = Engine(one_probe(timeout="10s"), clock=clock, sources={"api": source})
    async with running(engine):
        source.gate = asyncio.Event()
        t1 = clock.monotonic() + 1.0
        await advance_to(clock, t1)  # second poll starts and hangs for 2.5 s
        await advance(clock, 2.5)
        source.gate.set()
        await settle()
        assert source.calls == 2
        assert engine.snapshot("api").next_poll_at == pytest.approx(t1 + 3.0)


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(3)
    for errors in range(1, 12):
        base = min(30.0, 2.0 ** (errors - 1))
        for _ in range(50):
            delay = backoff_delay(1.0, errors, rng)
            assert 0.8 * base <= delay <= min(30.0, 1.2 * base)
    # The cap is max(interval, 30 s): a slow probe never retries faster than its interval.
    assert 48.0 <= backoff_delay(60.0, 1, rng) <= 60.0
    assert backoff_delay(60.0, 40, rng) <= 60.0


async def test_errors_back_off_in_the_loop_and_publish_next_poll() -> None:
    clock = ManualClock()
    source = ScriptedSource(ProbeError("connection refused"))
    engine = Engine(one_probe(), clock=clock, sources={"api": source}, rng=random.Random(4))
    delays: list[float] = []
    async with running(engine):
        for _ in range(9):
            snap = engine.snapshot("api")
            assert snap.next_poll_at is not None
            delays.append(snap.next_poll_at - clock.monotonic())
            await advance_to(clock, snap.next_poll_at)
        assert source.calls == 10
    for n, delay in enumerate(delays, start=1):
        base = min(30.0, 2.0 ** (n - 1))
        assert 0.8 * base <= delay <= min(30.0, 1.2 * base)
    assert delays[-1] <= 30.0 and delays[-1] >= 24.0
    assert engine.snapshot("api").consecutive_errors == 10


async def test_pause_resume_and_refresh() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok())
    engine = Engine(one_probe(), clock=clock, sources={"api": source})
    async with running(engine):
        engine.pause()
        assert engine.paused and engine.snapshot("api").paused
        await advance(clock, 5.0)
        assert source.calls == 1
        assert engine.snapshot("api").state is State.STALE  # ages grow while paused
        engine.refresh("api")  # an explicit request polls even while paused
        await settle()
        assert source.calls == 2 and engine.snapshot("api").state is State.OK
        await advance(clock, 3.0)
        assert source.calls == 2
        engine.resume()
        await settle()
        assert not engine.paused and not engine.snapshot("api").paused
        assert source.calls == 3  # the missed poll runs at once
        await advance(clock, 1.0)
        assert source.calls == 4
        with pytest.raises(KeyError):
            engine.refresh("nope")
    controls = [e.message for e in engine.timeline.events() if e.kind is EventKind.CONTROL]
    assert controls == [
        "started polling 1 probe",
        "paused polling",
        "refresh api",
        "resumed polling",
        "stopped polling",
    ]


async def test_pause_and_resume_are_idempotent_and_publish_once() -> None:
    engine = Engine(one_probe(), clock=ManualClock(), sources={})
    seen: list[ProbeSnapshot] = []
    engine.subscribe(seen.append)
    engine.pause()
    engine.pause()
    assert [s.paused for s in seen] == [True]
    engine.resume()
    engine.resume()
    assert [s.paused for s in seen] == [True, False]


async def test_listeners_get_only_visible_changes() -> None:
    clock = ManualClock()
    engine = Engine(
        one_probe(interval="1m", thresholds={"above": {"warn": 100}, "for": "10s"}), clock=clock
    )
    seen: list[ProbeSnapshot] = []
    unsubscribe = engine.subscribe(seen.append)
    engine.ingest("api", ok(5.0))
    assert len(seen) == 1
    engine.tick()
    assert len(seen) == 1  # nothing changed
    engine.ingest("api", ok(5.0))
    assert len(seen) == 2  # a finished poll always publishes
    engine.ingest("api", ok(150.0))
    assert seen[-1].state is State.PENDING and seen[-1].pending_fires_at == clock.monotonic() + 10
    clock.advance(0.4)
    engine.tick()
    assert len(seen) == 3  # same countdown second
    clock.advance(0.7)
    engine.tick()
    assert len(seen) == 4  # the countdown moved a second
    clock.advance(9.0)
    engine.tick()
    fired = seen[-1]
    assert fired.state is State.WARN
    count = len(seen)
    unsubscribe()
    engine.ingest("api", ok(1.0))
    assert len(seen) == count


async def test_state_events_carry_the_cause() -> None:
    engine = Engine(one_probe(), clock=ManualClock())
    events: list[Event] = []
    engine.timeline.subscribe(events.append)
    engine.ingest("api", verdict(Severity.OK))
    engine.ingest(
        "api",
        verdict(
            Severity.CRIT, notes=("HTTP 503",), components=(Component("db", Severity.CRIT, "down"),)
        ),
    )
    engine.ingest("api", verdict(Severity.CRIT))  # no change, no event
    engine.ingest("api", ProbeError("connection refused"))
    assert [e.message for e in events] == [
        "api: waiting -> OK",
        "api: OK -> CRIT (HTTP 503, db: down)",
        "api: CRIT -> ERR (connection refused)",
    ]
    crit = events[1]
    assert crit.kind is EventKind.STATE and crit.old is State.OK and crit.new is State.CRIT
    assert crit.probe_id == "api" and crit.wall == ManualClock().wall()


async def test_flapping_mutes_state_events_and_sets_the_flag() -> None:
    engine = Engine(one_probe(), clock=ManualClock())
    for i in range(21):
        engine.ingest("api", verdict(Severity.CRIT if i % 2 else Severity.OK))
    snap = engine.snapshot("api")
    assert snap.state is State.FLAPPING and snap.flapping
    before = len(engine.timeline)
    for i in range(6):
        engine.ingest("api", verdict(Severity.CRIT if i % 2 else Severity.OK))
    assert len(engine.timeline) == before  # while flapping, no crit entries (no bell)
    for _ in range(21):
        engine.ingest("api", verdict(Severity.OK))
    assert engine.snapshot("api").state is State.OK and not engine.snapshot("api").flapping
    last = engine.timeline.events()[-1]
    assert (last.old, last.new) == (State.FLAPPING, State.OK)


async def test_worst_and_snapshots_in_config_order() -> None:
    config = make_config({"id": "b"}, {"id": "a"}, {"id": "c"})
    engine = Engine(config, clock=ManualClock())
    assert [s.probe_id for s in engine.snapshots()] == ["b", "a", "c"]
    engine.ingest("a", ok())
    engine.ingest("b", verdict(Severity.WARN))
    engine.ingest("c", ok())
    assert engine.worst() is State.WARN
    engine.ingest("c", ProbeError("refused"))
    assert engine.worst() is State.ERROR
    engine.ingest("a", verdict(Severity.CRIT))
    assert engine.worst() is State.CRIT


async def test_a_failing_listener_does_not_stop_polling() -> None:
    clock = ManualClock()
    source = ScriptedSource(ok())
    engine = Engine(one_probe(), clock=clock, sources={"api": source})

    def broken(_: ProbeSnapshot) -> None:
        raise ValueError("listener bug")

    engine.subscribe(broken)
    async with running(engine):
        await advance(clock, 2.0)
        assert source.calls == 3
    errors = [e.message for e in engine.timeline.events() if e.kind is EventKind.ERROR]
    assert errors and errors[0] == "listener failed: ValueError: listener bug"


class _TrackedClient(Client):
    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_sources_built_lazily_share_the_pool_which_stop_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients: list[_TrackedClient] = []

    def build(probe: Any, connection: Any, pool: ClientPool) -> ScriptedSource:
        if probe.id == "bad":
            raise ImportError("no module named opstui.sources.nope")
        client = pool.get(probe.connection, _TrackedClient)
        assert isinstance(client, _TrackedClient)
        clients.append(client)
        return ScriptedSource(ok())

    monkeypatch.setattr(scheduler, "build_source", build)
    config = make_config({"id": "a"}, {"id": "b"}, {"id": "bad"})
    engine = Engine(config, clock=ManualClock())
    async with running(engine):
        bad = engine.snapshot("bad")
        assert bad.state is State.ERROR
        assert bad.error == "cannot start: ImportError: no module named opstui.sources.nope"
    assert len(clients) == 2 and clients[0] is clients[1]
    assert clients[0].closed


class SwallowingSource(ScriptedSource):
    """A poll that turns its cancellation into a connection error, as redis-py can when a
    cancel lands while it (re)connects; `swallowed` counts the cancels it ate."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.swallowed = 0
        self.polling = asyncio.Event()

    async def poll(self) -> Any:
        self.polling.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.swallowed >= self.times:
                    raise
                self.swallowed += 1
                raise ConnectionError("Connection closed by server.") from None


@pytest.mark.parametrize("times", [1, 3])
async def test_stop_ends_a_loop_whose_library_swallowed_the_cancel(times: int) -> None:
    source = SwallowingSource(times)
    engine = Engine(make_config({"id": "a"}, refresh="1s", timeout="1h"), sources={"a": source})
    await engine.start()
    await asyncio.wait_for(source.polling.wait(), 5)
    task = engine._tasks["a"]
    stopping = asyncio.create_task(engine.stop())
    try:
        done, _ = await asyncio.wait({stopping}, timeout=10)  # (wait_for would wait forever)
        assert stopping in done, "engine.stop() hung on a swallowed cancel: quitting would hang"
        assert task.done()
    finally:  # a failed run must not hang the test session too
        for _ in range(times + 2):
            task.cancel()
            await asyncio.sleep(0.01)
        await asyncio.wait({stopping}, timeout=5)
    assert source.swallowed >= 1
    assert not [e for e in engine.timeline.events() if "did not stop" in e.message]
