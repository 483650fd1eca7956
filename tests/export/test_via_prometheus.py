"""The issue's acceptance test: a real Prometheus scraping a real `opstui export`.

The exporter polls real backends (local HTTP health servers, a refused port, redis-server);
Debian's prometheus scrapes it every second; the Prometheus-backed view (MirrorEngine) must
show the same states and values as a direct Engine over the same config, turn STALE (keeping
the last reading) when the exporter stops, and STALE with Prometheus' reason when Prometheus
itself stops. Every wait polls with a deadline; no timing is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from opstui.config.kinds.prometheus import ViaPrometheus
from opstui.config.loader import load_config
from opstui.config.models import Config
from opstui.engine import mirror as mirror_module
from opstui.engine.mirror import MirrorEngine
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.states import State
from tests.e2e.test_demo_tmux import Tmux
from tests.servers.prometheus import ScrapingPrometheus
from tests.servers.redis import RedisServer
from tests.servers.started import app_in_thread, redis_started
from tests.support import free_port, require_binary

pytestmark = pytest.mark.timeout(300)

SETTLE = 90.0
"""Deadline for everything to converge (prometheus 2.42 alone takes ~6 s to scrape once)."""
STALE_DEADLINE = 20.0
"""Generous on a loaded 2-core box; the mechanism needs one failed scrape + one frame."""
QUEUE_DEPTH = 1234
JOB = "opstui"
EXPECTED = {
    "api": State.OK,
    "billing": State.CRIT,
    "legacy": State.ERROR,
    "cache": State.OK,
    "jobs": State.WARN,
}
WITH_READING = ("api", "billing", "cache", "jobs")


def _health_app(status: int, body: dict[str, str]) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/health", handler)
    return app


def _write_config(tmp_path: Path, ok_url: str, sick_url: str, redis_url: str) -> Path:
    config = tmp_path / "opstui.yaml"
    config.write_text(
        f"""
refresh: 1s
connections:
  good: {{kind: http, base_url: "{ok_url}", timeout: 2s}}
  sick: {{kind: http, base_url: "{sick_url}", timeout: 2s}}
  gone: {{kind: http, base_url: "http://127.0.0.1:{free_port()}", timeout: 2s}}
  cache: {{kind: redis, url: "{redis_url}", timeout: 2s}}
probes:
  - {{id: api, kind: health, connection: good, path: /health}}
  - {{id: billing, kind: health, connection: sick, path: /health}}
  - {{id: legacy, kind: health, connection: gone, path: /health}}
  - {{id: cache, kind: redis_info, connection: cache}}
  - id: jobs
    kind: queue
    connection: cache
    flavor: list
    queue: jobs
    thresholds: {{above: {{warn: 1000, crit: 5000}}}}
"""
    )
    return config


@dataclass
class Stack:
    config_path: Path
    config: Config
    exporter: asyncio.subprocess.Process
    exporter_url: str
    prometheus: ScrapingPrometheus
    redis: RedisServer


async def _wait_for(
    check: Callable[[], str | None], what: str, deadline: float
) -> float:
    """Poll `check` (None when satisfied, else what is still wrong) until it passes; returns
    the seconds it took. Fails with the last complaint at the deadline."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        problem = check()
        if problem is None:
            return loop.time() - started
        if loop.time() - started > deadline:
            raise AssertionError(f"{what} not reached after {deadline:g}s: {problem}")
        await asyncio.sleep(0.1)


async def _prometheus_has_every_probe(prom: ScrapingPrometheus, probes: set[str]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + SETTLE
    query = f'opstui_probe_state{{job="{JOB}"}} == 1'
    seen: set[str] = set()
    while True:
        labels = await asyncio.to_thread(prom.series_labels, query)
        seen = {item.get("probe", "") for item in labels}
        if probes <= seen:
            return
        assert loop.time() < end, (
            f"prometheus never had every probe's state: {sorted(seen)}; {prom.log_tail()}"
        )
        await asyncio.sleep(0.3)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    prometheus_binary = require_binary("prometheus")
    with contextlib.ExitStack() as exits:
        redis = exits.enter_context(redis_started(tmp_path / "redis"))
        with redis.sync_client() as client:
            client.lpush("jobs", *[f"job-{i}" for i in range(QUEUE_DEPTH)])
        ok, _ = exits.enter_context(
            app_in_thread({"status": "pass"}, lambda body: _health_app(200, body))
        )
        sick, _ = exits.enter_context(
            app_in_thread({"status": "fail"}, lambda body: _health_app(503, body))
        )
        config_path = _write_config(tmp_path, ok.url, sick.url, redis.url)
        exporter = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opstui", "export",
            "--config", str(config_path), "--listen", "127.0.0.1:0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        prom: ScrapingPrometheus | None = None
        try:
            assert exporter.stdout is not None
            line = (await asyncio.wait_for(exporter.stdout.readline(), SETTLE)).decode()
            found = re.fullmatch(
                r"opstui export: listening on http://(127\.0\.0\.1:\d+)/metrics\n", line
            )
            assert found, line
            address = found.group(1)
            prom = ScrapingPrometheus(
                tmp_path / "prometheus", {JOB: [address]}, binary=prometheus_binary
            )
            await asyncio.to_thread(prom.start)
            config = load_config(config_path)
            await _prometheus_has_every_probe(prom, {p.id for p in config.probes})
            yield Stack(config_path, config, exporter, f"http://{address}", prom, redis)
        finally:
            if exporter.returncode is None:
                exporter.kill()
                await exporter.wait()
            if prom is not None:
                await asyncio.to_thread(prom.close)


async def _exporter_fields(url: str, probe: str) -> set[str]:
    """The `field` labels of opstui_probe_value the exporter publishes for `probe`."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{url}/metrics") as response,
    ):
        text = await response.text()
    return {
        sample.labels["field"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "opstui_probe_value" and sample.labels.get("probe") == probe
    }


def _mirrored_fields(snap: ProbeSnapshot) -> set[str]:
    reading = snap.reading
    if reading is None:
        return set()
    return set(reading.fields) | ({"value"} if reading.value is not None else set())


def _compare(
    direct: Engine, mirror: MirrorEngine, published_cache_fields: set[str]
) -> str | None:
    """None when the two views agree on everything the issue names; else the differences."""
    problems: list[str] = []
    for probe_id, expected in EXPECTED.items():
        d, m = direct.snapshot(probe_id), mirror.snapshot(probe_id)
        if d.state is not expected or m.state is not expected:
            problems.append(f"{probe_id}: direct {d.state} / mirror {m.state}, want {expected}")
            continue
        if probe_id in WITH_READING and (d.value is None or m.value is None):
            problems.append(f"{probe_id}: direct value {d.value} / mirror value {m.value}")
        if m.history is None or len(m.history) < 1:
            problems.append(f"{probe_id}: mirrored sparkline has no point")
    legacy_d, legacy_m = direct.snapshot("legacy"), mirror.snapshot("legacy")
    if legacy_d.error != legacy_m.error or "refused" not in (legacy_m.error or ""):
        problems.append(f"legacy reason: direct {legacy_d.error!r} / mirror {legacy_m.error!r}")
    jobs_d, jobs_m = direct.snapshot("jobs"), mirror.snapshot("jobs")
    if jobs_d.value != QUEUE_DEPTH or jobs_m.value != QUEUE_DEPTH:
        problems.append(f"jobs depth: direct {jobs_d.value} / mirror {jobs_m.value}")
    cache_fields = _mirrored_fields(mirror.snapshot("cache"))
    if not published_cache_fields or cache_fields != published_cache_fields:
        problems.append(
            f"cache fields: exporter publishes {sorted(published_cache_fields)}, "
            f"mirror has {sorted(cache_fields)}"
        )
    return "; ".join(problems) or None


async def _agree(stack: Stack, direct: Engine, mirror: MirrorEngine) -> None:
    """Until both views agree (fields of the exporter re-read each round, as rate fields such
    as evictions_per_s only appear from a probe's second reading)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + SETTLE
    while True:
        published = await _exporter_fields(stack.exporter_url, "cache")
        problem = _compare(direct, mirror, published)
        if problem is None:
            return
        assert loop.time() < end, f"the two views never agreed: {problem}"
        await asyncio.sleep(0.3)


async def test_mirror_shows_what_direct_shows_and_goes_stale_when_exporter_stops(
    stack: Stack,
) -> None:
    direct = Engine(stack.config)
    mirror = MirrorEngine(
        stack.config, ViaPrometheus(url=stack.prometheus.url, match=f'job="{JOB}"', timeout=5.0)
    )
    await direct.start()
    await mirror.start()
    try:
        await _agree(stack, direct, mirror)
        history = mirror.snapshot("jobs").history
        assert history is not None
        jobs_history = [v for v in history.values() if v is not None]
        assert QUEUE_DEPTH in jobs_history, jobs_history
        assert mirror.origin_error is None
        assert mirror.origin == f"via prometheus {stack.prometheus.url}"

        stack.exporter.send_signal(signal.SIGTERM)

        def all_absent() -> str | None:
            wrong = [
                f"{s.probe_id}={s.state.value}:{s.error!r}"
                for s in mirror.snapshots()
                if s.state is not State.STALE or s.error != mirror_module.ABSENT
            ]
            return ", ".join(wrong) or None

        seconds = await _wait_for(all_absent, "every mirrored panel STALE", STALE_DEADLINE)
        print(f"\nexporter stopped -> every mirrored panel STALE in {seconds:.2f}s")
        assert await asyncio.wait_for(stack.exporter.wait(), SETTLE) == 0
        for probe_id in WITH_READING:
            snap = mirror.snapshot(probe_id)
            assert snap.reading is not None, f"{probe_id} lost its last reading when stale"
            assert snap.value is not None, f"{probe_id} lost its last value when stale"
        assert mirror.snapshot("jobs").value == QUEUE_DEPTH
        assert mirror.origin_error is None, "Prometheus still answers: only the series are gone"
        # the direct view is unaffected: it polls the backends itself
        assert direct.snapshot("jobs").state is State.WARN
    finally:
        await mirror.stop()
        await direct.stop()


async def test_mirror_goes_stale_with_the_reason_when_prometheus_stops(stack: Stack) -> None:
    via = ViaPrometheus(url=stack.prometheus.url, match="", timeout=2.0)
    mirror = MirrorEngine(stack.config, via)
    await mirror.start()
    try:

        def settled() -> str | None:
            wrong = [f"{s.probe_id}={s.state.value}" for s in mirror.snapshots()
                     if s.state is not EXPECTED[s.probe_id]]
            return ", ".join(wrong) or None

        await _wait_for(settled, "the mirror's expected states", SETTLE)
        assert mirror.origin_error is None

        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        await asyncio.to_thread(stack.prometheus.stop)

        def all_stale_with_reason() -> str | None:
            wrong = [
                f"{s.probe_id}={s.state.value}:{s.error!r}"
                for s in mirror.snapshots()
                if s.state is not State.STALE or not (s.error or "").startswith("Prometheus:")
            ]
            if mirror.origin_error is None:
                wrong.append("origin_error is None")
            return ", ".join(wrong) or None

        await _wait_for(all_stale_with_reason, "STALE with Prometheus' reason", SETTLE)
        seconds = loop.time() - stopped_at
        allowance = 2 * mirror.period + via.timeout
        print(f"\nprometheus stopped -> every mirrored panel STALE in {seconds:.2f}s "
              f"(allowance {allowance:g}s)")
        assert (mirror.origin_error or "").startswith("Prometheus:")
        for probe_id in WITH_READING:
            assert mirror.snapshot(probe_id).reading is not None, probe_id
    finally:
        await mirror.stop()


@pytest.mark.e2e
async def test_cli_via_prometheus_in_tmux(stack: Stack) -> None:
    tmux = require_binary("tmux")
    session = f"opstui-via-{uuid.uuid4().hex[:8]}"
    command = (
        f"TERM=xterm-256color {sys.executable} -m opstui --config {stack.config_path} "
        f"--via-prometheus {stack.prometheus.url}"
    )
    await asyncio.to_thread(
        subprocess.run,
        [tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
        check=True, timeout=10,
    )
    driver = Tmux(tmux, session)
    try:
        screen = await asyncio.to_thread(
            driver.wait_for,
            lambda s: "CRIT 1 · ⚠ ERR 1 · ▲ WARN 1 · ● OK 2" in s and "1,234 waiting" in s,
            "the header's counts and the queue depth",
            SETTLE,
        )
        print(f"\n{screen}")
        assert f"via prometheus 127.0.0.1:{stack.prometheus.port}" in screen, screen
        assert "ERR refused" in screen, screen
        assert "Traceback" not in screen

        stack.exporter.send_signal(signal.SIGTERM)
        screen = await asyncio.to_thread(
            driver.wait_for, lambda s: "STALE 5" in s, "every panel STALE", SETTLE
        )
        assert "1,234 waiting" in screen, f"the last reading went away:\n{screen}"
    finally:
        if driver.alive():
            driver.run("kill-session", "-t", session)
