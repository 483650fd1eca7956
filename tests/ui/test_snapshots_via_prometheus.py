"""SVG snapshots of the Prometheus-backed view (`opstui --via-prometheus`) at 80x24 and 160x48.

A MirrorEngine on a ManualClock takes frames shaped like Prometheus' answer to the frame
query (tests/engine/test_mirror.py builds them the same way): an OK health probe, a queue in
WARN, a probe the exporter reports in ERROR, and one whose series went stale in Prometheus.
The header must say where the numbers come from; a stale panel must not keep its colour.
Update after a deliberate change with `--snapshot-update` on the whole file, then look at the
SVGs: nothing may be clipped at 80x24.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.mirror import MirrorEngine
from opstui.sources.mirror import parse_frame
from opstui.states import State
from opstui.ui.app import OpstuiApp
from tests.engine.test_mirror import probe_series

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
SnapCompare = Callable[..., bool]
STEPS = 40
STEP = 5.0


def mirrored_config() -> Config:
    return Config.model_validate(
        {
            "title": "checkout",
            "environment": "production",
            "refresh": "5s",
            "connections": {
                "app": {"kind": "http", "base_url": "http://127.0.0.1:9"},
                "jobs": {"kind": "redis", "url": "redis://127.0.0.1:9/0"},
            },
            "probes": [
                {"id": "api", "title": "API health", "kind": "health", "connection": "app",
                 "path": "/health"},
                {"id": "emails", "title": "emails queue", "kind": "queue", "connection": "jobs",
                 "flavor": "bullmq", "queue": "emails",
                 "thresholds": {"above": {"warn": 1000, "crit": 10000}}},
                {"id": "billing", "title": "billing health", "kind": "health",
                 "connection": "app", "path": "/billing/health"},
                {"id": "legacy", "title": "legacy health", "kind": "health",
                 "connection": "app", "path": "/legacy/health"},
            ],
            "via_prometheus": {"url": "http://prometheus.internal:9090", "match": 'job="opstui"'},
        }
    )


def mirrored_view(*, prometheus_down: bool = False) -> MirrorEngine:
    """The view after STEPS frames; the last frame has lost legacy's series."""
    clock = ManualClock()
    config = mirrored_config()
    assert config.via_prometheus is not None
    engine = MirrorEngine(config, config.via_prometheus, clock=clock)
    for step in range(STEPS):
        wall = clock.wall()
        latency = round(12 + 6 * (1 + math.sin(step / 4)), 1)
        waiting = float(400 + 40 * step)
        last = step == STEPS - 1
        result = [
            *probe_series("api", "ok", values={"value": latency, "http_status": 200.0,
                                               "latency_ms": latency},
                          last_success=wall - 1, latency=latency / 1000),
            *probe_series("emails", "warn" if waiting > 1000 else "ok", kind="queue",
                          values={"value": waiting, "waiting": waiting, "active": 12.0,
                                  "failed": 3.0, "completed_per_s": 4.5},
                          last_success=wall - 2, latency=0.003),
            *probe_series("billing", "error", errors={"HTTP 503": float(step + 1)},
                          values={"value": 80.0}, last_success=wall - 300),
        ]
        if not last:
            result += probe_series("legacy", "ok", values={"value": 30.0},
                                   last_success=wall - 1, latency=0.03)
        engine.apply(parse_frame(result, wall))
        clock.advance(STEP)
    if prometheus_down:
        engine._frame_failed("refused")  # what read_once records when the query fails
        clock.advance(20.0)
        engine.tick()
    return engine


def test_the_scenario_reaches_the_states_it_claims() -> None:
    engine = mirrored_view()
    states = {s.probe_id: s.state for s in engine.snapshots()}
    assert states == {"api": State.OK, "emails": State.WARN, "billing": State.ERROR,
                      "legacy": State.STALE}
    down = mirrored_view(prometheus_down=True)
    assert {s.state for s in down.snapshots()} == {State.STALE}


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_via_prometheus(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(OpstuiApp(mirrored_view(), poll=False), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_with_prometheus_unreachable(
    snap_compare: SnapCompare, size: tuple[int, int]
) -> None:
    app = OpstuiApp(mirrored_view(prometheus_down=True), poll=False)
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_detail_via_prometheus(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def open_detail(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OpstuiApp)
        app.open_detail("emails")
        await pilot.pause()

    app = OpstuiApp(mirrored_view(), poll=False)
    assert snap_compare(app, run_before=open_detail, terminal_size=size)
