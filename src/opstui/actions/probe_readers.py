"""ProbeReaders: how executors and templates see probes, with an engine (TUI) or without.

EngineProbeReader reads the running engine's snapshots and, for `fresh`, asks the engine to
poll now and waits for the snapshot that poll publishes. PollingProbeReader serves `opstui
run`, which has no engine: `fresh` polls the probe once through the registry's source and
the same ProbeTracker rules the engine uses, one tracker per probe so states carry over.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from opstui.config.models import Config
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.scheduler import poll_once, short_reason
from opstui.engine.snapshot import ProbeSnapshot
from opstui.engine.tracker import ProbeTracker
from opstui.sources.base import ProbeError, Reading, Source
from opstui.sources.registry import ClientPool, build_source

if TYPE_CHECKING:
    from opstui.engine.scheduler import Engine


def _is_newer(snapshot: ProbeSnapshot, before: ProbeSnapshot) -> bool:
    """True when `snapshot` carries the outcome of a poll that `before` did not."""
    return (
        snapshot.reading is not before.reading
        or snapshot.consecutive_errors != before.consecutive_errors
    )


class EngineProbeReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def current(self, probe_id: str) -> ProbeSnapshot | None:
        try:
            return self.engine.snapshot(probe_id)
        except KeyError:
            return None

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        """Refresh the probe and wait for the snapshot its poll publishes (the caller bounds
        the wait: a watch step has its own timeout)."""
        before = self.engine.snapshot(probe_id)
        future: asyncio.Future[ProbeSnapshot] = asyncio.get_running_loop().create_future()

        def listener(snapshot: ProbeSnapshot) -> None:
            if snapshot.probe_id == probe_id and not future.done() and _is_newer(snapshot, before):
                future.set_result(snapshot)

        unsubscribe = self.engine.subscribe(listener)
        try:
            self.engine.refresh(probe_id)
            return await future
        finally:
            unsubscribe()


class PollingProbeReader:
    def __init__(self, config: Config, pool: ClientPool, *, clock: Clock | None = None) -> None:
        self.config = config
        self.pool = pool
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._trackers: dict[str, ProbeTracker] = {}
        self._sources: dict[str, Source | ProbeError] = {}
        self._latest: dict[str, ProbeSnapshot] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def current(self, probe_id: str) -> ProbeSnapshot | None:
        return self._latest.get(probe_id)

    def _source(self, probe_id: str) -> Source | ProbeError:
        found = self._sources.get(probe_id)
        if found is None:
            probe = self.config.probe(probe_id)
            try:
                connection = self.config.connections[probe.connection]
                found = build_source(self.config.effective_probe(probe), connection, self.pool)
            except Exception as exc:
                found = ProbeError(f"cannot start: {short_reason(exc)}")
            self._sources[probe_id] = found
        return found

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        """Poll once now (KeyError for an unknown probe); concurrent calls share no poll."""
        probe = self.config.probe(probe_id)
        lock = self._locks.setdefault(probe_id, asyncio.Lock())
        async with lock:
            tracker = self._trackers.get(probe_id)
            if tracker is None:
                tracker = ProbeTracker(probe, interval=self.config.interval_of(probe))
                self._trackers[probe_id] = tracker
            source = self._source(probe_id)
            outcome: Reading | ProbeError
            if isinstance(source, ProbeError):
                outcome = source
            else:
                outcome = await poll_once(source, self.config.timeout_of(probe), self.clock)
            now = self.clock.monotonic()
            tracker.observe(outcome, now, self.clock.wall())
            snapshot = tracker.evaluate(now)
            self._latest[probe_id] = snapshot
            return snapshot

    async def prime(self) -> None:
        """Poll every probe once, so templates (param defaults) have readings to use."""
        await asyncio.gather(*(self.fresh(p.id) for p in self.config.probes))
