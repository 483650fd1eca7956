"""The Engine: one asyncio poll loop per probe, a 1 s ticker, immutable snapshots out.

Rules every loop keeps (DESIGN.md sections 3 and 5):
- every poll runs under the probe's timeout; a timeout or any exception (even from a buggy
  source) becomes a ProbeError, so the loop survives everything but its own cancellation;
- fixed rate from poll start; a slow poll skips the slots it overran instead of catching up,
  and one probe never has two polls in flight;
- after an error the next poll backs off exponentially from the interval, with +-20 % jitter,
  capped at max(interval, 30 s); the time is published as next_poll_at;
- first polls are spread (5 ms per probe, never more than one interval), so 200 probes do not
  fire in the same millisecond, yet every probe polls within its first interval;
- pause() stops new polls (ages keep growing, so data still goes stale honestly); refresh()
  polls now, even while paused (an explicit request), and a refresh that arrives while a poll
  is in flight is absorbed by that poll instead of starting a second one.

Every outcome goes through the config's Redactor (scrub_outcome) before the tracker sees it,
and every timeline event before it is added: an error that echoes a password (PostgreSQL
quoting the DSN, a 500 body quoting the Authorization header) reaches no panel, detail screen,
timeline, exporter label or `check` line.

Listeners get a new snapshot only when something visible changed (state, reading, error,
pending countdown second, paused...) or a poll finished, which keeps a 200-probe wall cheap.

The engine may run on a thread of its own (engine/thread.py: the TUI does this, so keys and
drawing never queue behind polls). Its home is the loop start() ran on; every listener is
called on the loop it subscribed from (engine/listeners.py), and the control methods (pause,
resume, refresh, tick, ingest) may be called from any thread: they take effect on the home
loop. `paused` flips at once for the caller, so a header drawn right after `p` is true.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from opstui.config.models import Config
from opstui.config.types import format_duration
from opstui.engine.clock import Clock, SystemClock, clock_timeout
from opstui.engine.events import Event, EventKind, Timeline
from opstui.engine.listeners import Listeners, running_loop
from opstui.engine.snapshot import ProbeSnapshot
from opstui.engine.tracker import ProbeTracker
from opstui.redaction import Redactor, redactor_for
from opstui.sources.base import Component, ProbeError, Reading, Source, Table
from opstui.sources.registry import ClientPool, build_source
from opstui.states import State, rollup

SnapshotListener = Callable[[ProbeSnapshot], None]

BACKOFF_CAP = 30.0
"""Errors back off up to max(interval, BACKOFF_CAP) seconds."""
SPREAD_PER_PROBE = 0.005
"""First polls are spread over this many seconds per probe (capped at the interval)."""
TICK = 1.0
STOP_TIMEOUT = 5.0
"""stop() waits this long for the poll loops to end before giving up on the stragglers."""
RECANCEL = 0.5
INGEST_WAIT = 5.0
"""Seconds ingest() from another thread waits for the engine's loop to take the outcome."""
STALL_AFTER = 3 * TICK
"""A running engine whose loop has not ticked for this long is stalled (a poll blocking
its loop): the UI says so, since no panel can change meanwhile."""
_REASON_LIMIT = 80


def short_reason(exc: BaseException) -> str:
    """One line for a panel from an unexpected exception: 'ValueError: bad payload'."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


async def poll_once(source: Source, limit: float, clock: Clock) -> Reading | ProbeError:
    """Poll `source` once within `limit` seconds; never raises but for our own cancellation."""
    scope: asyncio.Timeout | None = None
    try:
        if isinstance(clock, SystemClock):
            async with asyncio.timeout(limit) as scope:
                return await source.poll()
        async with clock_timeout(clock, limit) as scope:
            return await source.poll()
    except TimeoutError as exc:
        if scope is not None and scope.expired():
            return ProbeError(f"timeout after {format_duration(limit)}")
        return ProbeError(short_reason(exc), detail=repr(exc))  # the source's own timeout
    except ProbeError as exc:
        return exc
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return ProbeError("poll cancelled")
    except Exception as exc:
        return ProbeError(short_reason(exc), detail=repr(exc))


async def cancel_and_wait(
    tasks: list[asyncio.Task[None]], limit: float = STOP_TIMEOUT
) -> list[str]:
    """Cancel `tasks` and wait for them, at most `limit` seconds; the names of those that
    would not stop. A cancel that a client library swallows (redis-py can turn one into a
    connection error) is repeated every RECANCEL seconds, so quitting never hangs on it."""
    pending = {task for task in tasks if not task.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL, left))
    await asyncio.gather(*(t for t in tasks if t.done()), return_exceptions=True)
    return sorted(task.get_name() for task in pending)


def scrub_outcome(outcome: Reading | ProbeError, redactor: Redactor) -> Reading | ProbeError:
    """`outcome` with every text in it redacted (reasons, hints, details, raw bodies, notes,
    facts, text fields, components, table cells); the same object when there is no secret."""
    if not redactor:
        return outcome
    scrub = redactor.scrub
    if isinstance(outcome, ProbeError):
        if not redactor.contains("\0".join((outcome.reason, outcome.hint or "",
                                             outcome.detail or ""))):
            return outcome
        clean = ProbeError(
            scrub(outcome.reason),
            hint=redactor.scrub_optional(outcome.hint),
            detail=redactor.scrub_optional(outcome.detail),
        )
        return clean
    if not redactor.contains(_texts(outcome)):
        return outcome  # the common case: one search over the whole reading, no copy
    table = outcome.table
    if table is not None:
        table = Table(
            columns=tuple(scrub(c) for c in table.columns),
            rows=tuple(tuple(scrub(c) for c in row) for row in table.rows),
            title=redactor.scrub_optional(table.title),
            total_rows=table.total_rows,
        )
    return replace(
        outcome,
        fields={k: scrub(v) if isinstance(v, str) else v for k, v in outcome.fields.items()},
        components=tuple(
            Component(
                scrub(c.name), c.severity, scrub(c.status), redactor.scrub_optional(c.observed)
            )
            for c in outcome.components
        ),
        no_data=redactor.scrub_optional(outcome.no_data),
        notes=tuple(scrub(n) for n in outcome.notes),
        raw=redactor.scrub_optional(outcome.raw),
        facts=tuple((scrub(k), scrub(v)) for k, v in outcome.facts),
        table=table,
    )


def _texts(reading: Reading) -> str:
    """Every text of a reading, joined by NULs (a secret's form holds none, so a match in the
    joined text is a match in one of the parts, and no part's match is lost)."""
    parts: list[str] = [v for v in reading.fields.values() if isinstance(v, str)]
    for c in reading.components:
        parts += (c.name, c.status, c.observed or "")
    parts += (reading.no_data or "", reading.raw or "", *reading.notes)
    for key, value in reading.facts:
        parts += (key, value)
    table = reading.table
    if table is not None:
        parts += (*table.columns, table.title or "")
        for row in table.rows:
            parts += row
    return "\0".join(parts)


def backoff_delay(interval: float, errors: int, rng: random.Random) -> float:
    """Seconds before retrying after `errors` consecutive errors (>= 1)."""
    cap = max(interval, BACKOFF_CAP)
    base = min(cap, interval * 2.0 ** min(max(errors, 1) - 1, 32))
    return min(cap, base * rng.uniform(0.8, 1.2))


def _countdown(snapshot: ProbeSnapshot) -> int | None:
    fires_at = snapshot.pending_fires_at
    return None if fires_at is None else math.ceil(fires_at - snapshot.at)


def _visible_key(s: ProbeSnapshot) -> tuple[Any, ...]:
    """What a panel draws, minus ages (the UI computes those): equal keys, nothing to redraw."""
    return (
        s.state,
        id(s.reading),
        s.error,
        s.consecutive_errors,
        s.severity,
        s.breached,
        _countdown(s),
        s.flapping,
        s.paused,
        s.next_poll_at,
    )


class Engine:
    """Polls every probe of `config` and publishes ProbeSnapshots; see the module docstring.

    With `sources`, only the probes in that mapping are polled (the others stay INIT unless
    fed through `ingest`, which is how UI tests inject fixed readings); without, every probe's
    source is built through the registry in start(). `rng` makes the jitter reproducible.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        sources: Mapping[str, Source] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.redactor = redactor_for(config)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.timeline = Timeline()
        self._given_sources = dict(sources) if sources is not None else None
        self._rng = rng if rng is not None else random.Random()
        self._pool = ClientPool()
        self._order = [probe.id for probe in config.probes]
        self._trackers = {
            probe.id: ProbeTracker(probe, interval=config.interval_of(probe))
            for probe in config.probes
        }
        now = self.clock.monotonic()
        self._snapshots = {pid: t.evaluate(now) for pid, t in self._trackers.items()}
        self._keys = {pid: _visible_key(s) for pid, s in self._snapshots.items()}
        self._listeners: Listeners[ProbeSnapshot] = Listeners(self._listener_failed)
        self._home: asyncio.AbstractEventLoop | None = None
        """The loop start() ran on (see the module docstring); None before start()."""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._wakers: dict[str, asyncio.Future[None]] = {}
        self._refresh: set[str] = set()
        self._paused = False
        self._running = False
        self._heartbeat = now
        """Monotonic time the home loop last ticked or took an outcome."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one poll loop per probe and the ticker; calling it again does nothing."""
        if self._running:
            return
        self._adopt_loop()
        sources = self._build_sources()
        count = len(sources)
        for pid, source in sources.items():
            tracker = self._trackers[pid]
            window = min(tracker.interval, SPREAD_PER_PROBE * count) if count > 1 else 0.0
            first = self.clock.monotonic() + self._rng.uniform(0.0, window)
            tracker.next_poll_at = first
            self._tasks[pid] = asyncio.create_task(self._run(pid, source), name=f"poll:{pid}")
        self._ticker = asyncio.create_task(self._tick_loop(), name="engine-ticker")
        self._control(f"started polling {count} probe{'s' if count != 1 else ''}")
        self._apply_tick()  # publish the scheduled first polls

    async def stop(self) -> None:
        """Cancel every loop and close the shared clients; safe to call twice."""
        if not self._running:
            await self._pool.aclose()
            return
        self._running = False
        tasks = [*self._tasks.values(), *([self._ticker] if self._ticker else [])]
        self._tasks.clear()
        self._ticker = None
        stuck = await cancel_and_wait(tasks)
        if stuck:
            self._event(EventKind.ERROR, f"did not stop in time: {', '.join(stuck)}")
        await self._pool.aclose()
        self._control("stopped polling")

    def _adopt_loop(self) -> None:
        """Make the running loop this engine's home (start() of every engine kind)."""
        self._home = asyncio.get_running_loop()
        self._heartbeat = self.clock.monotonic()
        self._running = True

    def _is_home(self) -> bool:
        """True when a call may touch the engine's state directly: on its home loop, or when
        it has none (never started) or its home loop has closed."""
        home = self._home
        return home is None or home.is_closed() or running_loop() is home

    def _at_home(self, call: Callable[[], None]) -> None:
        """Run `call` now when on the home loop (or when there is none), else soon there."""
        if self._is_home():
            call()
            return
        home = self._home
        assert home is not None
        with contextlib.suppress(RuntimeError):  # the home loop closed: nothing left to do
            home.call_soon_threadsafe(call)

    def _build_sources(self) -> dict[str, Source]:
        """Sources to poll, by probe id. A probe whose source cannot be built goes ERROR."""
        if self._given_sources is not None:
            return {pid: s for pid, s in self._given_sources.items() if pid in self._trackers}
        built: dict[str, Source] = {}
        for probe in self.config.probes:
            try:
                connection = self.config.connections[probe.connection]
                effective = self.config.effective_probe(probe)
                built[probe.id] = build_source(effective, connection, self._pool)
            except Exception as exc:
                self.ingest(probe.id, ProbeError(f"cannot start: {short_reason(exc)}"))
        return built

    # --- reading state -----------------------------------------------------------------------

    def subscribe(self, listener: SnapshotListener) -> Callable[[], None]:
        """Call `listener` with every published snapshot, on the loop running here (on the
        engine's own, when none runs); returns the unsubscribe function."""
        return self._listeners.add(listener)

    def _listener_failed(self, listener: SnapshotListener, exc: Exception) -> None:
        self._event(EventKind.ERROR, f"listener failed: {short_reason(exc)}")

    def snapshot(self, probe_id: str) -> ProbeSnapshot:
        return self._snapshots[probe_id]

    def snapshots(self) -> list[ProbeSnapshot]:
        """All snapshots in config order."""
        return [self._snapshots[pid] for pid in self._order]

    def worst(self) -> State:
        return rollup([self._snapshots[pid].state for pid in self._order])

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        """Between start() and stop()."""
        return self._running

    @property
    def origin(self) -> str | None:
        """Where the numbers come from when not from polling the backends (the header says
        it); None for this engine, which polls them itself."""
        return None

    @property
    def origin_error(self) -> str | None:
        """Why `origin` cannot be read right now (None while it answers, or without one)."""
        return None

    def stalled_for(self) -> float | None:
        """Seconds the running engine's loop has not moved for, once past STALL_AFTER (a
        poll blocking it); None while it moves or when it is not running."""
        if not self._running:
            return None
        idle = self.clock.monotonic() - self._heartbeat
        return idle if idle > STALL_AFTER else None

    def cause(self, probe_id: str, snapshot: ProbeSnapshot) -> str | None:
        """A short why for `snapshot.state`, for the timeline's state-change events."""
        return self._trackers[probe_id].cause(snapshot)

    # --- control -----------------------------------------------------------------------------

    def pause(self) -> None:
        """No new polls until resume(); polls in flight still land."""
        if self._paused:
            return
        self._paused = True
        self._at_home(self._apply_pause)

    def resume(self) -> None:
        """Polls restart; probes that missed polls while paused poll soon, spread out."""
        if not self._paused:
            return
        self._paused = False
        self._at_home(self._apply_resume)

    def _apply_pause(self) -> None:
        for tracker in self._trackers.values():
            tracker.paused = True
        self._control("paused polling")
        self._apply_tick()

    def _apply_resume(self) -> None:
        now = self.clock.monotonic()
        count = len(self._tasks)
        for pid, tracker in self._trackers.items():
            tracker.paused = False
            due = tracker.next_poll_at
            if pid in self._tasks and (due is None or due <= now):
                window = min(tracker.interval, SPREAD_PER_PROBE * count) if count > 1 else 0.0
                tracker.next_poll_at = now + self._rng.uniform(0.0, window)
            self._wake(pid)
        self._control("resumed polling")
        self._apply_tick()

    @property
    def clients(self) -> ClientPool:
        """The engine's clients, one per connection: the actions runner shares them."""
        return self._pool

    def refresh(self, probe_id: str | None = None) -> None:
        """Poll now (one probe or all), even while paused; never overlaps a poll in flight."""
        if probe_id is not None and probe_id not in self._trackers:
            raise KeyError(probe_id)
        self._at_home(lambda: self._apply_refresh(probe_id))

    def _apply_refresh(self, probe_id: str | None) -> None:
        targets = self._order if probe_id is None else [probe_id]
        for pid in targets:
            if pid in self._tasks:  # probes without a running loop have nothing to refresh
                self._refresh.add(pid)
                self._wake(pid)
        self._control(f"refresh {probe_id}" if probe_id is not None else "refresh all", probe_id)

    def ingest(self, probe_id: str, outcome: Reading | ProbeError) -> ProbeSnapshot:
        """Take one poll outcome as if a poll ended now; publishes and returns the snapshot
        (from another thread: waits, at most INGEST_WAIT s, for the home loop to take it)."""
        if self._is_home():
            return self._ingest(probe_id, outcome, None)
        home = self._home
        assert home is not None
        done: concurrent.futures.Future[ProbeSnapshot] = concurrent.futures.Future()

        def take() -> None:
            try:
                done.set_result(self._ingest(probe_id, outcome, None))
            except Exception as exc:
                done.set_exception(exc)

        home.call_soon_threadsafe(take)
        return done.result(timeout=INGEST_WAIT)

    def tick(self) -> None:
        """Re-evaluate time-based states (stale, pending firing, countdowns); publish changes."""
        self._at_home(self._apply_tick)

    def _apply_tick(self) -> None:
        now = self.clock.monotonic()
        for pid in self._order:
            self._publish(pid, self._trackers[pid].evaluate(now), force=False)

    # --- internals ---------------------------------------------------------------------------

    def _ingest(
        self, probe_id: str, outcome: Reading | ProbeError, latency: float | None
    ) -> ProbeSnapshot:
        tracker = self._trackers[probe_id]
        now = self._heartbeat = self.clock.monotonic()
        outcome = scrub_outcome(outcome, self.redactor)
        tracker.observe(outcome, now, self.clock.wall(), latency=latency)
        snapshot = tracker.evaluate(now)
        self._publish(probe_id, snapshot, force=True)
        return snapshot

    def _publish(self, probe_id: str, snapshot: ProbeSnapshot, *, force: bool) -> None:
        old = self._snapshots[probe_id]
        self._snapshots[probe_id] = snapshot
        key = _visible_key(snapshot)
        if not force and key == self._keys[probe_id]:
            return
        self._keys[probe_id] = key
        if snapshot.state is not old.state:
            self._state_event(probe_id, old.state, snapshot)
        self._listeners.notify(snapshot)

    def _state_event(self, probe_id: str, old: State, snapshot: ProbeSnapshot) -> None:
        cause = self.cause(probe_id, snapshot)
        message = f"{probe_id}: {old.word} -> {snapshot.state.word}"
        if cause:
            message += f" ({cause})"
        self._add(
            Event(
                at=snapshot.at,
                wall=self.clock.wall(),
                kind=EventKind.STATE,
                message=message,
                probe_id=probe_id,
                old=old,
                new=snapshot.state,
            )
        )

    def _event(self, kind: EventKind, message: str, probe_id: str | None = None) -> None:
        self._add(Event(self.clock.monotonic(), self.clock.wall(), kind, message, probe_id))

    def _add(self, event: Event) -> None:
        # A timeline listener's bug must not stop polling.
        with contextlib.suppress(Exception):
            if self.redactor:
                event = replace(event, message=self.redactor.scrub(event.message))
            self.timeline.add(event)

    def _control(self, message: str, probe_id: str | None = None) -> None:
        self._event(EventKind.CONTROL, message, probe_id)

    def _wake(self, probe_id: str) -> None:
        waker = self._wakers.get(probe_id)
        if waker is not None and not waker.done():
            waker.set_result(None)

    async def _wait(self, probe_id: str, deadline: float | None) -> None:
        """Until `deadline` (monotonic; None = no deadline) or a wake-up, whichever is first."""
        if probe_id in self._refresh:
            return
        loop = asyncio.get_running_loop()
        waker: asyncio.Future[None] = loop.create_future()
        self._wakers[probe_id] = waker
        try:
            if deadline is None:
                await waker
                return
            delay = deadline - self.clock.monotonic()
            if delay <= 0:
                return
            if isinstance(self.clock, SystemClock):
                handle = loop.call_later(delay, _resolve, waker)
                try:
                    await waker
                finally:
                    handle.cancel()
            else:
                sleeper = asyncio.ensure_future(self.clock.sleep(delay))
                try:
                    await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
        finally:
            del self._wakers[probe_id]

    async def _run(self, probe_id: str, source: Source) -> None:
        tracker = self._trackers[probe_id]
        interval = tracker.interval
        timeout = self.config.timeout_of(tracker.probe)
        clock = self.clock
        while True:
            try:
                await self._wait(probe_id, None if self._paused else tracker.next_poll_at)
                requested = probe_id in self._refresh
                due = tracker.next_poll_at
                if not requested and (
                    self._paused or (due is not None and clock.monotonic() < due)
                ):
                    continue
                started = clock.monotonic()
                outcome = await poll_once(source, timeout, clock)
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    # stop() asked while the poll ran and a client library swallowed it
                    raise asyncio.CancelledError
                ended = clock.monotonic()
                self._refresh.discard(probe_id)
                if isinstance(outcome, ProbeError):
                    errors = tracker.consecutive_errors + 1
                    tracker.next_poll_at = ended + backoff_delay(interval, errors, self._rng)
                else:
                    slots = math.floor((ended - started) / interval) + 1 if interval > 0 else 1
                    tracker.next_poll_at = started + slots * interval
                self._ingest(probe_id, outcome, ended - started)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._event(EventKind.ERROR, f"poll loop: {short_reason(exc)}", probe_id)
                self._refresh.discard(probe_id)
                tracker.next_poll_at = clock.monotonic() + max(interval, 1.0)

    async def _tick_loop(self) -> None:
        while True:
            await self.clock.sleep(TICK)
            self._heartbeat = self.clock.monotonic()
            try:
                self._apply_tick()
            except Exception as exc:
                self._event(EventKind.ERROR, f"tick: {short_reason(exc)}")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
