"""SnapshotCollector over injected snapshots: no polling, readings fed through Engine.ingest."""

from __future__ import annotations

import math

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from opstui.engine.scheduler import Engine
from opstui.export.collector import MAX_REASONS, ErrorCounter, SnapshotCollector
from opstui.sources.base import ProbeError, Reading
from opstui.states import State
from tests.engine.helpers import make_config


def _samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _setup() -> tuple[Engine, SnapshotCollector, CollectorRegistry]:
    engine = Engine(make_config({"id": "api"}, {"id": "db"}), sources={})
    collector = SnapshotCollector(engine)
    registry = CollectorRegistry()
    registry.register(collector)
    return engine, collector, registry


def test_states_values_latency_and_last_success() -> None:
    engine, _, registry = _setup()
    reading = Reading(
        value=12.5,
        fields={"http_status": 200, "healthy": True, "degraded": False, "ratio": math.nan,
                "version": "1.2.3"},
        latency_ms=40.0,
    )
    snap = engine.ingest("api", reading)
    engine.ingest("db", ProbeError("refused"))
    got = _samples(registry)

    for state in State:
        assert got[_key("opstui_probe_state", probe="api", kind="health", state=state.value)] == (
            1.0 if state is State.OK else 0.0
        )
        assert got[_key("opstui_probe_state", probe="db", kind="health", state=state.value)] == (
            1.0 if state is State.ERROR else 0.0
        )
    assert got[_key("opstui_probe_value", probe="api", field="value")] == 12.5
    assert got[_key("opstui_probe_value", probe="api", field="http_status")] == 200.0
    assert got[_key("opstui_probe_value", probe="api", field="healthy")] == 1.0
    assert got[_key("opstui_probe_value", probe="api", field="degraded")] == 0.0
    assert math.isnan(got[_key("opstui_probe_value", probe="api", field="ratio")])
    assert _key("opstui_probe_value", probe="api", field="version") not in got
    assert got[_key("opstui_probe_latency_seconds", probe="api")] == 0.04
    assert snap.reading_wall is not None
    assert got[_key("opstui_probe_last_success_timestamp_seconds", probe="api")] == (
        snap.reading_wall
    )
    assert _key("opstui_probe_latency_seconds", probe="db") not in got
    assert got[_key("opstui_probe_errors_total", probe="db", reason="refused")] == 1.0


def test_errors_counted_per_outcome_and_kept_while_last_reading_stays() -> None:
    engine, _, registry = _setup()
    engine.ingest("api", Reading(value=1.0))
    engine.ingest("api", ProbeError("refused"))
    engine.ingest("api", ProbeError("refused"))
    engine.ingest("api", ProbeError("timeout after 2s"))
    engine.tick()  # re-publishing without a new poll counts nothing
    engine.ingest("api", Reading(value=2.0))
    engine.ingest("api", ProbeError("refused"))
    got = _samples(registry)
    assert got[_key("opstui_probe_errors_total", probe="api", reason="refused")] == 3.0
    assert got[_key("opstui_probe_errors_total", probe="api", reason="timeout after 2s")] == 1.0
    assert got[_key("opstui_probe_state", probe="api", kind="health", state="error")] == 1.0
    assert got[_key("opstui_probe_value", probe="api", field="value")] == 2.0  # last good


def test_reasons_are_bounded_per_probe() -> None:
    engine, _, registry = _setup()
    for n in range(MAX_REASONS + 5):
        engine.ingest("api", ProbeError(f"ValueError: bad payload {n}"))
    engine.ingest("db", ProbeError("refused"))
    got = _samples(registry)
    api = {dict(labels)["reason"]: v for (name, labels), v in got.items()
           if name == "opstui_probe_errors_total" and dict(labels)["probe"] == "api"}
    assert len(api) == MAX_REASONS + 1
    assert api["other"] == 5.0
    assert sum(api.values()) == MAX_REASONS + 5
    assert got[_key("opstui_probe_errors_total", probe="db", reason="refused")] == 1.0


def test_scrapes_do_not_grow_state_and_close_stops_counting() -> None:
    engine, collector, registry = _setup()
    engine.ingest("api", ProbeError("refused"))
    first = generate_latest(registry)
    for _ in range(50):
        assert generate_latest(registry) == first
    collector.close()
    engine.ingest("api", ProbeError("refused"))
    assert collector.errors.counts() == {"api": {"refused": 1}}


def test_error_counter_without_engine() -> None:
    counter = ErrorCounter(max_reasons=1)
    engine = Engine(make_config({"id": "api"}), sources={})
    engine.subscribe(counter.observe)
    engine.ingest("api", ProbeError("a"))
    engine.ingest("api", ProbeError("b"))
    assert counter.counts() == {"api": {"a": 1, "other": 1}}
