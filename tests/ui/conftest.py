"""UI test fixtures: SVG snapshots under the repo's snapshots/ folder, a fixed time zone, and a
deterministic dashboard scenario (8 health probes, one in every state) built with a ManualClock
and readings injected through engine.ingest, so every frame is the same on every run."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.base import AbstractSyrupyExtension
from syrupy.location import PyTestLocation

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Component, ProbeError, Reading
from opstui.states import Severity

SNAPSHOT_DIR = Path(__file__).resolve().parents[2] / "snapshots"


class RootSVGExtension(SVGImageExtension):
    """SVG snapshots in <repo>/snapshots/<test module>/ instead of tests/ui/__snapshots__."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOT_DIR / test_location.basename)


class RootSnapshotAssertion(SnapshotAssertion):
    """snap_compare asks for SVGImageExtension; hand it the one that writes under snapshots/."""

    def use_extension(
        self, extension_class: type[AbstractSyrupyExtension] | None = None
    ) -> SnapshotAssertion:
        if extension_class is SVGImageExtension:
            extension_class = RootSVGExtension
        return super().use_extension(extension_class)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return RootSnapshotAssertion(
        update_snapshots=snapshot.update_snapshots,
        extension_class=snapshot.extension_class,
        test_location=snapshot.test_location,
        session=snapshot.session,
    )


@pytest.fixture(autouse=True)
def utc_clock_face() -> Iterator[None]:
    """The header clock shows local time; pin the zone so snapshots match everywhere."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


# --- the scenario ---------------------------------------------------------------------------

SCENARIO_PROBES: list[dict[str, Any]] = [
    {
        "id": "api",
        "title": "API health",
        "path": "/health",
        "thresholds": {"above": {"warn": 300, "crit": 800}},
    },
    {
        "id": "checkout",
        "title": "Checkout",
        "path": "/health",
        "thresholds": {"above": {"warn": 200, "crit": 900}, "for": "2m"},
    },
    {"id": "search", "title": "Search", "path": "/health"},
    {"id": "payments", "title": "Payments gateway", "path": "/health", "runbook": "payments"},
    {"id": "auth", "title": "Auth", "path": "/health"},
    {"id": "billing", "title": "Billing", "path": "/health", "interval": "10s"},
    {"id": "reports", "title": "Reports", "path": "/health"},
    {"id": "worker", "title": "Queue worker", "path": "/health"},
]


def scenario_config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "title": "Anclora WhatsApp",
        "environment": "production",
        "refresh": "1m",
        "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:9"}},
        "probes": [{"kind": "health", "connection": "app", **p} for p in SCENARIO_PROBES],
        "views": [
            {
                "name": "Overview",
                "rows": [
                    ["api", "checkout", "search", "payments"],
                    ["auth", "billing", "reports", "worker"],
                ],
            },
            {"name": "Money", "rows": [["payments", "billing"], ["checkout"]]},
        ],
    }
    data.update(overrides)
    return Config.model_validate(data)


def _latency(step: int, base: float, swing: float) -> float:
    return round(base + swing * (1 + math.sin(step / 3.0)) / 2, 1)


OK_COMPONENTS = (
    Component("postgres", Severity.OK, "up"),
    Component("redis", Severity.OK, "up"),
)
PAYMENT_COMPONENTS = (
    Component("postgres", Severity.OK, "up"),
    Component("stripe", Severity.CRIT, "down"),
    Component("redis", Severity.OK, "up"),
    Component("ledger", Severity.WARN, "degraded"),
    Component("fraud-api", Severity.OK, "up"),
    Component("mailer", Severity.OK, "up"),
)


def populate(engine: Engine, clock: ManualClock, steps: int = 40) -> None:
    """Every probe of the scenario into its state, with history for the sparklines."""
    for step in range(steps):
        clock.advance(5.0)
        last = step == steps - 1
        engine.ingest(
            "api",
            Reading(
                _latency(step, 35, 20),
                latency_ms=_latency(step, 35, 20),
                verdict=Severity.OK,
                components=OK_COMPONENTS,
            ),
        )
        checkout = 260.0 if step >= steps - 4 else _latency(step, 90, 60)
        engine.ingest("checkout", Reading(checkout, verdict=Severity.OK))
        engine.ingest(
            "search",
            Reading(
                _latency(step, 140, 80),
                verdict=Severity.WARN if last else Severity.OK,
                components=(
                    Component(
                        "index",
                        Severity.WARN if last else Severity.OK,
                        "degraded" if last else "up",
                    ),
                ),
            ),
        )
        engine.ingest(
            "payments",
            Reading(
                _latency(step, 400, 300),
                verdict=Severity.CRIT if last else Severity.OK,
                components=PAYMENT_COMPONENTS if last else OK_COMPONENTS,
            ),
        )
        engine.ingest(
            "auth",
            Reading(_latency(step, 20, 10), verdict=Severity.OK)
            if step < steps - 3
            else ProbeError("connection refused"),
        )
        if step < steps - 12:
            engine.ingest("billing", Reading(_latency(step, 60, 30), verdict=Severity.OK))
        engine.ingest(
            "reports",
            Reading(_latency(step, 50, 5), verdict=Severity.OK)
            if not last
            else Reading(None, no_data="empty body"),
        )
        flip = Severity.CRIT if step % 2 else Severity.OK
        engine.ingest("worker", Reading(_latency(step, 80, 40), verdict=flip))
    engine.tick()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def scenario(clock: ManualClock) -> Engine:
    engine = Engine(scenario_config(), clock=clock)
    populate(engine, clock)
    return engine
