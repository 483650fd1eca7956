"""Servers for the `opstui serve` gate tests: one recording backend and two real `opstui serve`
processes per module (one with a token and a basic-auth user, one without authentication),
plus a websocket session helper that reads the terminal a browser would draw and types into
it. The backend records every request, so a test can assert that a mutation never reached it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web

from tests.systems.remember_me.harness import ThreadedApp

DEADLINE = 30.0
TITLE = "Serve Gate Check"
PROBE_TITLE = "Gatekeeper"
ACTION_PATH = "/admin/restart"
TOKEN_LABEL = "wall-tv"
USER = "alice"
TOKEN_ENV = "OPSTUI_TEST_SERVE_TOKEN"
SPOOFED_VIEWER = "mallory"


@dataclass
class Backend:
    """A health endpoint and an admin API that records every request it receives."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    server: ThreadedApp | None = None

    async def _app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.requests.append((request.method, request.path))
            return web.json_response({"status": "pass"})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def mutations(self) -> list[tuple[str, str]]:
        return [r for r in list(self.requests) if r[0] not in ("GET", "HEAD", "OPTIONS")]


@contextlib.contextmanager
def backend_started() -> Iterator[Backend]:
    backend = Backend()
    backend.server = ThreadedApp(backend._app)
    backend.server.start()
    try:
        yield backend
    finally:
        backend.server.close()


def write_config(directory: Path, backend: str, *, auth: bool) -> Path:
    """A dashboard of one health probe with a runbook whose action POSTs to the backend
    (key X); with auth, a `serve:` section with a token from the environment and a user
    whose password is in a file."""
    directory.mkdir(parents=True, exist_ok=True)
    serve = ""
    if auth:
        password = directory / "alice.password"
        password.write_text(PASSWORD + "\n")
        password.chmod(0o600)
        serve = (
            "serve:\n"
            f"  tokens: {{{TOKEN_LABEL}: \"${{{TOKEN_ENV}}}\"}}\n"
            f"  users: {{{USER}: \"file:{password}\"}}\n"
        )
    config = directory / "serve.yaml"
    config.write_text(
        f"""title: {TITLE}
refresh: 1s
audit_log: {directory / "audit.jsonl"}
connections:
  app: {{kind: http, base_url: "{backend}", timeout: 2s}}
probes:
  - {{id: api, title: {PROBE_TITLE}, kind: health, connection: app, path: /health,
     runbook: restart}}
runbooks:
  - id: restart
    title: Restart workers
    symptoms: workers stuck
    actions:
      - {{id: restart, key: X, title: Restart workers, kind: http, connection: app,
         method: POST, path: {ACTION_PATH}}}
{serve}"""
    )
    return config


TOKEN = "tok-" + secrets.token_urlsafe(24)
PASSWORD = "pw-" + secrets.token_urlsafe(18)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Served:
    """A running `opstui serve` process and where it listens."""

    proc: subprocess.Popen[bytes]
    base: str
    directory: Path

    @property
    def host(self) -> str:
        return self.base.split("//", 1)[1]

    def viewers(self) -> list[psutil.Process]:
        """The opstui children (one per browser session) running right now."""
        found = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.status() != psutil.STATUS_ZOMBIE and "--config" in child.cmdline():
                    found.append(child)
        return found

    def wait_no_viewers(self, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while self.viewers():
            assert time.monotonic() < end, [v.cmdline() for v in self.viewers()]
            time.sleep(0.1)

    def audit(self) -> list[dict[str, Any]]:
        path = self.directory / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stderr(self) -> str:
        return (self.directory / "serve.err").read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env[TOKEN_ENV] = TOKEN
    env.update(extra)
    return env


def start_serve(
    config: Path, *args: str, env: dict[str, str] | None = None, listen: str = "127.0.0.1:0"
) -> Served:
    """`opstui serve` on a free loopback port; returns once it prints its listening line."""
    directory = config.parent
    with open(directory / "serve.err", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opstui", "serve", "--config", str(config),
             "--listen", listen, *args],
            stdout=subprocess.PIPE, stderr=err, env=env or serve_env(),
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], DEADLINE)
    line = proc.stdout.readline().decode() if ready else ""
    found = re.fullmatch(r"opstui serve: listening on (http://\S+)\n", line)
    if not found:
        proc.kill()
        proc.wait()
        pytest.fail(f"serve did not start: {line!r} {(directory / 'serve.err').read_text()!r}")
    return Served(proc, found.group(1), directory)


@contextlib.contextmanager
def serving(directory: Path, backend: Backend, *, auth: bool) -> Iterator[Served]:
    """Started with a viewer name of its own in the environment, which no child may inherit:
    only the gate names a viewer."""
    config = write_config(directory, backend.url, auth=auth)
    served = start_serve(config, env=serve_env(OPSTUI_VIEWER=SPOOFED_VIEWER))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture(scope="module", name="backend")
def backend_fixture() -> Iterator[Backend]:
    with backend_started() as started:
        yield started


@pytest.fixture(scope="module", name="gated")
def gated_fixture(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`opstui serve` with a token (label wall-tv) and a basic-auth user (alice)."""
    with serving(tmp_path_factory.mktemp("gated"), backend, auth=True) as served:
        yield served


@pytest.fixture(scope="module", name="open_serve")
def open_serve_fixture(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`opstui serve` without a serve: section: read-only children, loopback only."""
    with serving(tmp_path_factory.mktemp("open"), backend, auth=False) as served:
        yield served


class Terminal:
    """One browser session's websocket: the bytes the page's terminal would draw, and keys."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.screen = b""

    async def start(self, width: int = 120, height: int = 40) -> None:
        await self.ws.send_str(json.dumps(["resize", {"width": width, "height": height}]))

    async def wait_for(self, *wanted: str) -> str:
        """Read output until every wanted text has arrived since the last `mark()`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while not all(text.encode() in self.screen for text in wanted):
            left = end - loop.time()
            assert left > 0, f"never saw {wanted} in {self.screen[-3000:]!r}"
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(self.ws.receive(), min(left, 1.0))
                assert message.type == aiohttp.WSMsgType.BINARY, (message.type, message.data)
                self.screen += message.data
        return self.screen.decode("utf-8", "replace")

    def mark(self) -> None:
        self.screen = b""

    async def keys(self, text: str) -> None:
        await self.ws.send_str(json.dumps(["stdin", text]))

    async def settle(self, seconds: float) -> None:
        """Keep reading (so the child is never blocked on output) for a while."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(self.ws.receive(), left)
                if message.type != aiohttp.WSMsgType.BINARY:
                    return
                self.screen += message.data


def ws_url(served: Served) -> str:
    return served.base.replace("http://", "ws://") + "/ws?width=120&height=40"


async def run_mutation(terminal: Terminal) -> None:
    """The keys that run the runbook's POST in a TUI that allows it: `r` (runbooks), Enter
    (the only one), X (its action), then Tab to the confirm button and Enter."""
    await terminal.start()
    await terminal.wait_for(TITLE, PROBE_TITLE)
    terminal.mark()
    await terminal.keys("r")
    await terminal.wait_for("Runbooks")
    terminal.mark()
    await terminal.keys("\r")
    await terminal.wait_for("stuck")
    terminal.mark()
    await terminal.keys("X")
    await terminal.settle(2.0)
    await terminal.keys("\t")
    await terminal.settle(0.5)
    await terminal.keys("\r")
    await terminal.settle(3.0)
