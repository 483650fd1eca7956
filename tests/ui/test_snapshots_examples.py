"""SVG snapshots of each example config's first view (examples/*.yaml, whatever files exist when
the tests are collected) at 80x24 and 160x48: the layout an operator sees on opening it.

Deterministic: every `${VAR}` the file names is set (URLs to a dead loopback address, secrets
to a dummy, other values to the file's own default), polling is off, a ManualClock runs, and
every probe gets a plausible in-band reading of the shape its source produces (the shapes of
tests/ui/test_snapshots_kinds.py), so panels show values and sparklines, not `no reading yet`.
A new example has no snapshot yet: run with `--snapshot-update` and look at the SVGs. An
example that does not validate is skipped here (its own tests report why)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from opstui.config.base import Thresholds
from opstui.config.loader import ConfigError, load_config
from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Component, Reading
from opstui.states import Severity, State
from opstui.ui.app import OpstuiApp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
STEPS = 30
STEP = 5.0
DEAD_HOST = "127.0.0.1:9"
DUMMY_SECRET = "dummy-secret"
KEEP = frozenset({"PATH", "HOME"})
"""Variables that name the machine, not the service: left as they are."""

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def dummy_value(default: str | None) -> str:
    """A URL's host becomes a dead loopback port (user and path kept); a value without a
    default is a secret and gets a dummy; anything else keeps its default."""
    if default is None or default == "":
        return DUMMY_SECRET
    if "://" not in default:
        return default
    parts = urlsplit(default)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@{DEAD_HOST}" if user else DEAD_HOST
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def example_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, default in _REFERENCE.findall(path.read_text(encoding="utf-8")):
        if name not in KEEP:
            env.setdefault(name, dummy_value(default or None))
    return env


def in_band(thresholds: Thresholds | None, typical: float) -> float:
    """A value inside the OK band of `thresholds` (`typical` when there are none)."""
    if thresholds is None:
        return typical
    above = [x for x in (thresholds.above.warn, thresholds.above.crit)] if thresholds.above else []
    below = [x for x in (thresholds.below.warn, thresholds.below.crit)] if thresholds.below else []
    high = min((x for x in above if x is not None), default=None)
    low = max((x for x in below if x is not None), default=None)
    if high is not None and low is not None:
        return (high + low) / 2
    if high is not None:
        # `above: {warn: 0}` (targets down, firing alerts): healthy is none at all.
        return high * 0.5 if high > 0 else 0.0 if high == 0 else high - 1
    if low is not None:
        return low * 1.5 if low > 0 else low + 1
    return typical


TYPICAL: dict[str, float] = {
    "health": 42.0,
    "queue": 120.0,
    "redis_info": 64.0,
    "sql": 18.0,
    "ecs": 2.0,
    "prometheus": 0.25,
    "scrape": 35.0,
}


def reading_for(probe: Any, step: int) -> Reading:
    """A plausible in-band reading for one probe at one step (a gentle wave for sparklines)."""
    kind = str(probe.kind)
    thresholds = probe.thresholds
    wave = 0.85 + 0.15 * (1 + math.sin(step / 3.0)) / 2
    value_name = getattr(probe, "value", None)
    judged = thresholds.field if thresholds is not None and thresholds.field else value_name
    base = in_band(thresholds, TYPICAL.get(kind, 10.0))
    value = round(base * wave, 3) if kind != "ecs" else base
    fields: dict[str, Any] = {"value": value}
    if isinstance(value_name, str):
        fields[value_name] = value
    if isinstance(judged, str):
        fields[judged] = value
    if kind == "health":
        return Reading(
            value,
            latency_ms=value,
            verdict=Severity.OK,
            components=(Component("database", Severity.OK, "up"),),
        )
    if kind == "queue":
        waiting = round(value)
        facts = (("waiting", f"{waiting:,}"), ("active", "4"), ("failed", "2"))
        return Reading(value, fields={"waiting": waiting, "active": 4, "failed": 2, **fields},
                       facts=facts)
    if kind == "ecs":
        desired = max(1, round(value)) if value_name in (None, "running", "desired") else 2
        ecs = {"running": desired, "desired": desired, "pending": 0, "running_ratio": 1.0}
        shown = float(ecs.get(str(value_name), desired))
        return Reading(
            shown,
            fields={**ecs, "rollout": "COMPLETED"},
            facts=(("running", f"{desired}/{desired}"), ("pending", "0"),
                   ("rollout", "COMPLETED")),
        )
    return Reading(value, fields=fields)


def example_engine(config: Config) -> Engine:
    clock = ManualClock()
    engine = Engine(config, clock=clock)
    for step in range(STEPS):
        clock.advance(STEP)
        for probe in config.probes:
            engine.ingest(probe.id, reading_for(probe, step))
    engine.tick()
    return engine


def load_example(path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for name, value in example_env(path).items():
        monkeypatch.setenv(name, value)
    try:
        return load_config(path)
    except ConfigError as exc:
        pytest.skip(f"{path.name} does not validate: {str(exc).splitlines()[0]}")


def test_dummy_values_point_at_loopback() -> None:
    assert dummy_value("https://evolution.example.com/api") == "https://127.0.0.1:9/api"
    assert dummy_value("postgresql://ops@db:5432/app") == "postgresql://ops@127.0.0.1:9/app"
    assert dummy_value(None) == DUMMY_SECRET
    assert dummy_value("production") == "production"


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_readings_are_in_band(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot shows live panels: every probe has a reading judged OK or WARN, none is
    left in init, no data or error (the reading's shape did not fit the probe)."""
    engine = example_engine(load_example(path, monkeypatch))
    states = {s.probe_id: s.state for s in engine.snapshots()}
    assert states
    assert all(state in (State.OK, State.WARN, State.PENDING) for state in states.values()), states


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_example_first_view(
    snap_compare: Callable[..., bool],
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    size: tuple[int, int],
) -> None:
    app = OpstuiApp(example_engine(load_example(path, monkeypatch)), poll=False)
    assert snap_compare(app, terminal_size=size)
