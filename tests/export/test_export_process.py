"""`opstui export` as a process: real health servers, real scrapes, SIGTERM to end it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ServeApp, free_port

DEADLINE = 20.0
Labels = frozenset[tuple[str, str]]


def _health_app() -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    app = web.Application()
    app.router.add_get("/health", handler)
    return app


def _config(tmp_path: Path, ok_url: str, refused_url: str) -> Path:
    config = tmp_path / "export.yaml"
    config.write_text(
        f"""
refresh: 1s
connections:
  good: {{kind: http, base_url: "{ok_url}", timeout: 2s}}
  gone: {{kind: http, base_url: "{refused_url}", timeout: 2s}}
probes:
  - {{id: api, kind: health, connection: good, path: /health}}
  - {{id: legacy, kind: health, connection: gone, path: /health}}
"""
    )
    return config


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opstui", "export", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def exporter(serve_app: ServeApp, tmp_path: Path) -> AsyncIterator[
    tuple[asyncio.subprocess.Process, str]
]:
    ok_url = await serve_app(_health_app())
    config = _config(tmp_path, ok_url, f"http://127.0.0.1:{free_port()}")
    proc = await _spawn("--config", str(config), "--listen", "127.0.0.1:0")
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode()
        pattern = r"opstui export: listening on (http://127\.0\.0\.1:\d+)/metrics\n"
        found = re.fullmatch(pattern, line)
        assert found, line
        yield proc, found.group(1)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _parse(text: str) -> dict[tuple[str, Labels], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _key(name: str, **labels: str) -> tuple[str, Labels]:
    return name, frozenset(labels.items())


async def _scrape_until_settled(base: str) -> dict[tuple[str, Labels], float]:
    """Scrape until api is ok and legacy has an error counted (polling with a deadline)."""
    wanted = [
        _key("opstui_probe_state", probe="api", kind="health", state="ok"),
        _key("opstui_probe_state", probe="legacy", kind="health", state="error"),
    ]
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                got = _parse(await response.text())
            if all(got.get(k) == 1.0 for k in wanted):
                return got
            assert loop.time() < end, f"probes never settled: {got}"
            await asyncio.sleep(0.1)


async def test_export_serves_metrics_health_and_stops_on_sigterm(
    exporter: tuple[asyncio.subprocess.Process, str],
) -> None:
    proc, base = exporter
    got = await _scrape_until_settled(base)

    for probe, current in (("api", "ok"), ("legacy", "error")):
        states = {dict(labels)["state"]: v for (name, labels), v in got.items()
                  if name == "opstui_probe_state" and dict(labels)["probe"] == probe}
        assert states[current] == 1.0
        assert sum(states.values()) == 1.0 and len(states) == 9
    assert _key("opstui_probe_value", probe="api", field="value") in got
    assert got[_key("opstui_probe_value", probe="api", field="http_status")] == 200.0
    assert got[_key("opstui_probe_latency_seconds", probe="api")] > 0
    assert got[_key("opstui_probe_last_success_timestamp_seconds", probe="api")] > 1.6e9
    assert _key("opstui_probe_last_success_timestamp_seconds", probe="legacy") not in got
    assert got[_key("opstui_probe_errors_total", probe="legacy", reason="refused")] >= 1.0

    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/healthz") as response,
    ):
        assert response.status == 200
        assert await response.text() == "ok"

    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 0
    assert proc.stderr is not None
    assert "Traceback" not in (await proc.stderr.read()).decode()


async def test_sigint_also_exits_0(exporter: tuple[asyncio.subprocess.Process, str]) -> None:
    proc, _ = exporter
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), DEADLINE) == 0


async def test_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _spawn("--config", str(config), "--listen", f"127.0.0.1:{port}")
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], lines
    assert out == b""


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1:http", "127.0.0.1:70000", ":9464"])
async def test_bad_listen_is_one_line_exit_2(tmp_path: Path, listen: str) -> None:
    config = _config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    proc = await _spawn("--config", str(config), "--listen", listen)
    _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "--listen" in lines[0], lines


async def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("probes: [{id: api, kind: health, connection: nowhere}]\n")
    proc = await _spawn("--config", str(config), "--listen", "127.0.0.1:0")
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    assert err.strip() and b"Traceback" not in err
    assert out == b""
