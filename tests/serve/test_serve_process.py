"""`opstui serve` as a process: a real page, a real websocket session running a real opstui
child against a real health server, and SIGTERM/SIGINT ending it all with no orphans."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from aiohttp import web

from tests.support import ServeApp, free_port

DEADLINE = 30.0
TITLE = "Wallboard Serve Check"
PROBE_TITLE = "Gatekeeper"
Server = tuple[asyncio.subprocess.Process, str]


def _health_app() -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    app = web.Application()
    app.router.add_get("/health", handler)
    return app


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"""
title: {TITLE}
refresh: 1s
connections:
  good: {{kind: http, base_url: "{url}", timeout: 2s}}
probes:
  - {{id: api, title: {PROBE_TITLE}, kind: health, connection: good, path: /health}}
"""
    )
    return config


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opstui", "serve", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def _start(*args: str) -> Server:
    proc = await _spawn(*args)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode()
    found = re.fullmatch(r"opstui serve: listening on (http://127\.0\.0\.1:\d+)\n", line)
    if not found:
        proc.kill()
        _, err = await proc.communicate()
        pytest.fail(f"no listening line: {line!r} {err.decode()!r}")
    return proc, found.group(1)


@pytest.fixture
async def config(serve_app: ServeApp, tmp_path: Path) -> Path:
    return _config(tmp_path, await serve_app(_health_app()))


@pytest.fixture
async def server(config: Path) -> AsyncIterator[Server]:
    proc, base = await _start("--config", str(config), "--listen", "127.0.0.1:0")
    try:
        yield proc, base
    finally:
        if proc.returncode is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            await proc.wait()


async def _page(base: str) -> str:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(base) as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        return await response.text()


def _websocket_url(page: str) -> str:
    found = re.search(r'data-session-websocket-url="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def _read_screen(ws: aiohttp.ClientWebSocketResponse, *wanted: str) -> str:
    """Terminal output from the session until every wanted text is on it (with a deadline)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    screen = b""
    while not all(text.encode() in screen for text in wanted):
        left = end - loop.time()
        assert left > 0, f"never saw {wanted} in {screen[-2000:]!r}"
        message = await asyncio.wait_for(ws.receive(), left)
        assert message.type == aiohttp.WSMsgType.BINARY, (message.type, message.data)
        screen += message.data
    return screen.decode("utf-8", "replace")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


async def test_page_names_the_dashboard_and_its_websocket(server: Server) -> None:
    _, base = server
    page = await _page(base + "/")
    assert f"<title>{TITLE}</title>" in page
    assert f"<div>{TITLE}</div>" in page
    assert _websocket_url(page) == base.replace("http://", "ws://") + "/ws"
    assert f'src="{base}/static/js/textual.js"' in page


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_session_runs_its_own_opstui_and_signal_ends_everything(
    server: Server, sig: signal.Signals
) -> None:
    proc, base = server
    ws_url = _websocket_url(await _page(base + "/"))
    timeout = aiohttp.ClientWSTimeout(ws_close=5)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{ws_url}?width=120&height=40", timeout=timeout) as ws,
    ):
        await ws.send_str(json.dumps(["resize", {"width": 120, "height": 40}]))
        screen = await _read_screen(ws, TITLE, PROBE_TITLE)
        assert "\x1b[" in screen  # a terminal drew it, not a page

        await ws.send_str(json.dumps(["ping", "42"]))
        children = psutil.Process(proc.pid).children(recursive=True)
        viewers = [c for c in children if "--config" in c.cmdline() and "serve" not in c.cmdline()]
        assert len(viewers) == 1, [c.cmdline() for c in children]

        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 15)
        assert code == 0
        assert _alive(children) == []
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert "Traceback" not in err, err
        closing = await asyncio.wait_for(ws.receive(), DEADLINE)
        while closing.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            closing = await asyncio.wait_for(ws.receive(), DEADLINE)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_two_browsers_get_two_processes(server: Server) -> None:
    proc, base = server
    ws_url = _websocket_url(await _page(base + "/"))
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(f"{ws_url}?width=100&height=30")
        second = await session.ws_connect(f"{ws_url}?width=80&height=24")
        for ws in (first, second):
            await _read_screen(ws, TITLE)
        viewers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "--config" in c.cmdline()]
        assert len({v.pid for v in viewers}) == 2
        await first.close()
        await second.close()
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert _alive(viewers) == []


async def test_a_killed_server_takes_its_viewers_with_it(server: Server) -> None:
    """SIGKILL leaves the server no chance to clean up: Linux's parent-death signal must."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux only")
    proc, base = server
    ws_url = _websocket_url(await _page(base + "/"))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{ws_url}?width=100&height=30")
        await _read_screen(ws, TITLE)
        viewers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "--config" in c.cmdline()]
        assert len(viewers) == 1
        proc.kill()
        await proc.wait()
        _, still = await asyncio.to_thread(psutil.wait_procs, viewers, 15)
        assert still == [], [v.cmdline() for v in still]
        await ws.close()


async def test_public_url_passes_through_to_the_page(config: Path) -> None:
    proc, base = await _start(
        "--config", str(config), "--listen", "127.0.0.1:0",
        "--public-url", "https://wall.example.com/ops/",
    )
    try:
        page = await _page(base + "/")
        assert _websocket_url(page) == "wss://wall.example.com/ops/ws"
        assert 'src="https://wall.example.com/ops/static/js/textual.js"' in page
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_bad_config_exits_2_with_one_line_and_never_listens(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("probes: [{id: api, kind: health, connection: nowhere}]\n")
    port = free_port()
    proc = await _spawn("--config", str(config), "--listen", f"127.0.0.1:{port}")
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert out == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_port_in_use_is_one_line_exit_2(config: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _spawn("--config", str(config), "--listen", f"127.0.0.1:{port}")
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert lines == [f"opstui: cannot listen on 127.0.0.1:{port}: Address already in use"], lines
    assert out == b""


async def test_unresolvable_host_is_one_line_exit_2(config: Path) -> None:
    proc = await _spawn("--config", str(config), "--listen", "no-such-host.invalid:0")
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opstui: cannot listen on no-such-host"), lines
    assert out == b""


async def test_importing_serve_loads_neither_textual_nor_textual_serve() -> None:
    code = (
        "import sys, opstui.serve\n"
        "loaded = [m for m in ('textual', 'textual_serve', 'aiohttp') if m in sys.modules]\n"
        "print(loaded)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 0
    assert out.decode().strip() == "[]"
