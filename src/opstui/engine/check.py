"""One-shot polling for `opstui check`: every probe once, concurrently, same rules as the TUI.

Each probe is polled under its own timeout through the same poll_once and ProbeTracker the
Engine uses, so a panel and `opstui check` can never disagree about a state; outcomes go
through the same scrub_outcome, so `check` text and JSON carry no secret either. Shared clients are
closed before returning. Rendering and exit codes belong to the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping

from opstui.config.models import Config
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.scheduler import poll_once, scrub_outcome, short_reason
from opstui.engine.snapshot import ProbeSnapshot
from opstui.engine.tracker import ProbeTracker
from opstui.redaction import redactor_for
from opstui.sources.base import ProbeError, Reading, Source
from opstui.sources.registry import ClientPool, build_source


async def check_once(
    config: Config,
    *,
    sources: Mapping[str, Source] | None = None,
    clock: Clock | None = None,
) -> list[ProbeSnapshot]:
    """Poll every probe once and return their snapshots in config order.

    With `sources`, a probe missing from the mapping reports ERROR ("no source"); without,
    sources are built through the registry and a probe whose source cannot be built reports
    ERROR with the reason. Never raises for a probe's failure.
    """
    clock = clock if clock is not None else SystemClock()
    pool = ClientPool()
    try:
        jobs: list[Coroutine[None, None, Reading | ProbeError]] = []
        trackers: list[ProbeTracker] = []
        for probe in config.probes:
            trackers.append(ProbeTracker(probe, interval=config.interval_of(probe)))
            source: Source | None = None
            failure: ProbeError | None = None
            if sources is not None:
                source = sources.get(probe.id)
                if source is None:
                    failure = ProbeError("no source for this probe")
            else:
                try:
                    connection = config.connections[probe.connection]
                    source = build_source(config.effective_probe(probe), connection, pool)
                except Exception as exc:
                    failure = ProbeError(f"cannot start: {short_reason(exc)}")
            jobs.append(_poll_or_fail(source, failure, config.timeout_of(probe), clock))
        outcomes = await asyncio.gather(*jobs)
        now = clock.monotonic()
        wall = clock.wall()
        snapshots = []
        redactor = redactor_for(config)
        for tracker, outcome in zip(trackers, outcomes, strict=True):
            tracker.observe(scrub_outcome(outcome, redactor), now, wall)
            snapshots.append(tracker.evaluate(now))
        return snapshots
    finally:
        await pool.aclose()


async def _poll_or_fail(
    source: Source | None, failure: ProbeError | None, limit: float, clock: Clock
) -> Reading | ProbeError:
    if source is None:
        return failure or ProbeError("no source for this probe")
    return await poll_once(source, limit, clock)
