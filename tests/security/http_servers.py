"""Two recording HTTP servers for the HTTP attacks: an "origin" (the connection's base_url)
and a "foreign" one (where an attacker wants the credentials to go).

Both record every request with every header, and run in a loop of their own in a daemon
thread, so one pair serves a whole test module (each test gets its own event loop) and a
`opstui` child process can reach them too.

The origin is a small admin API that honours method overrides the way real frameworks do
(Express's method-override, Rails, Laravel): `X-HTTP-Method-Override`, `X-HTTP-Method`,
`X-Method-Override` headers and a `_method` parameter in the query, a JSON body or a form
body. A DELETE (real or overridden) of /items/<id> removes the item, so a test asserts the
server's state afterwards, not only what opstui said. `/redirect/<code>?to=<url>` answers
with that redirect.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
SAFE = ("GET", "HEAD", "OPTIONS")
ITEMS = ("1", "2", "3")


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def effective(self) -> str:
        """The method the server acted as: an override wins, as in the frameworks above."""
        for name in OVERRIDE_HEADERS:
            if name in self.headers:
                return self.headers[name].strip().upper()
        query = self.path.partition("?")[2]
        found = dict(parse_qsl(query)).get("_method")
        text = self.body.decode("utf-8", "replace")
        if found is None and text:
            found = dict(parse_qsl(text)).get("_method")
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if found is None and isinstance(data, dict) and isinstance(data.get("_method"), str):
                found = data["_method"]
        return found.strip().upper() if found else self.method


@dataclass
class RecordingServer:
    """An aiohttp app on 127.0.0.1:<random port> that records every request."""

    name: str
    seen: list[Seen] = field(default_factory=list)
    items: set[str] = field(default_factory=lambda: set(ITEMS))
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.items = set(ITEMS)

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def with_header(self, name: str) -> list[Seen]:
        """Requests that carried header `name` (any case)."""
        return [s for s in self.requests() if name.lower() in s.headers]

    def overridden(self) -> list[Seen]:
        """Requests the server acted on as a mutation while sent as GET/HEAD/OPTIONS."""
        return [s for s in self.requests() if s.method in SAFE and s.effective not in SAFE]

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.StreamResponse:
            seen = Seen(
                request.method,
                request.path_qs,
                {k.lower(): v for k, v in request.headers.items()},
                await request.read(),
            )
            with self._lock:
                self.seen.append(seen)
            parts = request.path.strip("/").split("/")
            if len(parts) == 2 and parts[0] == "redirect" and parts[1].isdigit():
                location = request.query.get("to", "/")
                return web.Response(status=int(parts[1]), headers={"Location": location})
            if len(parts) == 2 and parts[0] == "items":
                if seen.effective == "DELETE":
                    with self._lock:
                        self.items.discard(parts[1])
                    return web.json_response({"deleted": parts[1]})
                return web.json_response({"id": parts[1], "there": parts[1] in self.items})
            return web.json_response({"status": "pass", "server": self.name})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app


class _Thread:
    """A loop in a daemon thread serving the apps (they outlive every test's loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runners: list[web.AppRunner] = []

    def start(self, server: RecordingServer) -> None:
        if not self.thread.is_alive():
            self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(server), self.loop).result(timeout=30)

    async def _serve(self, server: RecordingServer) -> None:
        runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self.runners.append(runner)

    def close(self) -> None:
        for runner in self.runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass(frozen=True)
class Servers:
    origin: RecordingServer
    foreign: RecordingServer

    def reset(self) -> None:
        self.origin.reset()
        self.foreign.reset()


@contextmanager
def recording_servers() -> Iterator[Servers]:
    """An origin and a foreign recording server on loopback, closed after."""
    thread = _Thread()
    servers = Servers(RecordingServer("origin"), RecordingServer("foreign"))
    try:
        thread.start(servers.origin)
        thread.start(servers.foreign)
        yield servers
    finally:
        thread.close()


def dump(servers: Servers) -> dict[str, Any]:
    """What both servers saw, for assertion messages."""
    return {
        "origin": [(s.method, s.path) for s in servers.origin.requests()],
        "foreign": [(s.method, s.path) for s in servers.foreign.requests()],
    }
