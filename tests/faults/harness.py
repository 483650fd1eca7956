"""The fault matrix: one probe against a real server process, through the real engine.

For a backend, `run_fault_matrix` checks the cases the backends issue names: connection
refused, server stopped mid-run, server hung (SIGSTOP) past the timeout, and server back.
The engine keeps running throughout; each fault must show as error or stale with a reason
within timeout + interval (plus scheduling slack), and the panel must recover by itself
within the backoff cap. Rows go to $OPSTUI_FAULT_REPORT (JSON lines) when it is set, which
is how the table in the closing note is made.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from opstui.config.models import Config
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.states import State
from tests.servers.process import ServerProcess

SLACK = 3.0
"""Seconds allowed beyond the design's bound for scheduling on a loaded 2-core machine."""

BACKOFF_CAP = 30.0


@dataclass
class Outcome:
    backend: str
    case: str
    state: str
    reason: str
    seconds: float
    bound: float


def _report(outcome: Outcome) -> None:
    path = os.environ.get("OPSTUI_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(outcome)) + "\n")


async def _wait_state(
    engine: Engine, probe_id: str, accept: Callable[[ProbeSnapshot], bool], bound: float, what: str
) -> tuple[ProbeSnapshot, float]:
    started = time.monotonic()
    while True:
        snapshot = engine.snapshot(probe_id)
        if accept(snapshot):
            return snapshot, time.monotonic() - started
        if time.monotonic() - started > bound:
            raise AssertionError(
                f"{what}: still {snapshot.state.value} ({snapshot.error}) after {bound:g}s"
            )
        await asyncio.sleep(0.05)


def _failed(s: ProbeSnapshot) -> bool:
    return s.state in (State.ERROR, State.STALE)


def _healthy(s: ProbeSnapshot) -> bool:
    return s.state not in (State.ERROR, State.STALE, State.INIT)


async def run_fault_matrix(
    backend: str,
    server: ServerProcess,
    config: Config,
    refused_config: Config,
    probe_id: str = "probe",
) -> list[Outcome]:
    """Drive every fault case; returns the rows (also asserted here)."""
    probe = config.probe(probe_id)
    interval, timeout = config.interval_of(probe), config.timeout_of(probe)
    detect = timeout + interval + SLACK
    recover = BACKOFF_CAP + interval + timeout + SLACK
    rows: list[Outcome] = []

    def record(case: str, snap: ProbeSnapshot, seconds: float, bound: float) -> None:
        reason = snap.error or ("stale" if snap.state is State.STALE else "")
        row = Outcome(backend, case, snap.state.value, reason, round(seconds, 2), round(bound, 1))
        rows.append(row)
        _report(row)

    refused_engine = Engine(refused_config)
    await refused_engine.start()
    try:
        snap, took = await _wait_state(
            refused_engine, probe_id, lambda s: s.state is State.ERROR, detect, "refused"
        )
        assert snap.error, "an error state must say why"
        record("connection refused", snap, took, detect)
    finally:
        await refused_engine.stop()

    engine = Engine(config)
    await engine.start()
    try:
        snap, took = await _wait_state(engine, probe_id, _healthy, detect, "first reading")
        record("healthy", snap, took, detect)

        await asyncio.to_thread(server.stop)
        snap, took = await _wait_state(engine, probe_id, _failed, detect, "stopped mid-run")
        if snap.state is State.STALE:
            snap, took = await _wait_state(
                engine, probe_id, lambda s: s.state is State.ERROR, detect, "stopped: error"
            )
        assert snap.error and snap.reading is not None, "last value must be kept with its reason"
        record("stopped mid-run", snap, took, detect)

        await asyncio.to_thread(server.start)
        snap, took = await _wait_state(engine, probe_id, _healthy, recover, "back after stop")
        record("back after stop", snap, took, recover)

        await asyncio.to_thread(server.hang)
        try:
            snap, took = await _wait_state(engine, probe_id, _failed, detect, "hung (SIGSTOP)")
            record("hung: first sign", snap, took, detect)
            snap, took = await _wait_state(
                engine, probe_id, lambda s: s.state is State.ERROR, detect, "hung: error"
            )
            assert snap.reading is not None, "the last value is kept while hung"
            record("hung past timeout", snap, took, detect)
        finally:
            await asyncio.to_thread(server.unhang)
        snap, took = await _wait_state(engine, probe_id, _healthy, recover, "back after hang")
        record("back after hang", snap, took, recover)
    finally:
        await engine.stop()
    return rows
