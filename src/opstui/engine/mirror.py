"""MirrorEngine: the Prometheus-backed view's engine, an Engine that polls no backend.

It reads what `opstui export` published (through Prometheus, Thanos or Mimir) and draws it:
the state is the exporter's own verdict, word for word, so every viewer agrees with the
exporter and with a direct view of the same config; values, latency and the last good
reading's time come from the same series. One instant query per refresh serves every
probe; sparklines start from a range query.

Freshness is Prometheus' business: when an exporter stops, Prometheus marks its series
stale at the next failed scrape, they drop out of instant queries, and the panel goes
STALE at once, keeping the last reading dimmed; it never keeps the last colour. When
Prometheus itself cannot be read, panels keep their last picture until it is older than
2 x interval + query timeout, then go STALE with the reason.

Runbook actions do not come through here: the app's runner executes them directly, with
the same confirmation and audit, through the engine's client pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from dataclasses import dataclass

from opstui.config.kinds.prometheus import ViaPrometheus
from opstui.config.models import Config
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.events import EventKind
from opstui.engine.scheduler import Engine, cancel_and_wait, short_reason
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.base import ProbeError, Reading
from opstui.sources.mirror import MirroredProbe, MirrorFrame, Origin, PrometheusMirror
from opstui.states import Severity, State

ABSENT = "gone from Prometheus: exporter down or not scraped"
_SEVERITY = {State.OK: Severity.OK, State.WARN: Severity.WARN, State.CRIT: Severity.CRIT}
BACKFILL_MAX_SECONDS = 3600.0
MAX_FACTS = 8


def fact_text(value: float) -> str:
    """A field as a panel fact: `1,204`, `0.157`, `NaN`."""
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


@dataclass(slots=True)
class _Mirrored:
    """What the view remembers of one probe between frames."""

    origin: Origin | None = None
    reading: Reading | None = None
    reading_key: tuple[object, ...] | None = None
    last_success: float | None = None
    errors: dict[str, float] = dataclasses.field(default_factory=dict)
    error: str | None = None
    consecutive_errors: int = 0
    next_sample_at: float = -math.inf


def _reading_key(probe: MirroredProbe) -> tuple[object, ...]:
    return (
        probe.last_success,
        tuple(probe.values.items()),
        probe.latency_s,
        probe.state is State.NODATA,
    )


def mirrored_reading(probe: MirroredProbe, judged: str | None = None) -> Reading:
    """The exporter's numbers as a Reading: `value` is the judged value, the other numeric
    fields become facts (text fields, tables and components do not travel through
    Prometheus). The judged field and the latency are not repeated as facts."""
    fields = {name: value for name, value in probe.values.items() if name != "value"}
    hidden = {"latency_ms", judged}
    facts = [(name.replace("_", " "), fact_text(v)) for name, v in fields.items()
             if name not in hidden]
    return Reading(
        value=probe.values.get("value"),
        fields=fields,
        latency_ms=probe.latency_s * 1000.0 if probe.latency_s is not None else None,
        no_data="no data, as the exporter reports" if probe.state is State.NODATA else None,
        facts=tuple(facts[:MAX_FACTS]),
    )


class MirrorEngine(Engine):
    """Engine's interface (snapshots, subscribe, timeline, refresh, pause, clients) over
    frames read from Prometheus; see the module docstring. `mirror` is injectable for
    tests; `apply()` takes a frame as if it had just been read."""

    def __init__(
        self,
        config: Config,
        via: ViaPrometheus,
        *,
        clock: Clock | None = None,
        mirror: PrometheusMirror | None = None,
    ) -> None:
        super().__init__(config, clock=clock, sources={})
        self.via = via
        self._mirror = mirror
        self._own_client = mirror is None
        self._memory = {probe.id: _Mirrored() for probe in config.probes}
        intervals = [config.interval_of(probe) for probe in config.probes]
        self.period = max(1.0, min(intervals)) if intervals else max(1.0, config.refresh)
        """Seconds between frames: the shortest probe interval, at least one second."""
        self._reader: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._frame_at: float | None = None
        self.fetch_error: str | None = None
        """Why the last read of Prometheus failed; None while it answers."""
        self.frames = 0

    @property
    def origin(self) -> str:
        return f"via prometheus {self._shown_url()}"

    @property
    def origin_error(self) -> str | None:
        return self.fetch_error

    def _shown_url(self) -> str:
        if self._mirror is not None:
            return self._mirror.shown_url
        from opstui.config.types import redact

        return redact(self.via.url).rstrip("/")

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        self._adopt_loop()
        if self._mirror is None:
            from opstui.sources.prometheus import PrometheusClient

            self._mirror = PrometheusMirror(PrometheusClient(self.via.connection()), self.via)
        self._reader = asyncio.create_task(self._run_mirror(), name="mirror")
        self._ticker = asyncio.create_task(self._tick_loop(), name="engine-ticker")
        count = len(self._order)
        self._control(
            f"reading {count} probe{'s' if count != 1 else ''} {self.origin}, no backend polled"
        )
        missing = self.config.deferred_secrets
        if missing:
            self._event(
                EventKind.NOTE,
                f"started without {len(missing)} secret{'s' if len(missing) > 1 else ''} "
                f"({'; '.join(missing)}): actions that need them will fail",
            )

    async def stop(self) -> None:
        if self._running:
            self._running = False
            tasks = [t for t in (self._reader, self._ticker) if t is not None]
            self._reader = self._ticker = None
            await cancel_and_wait(tasks)
            self._control("stopped reading Prometheus")
        if self._own_client and self._mirror is not None:
            with contextlib.suppress(Exception):
                await self._mirror.client.aclose()
        await self._pool.aclose()

    # --- control -----------------------------------------------------------------------------

    # pause(), resume(), refresh() and tick() are the Engine's (callable from any thread);
    # what they do here, on the home loop:

    def _apply_pause(self) -> None:
        self._control("paused reading Prometheus")
        self._republish(force=True)

    def _apply_resume(self) -> None:
        self._control("resumed reading Prometheus")
        self._wakeup.set()
        self._republish(force=True)

    def _apply_refresh(self, probe_id: str | None) -> None:
        """Read Prometheus now: one query answers for every probe."""
        self._wakeup.set()
        self._control(f"refresh {probe_id}" if probe_id else "refresh all", probe_id)

    def ingest(self, probe_id: str, outcome: Reading | ProbeError) -> ProbeSnapshot:
        raise TypeError("the Prometheus-backed view takes frames (apply), not poll outcomes")

    def _apply_tick(self) -> None:
        """Turn panels STALE once Prometheus has been unreadable for too long."""
        self._republish(force=False)

    # --- frames ------------------------------------------------------------------------------

    async def _run_mirror(self) -> None:
        """A frame every period, at a fixed rate from each read's start (a slow Prometheus
        costs frames, never doubles them up)."""
        first = True
        while True:
            started = self.clock.monotonic()
            if not self._paused or self._wakeup.is_set():
                self._wakeup.clear()
                try:
                    await self.read_once(backfill=first)
                    first = first and self.fetch_error is not None
                except Exception as exc:  # a bug must not end the view
                    self._event(EventKind.ERROR, f"mirror: {short_reason(exc)}")
            elapsed = self.clock.monotonic() - started
            await self._sleep(self.period - elapsed % self.period)

    async def _sleep(self, seconds: float) -> None:
        """Until the next frame is due or a refresh/resume asks for one now."""
        waiter = asyncio.ensure_future(self._wakeup.wait())
        if isinstance(self.clock, SystemClock):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), seconds)
            waiter.cancel()
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()

    async def read_once(self, *, backfill: bool = False) -> None:
        """One frame from Prometheus (and, the first time, the sparklines' history)."""
        mirror = self._mirror
        if mirror is None:
            raise RuntimeError("MirrorEngine.read_once before start()")
        try:
            frame = await mirror.frame()
        except ProbeError as exc:
            self._frame_failed(exc.reason)
            return
        if backfill:
            await self._backfill(mirror, frame)
        self.apply(frame)

    def _frame_failed(self, reason: str) -> None:
        reason = self.redactor.scrub(reason)
        text = f"Prometheus: {reason}"
        if self.fetch_error != text:
            self._event(EventKind.ERROR, f"cannot read {self._shown_url()}: {reason}")
        self.fetch_error = text
        self._republish(force=False)

    async def _backfill(self, mirror: PrometheusMirror, frame: MirrorFrame) -> None:
        """Fill empty sparklines from a range query per distinct interval (one query for a
        config whose probes share one refresh)."""
        groups: dict[float, list[str]] = {}
        for probe in self.config.probes:
            if probe.id in frame.probes:
                groups.setdefault(self.config.interval_of(probe), []).append(probe.id)
        for interval, probe_ids in groups.items():
            seconds = min(BACKFILL_MAX_SECONDS, self._capacity(probe_ids) * interval)
            try:
                points = await mirror.history(probe_ids, seconds, interval)
            except ProbeError as exc:
                self._event(EventKind.ERROR, f"sparkline history: {exc.reason}")
                return
            for probe_id in probe_ids:
                chosen = frame.probes[probe_id].origin
                series = points.get((probe_id, chosen))
                if series is None:
                    series = next((v for (p, _), v in points.items() if p == probe_id), None)
                if series:
                    self._fill(probe_id, series, interval)

    def _capacity(self, probe_ids: list[str]) -> int:
        return max(self._trackers[p].history.capacity for p in probe_ids)

    def _fill(self, probe_id: str, points: list[tuple[float, float]], interval: float) -> None:
        history = self._trackers[probe_id].history
        if len(history):
            return
        now, wall = self.clock.monotonic(), self.clock.wall()
        cutoff = wall - interval / 2  # the frame about to be applied adds the newest point
        kept = [(at, value) for at, value in points if at <= cutoff]
        for at, value in kept[-(history.capacity - 1) :]:
            history.append(now - (wall - at), at, None if math.isnan(value) else value)

    def apply(self, frame: MirrorFrame) -> None:
        """Take a frame as the current truth; publish every probe whose picture changed."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        self._frame_at = now
        self.frames += 1
        if self.fetch_error is not None:
            self._control(f"reading {self._shown_url()} again")
        self.fetch_error = None
        for probe in self.config.probes:
            mirrored = frame.probes.get(probe.id)
            fresh = self._remember(probe.id, mirrored)
            self._sample(probe.id, mirrored, now, wall)
            self._publish(probe.id, self._picture(probe.id, mirrored, now, wall), force=fresh)

    def _remember(self, probe_id: str, mirrored: MirroredProbe | None) -> bool:
        """Update what is kept of `probe_id`; True when a new good reading arrived."""
        memory = self._memory[probe_id]
        if mirrored is None:
            return False
        fresh = False
        key = _reading_key(mirrored)
        if mirrored.last_success is not None and key != memory.reading_key:
            fresh = mirrored.last_success != memory.last_success
            value_key = getattr(self._trackers[probe_id].probe, "value", None)
            judged = value_key if isinstance(value_key, str) else None
            memory.reading = mirrored_reading(mirrored, judged)
            memory.reading_key = key
            memory.last_success = mirrored.last_success
        new_errors = {
            reason: count - memory.errors.get(reason, 0.0)
            for reason, count in mirrored.errors.items()
            if count > memory.errors.get(reason, 0.0)
        }
        first_look = memory.origin is None or memory.origin != mirrored.origin
        if new_errors and not first_look:
            memory.error = max(new_errors, key=lambda reason: new_errors[reason])
        if mirrored.state is State.ERROR:
            added = int(sum(new_errors.values())) if not first_look else 0
            memory.consecutive_errors = max(1, memory.consecutive_errors + added)
            if memory.error is None and mirrored.errors:
                memory.error = max(mirrored.errors, key=lambda r: mirrored.errors[r])
        else:
            memory.consecutive_errors = 0
        memory.errors = dict(mirrored.errors)
        memory.origin = mirrored.origin
        return fresh

    def _sample(
        self, probe_id: str, mirrored: MirroredProbe | None, now: float, wall: float
    ) -> None:
        """One sparkline point per probe interval, as a range query would step: the value as
        of now, a gap while the series are absent or the probe is in error."""
        memory = self._memory[probe_id]
        if now < memory.next_sample_at:
            return
        tracker = self._trackers[probe_id]
        memory.next_sample_at = now + tracker.interval * 0.9
        value = None
        if mirrored is not None and mirrored.state not in (State.ERROR, State.NODATA):
            value = mirrored.values.get("value")
        tracker.history.append(now, wall, value)

    def _picture(
        self, probe_id: str, mirrored: MirroredProbe | None, now: float, wall: float
    ) -> ProbeSnapshot:
        tracker = self._trackers[probe_id]
        probe = tracker.probe
        memory = self._memory[probe_id]
        reading_at = (
            now - max(0.0, wall - memory.last_success) if memory.last_success is not None else None
        )
        base = ProbeSnapshot(
            probe_id=probe.id,
            kind=probe.kind,
            title=probe.display_title,
            unit=probe.unit,
            state=State.INIT,
            at=now,
            reading=memory.reading,
            reading_at=reading_at,
            reading_wall=memory.last_success,
            paused=self._paused,
            runbook=probe.runbook,
            history=tracker.history,
        )
        if mirrored is None or mirrored.state is None:
            if self._frame_at is None and self.fetch_error is None:
                return base  # nothing read yet: still INIT
            return dataclasses.replace(base, state=State.STALE, error=ABSENT)
        state = mirrored.state
        error = None
        if state is State.ERROR:
            error = memory.error or "error (reason not yet seen in opstui_probe_errors_total)"
        return dataclasses.replace(
            base,
            state=state,
            severity=_SEVERITY.get(state),
            error=error,
            no_data=(memory.reading.no_data if memory.reading is not None else None)
            if state is State.NODATA
            else None,
            consecutive_errors=memory.consecutive_errors,
            flapping=state is State.FLAPPING,
        )

    def _republish(self, *, force: bool) -> None:
        """Re-draw from what is known: ages move on, pause shows, and once Prometheus has not
        answered for 2 x interval + timeout a panel turns STALE with the reason."""
        now = self.clock.monotonic()
        for pid in self._order:
            snapshot = self._snapshots[pid]
            allowance = 2.0 * self._trackers[pid].interval + self.via.timeout
            last = self._frame_at
            overdue = self.fetch_error is not None and (last is None or now - last > allowance)
            if overdue and snapshot.state is not State.STALE:
                updated = dataclasses.replace(
                    snapshot,
                    at=now,
                    paused=self._paused,
                    state=State.STALE,
                    severity=None,
                    error=self.fetch_error,
                )
            else:
                updated = dataclasses.replace(snapshot, at=now, paused=self._paused)
            self._publish(pid, updated, force=force)

    def cause(self, probe_id: str, snapshot: ProbeSnapshot) -> str | None:
        if snapshot.state in (State.ERROR, State.STALE):
            return snapshot.error
        if snapshot.state is State.NODATA:
            return snapshot.no_data
        if snapshot.state in (State.WARN, State.CRIT, State.PENDING) and snapshot.value is not None:
            return f"value {fact_text(snapshot.value)}"
        return None
