"""`opstui serve`: the dashboard in web browsers, through textual-serve, e.g. for wall TVs.

Each browser connection gets its own opstui process (textual-serve's model: the page is an
xterm.js terminal, a websocket carries its bytes to and from a child running Textual's web
driver). So the cost of a viewer is a whole opstui: with `--via-prometheus` every viewer reads
the one Prometheus (any number of TVs adds no load on the backends themselves); without it,
each viewer polls every backend on its own, like a terminal would.

This module owns what textual-serve's `Server.serve` leaves to chance: it binds the address
first (a taken port is one line and exit 2, not a traceback), runs the aiohttp app on its own
loop with its own SIGTERM/SIGINT handlers, and on the way out asks every child to quit, then
terminates and finally kills the stragglers, so no opstui outlives the server. textual-serve
and aiohttp are imported inside `serve_web`, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from opstui.stopping import stop_on_signals

if TYPE_CHECKING:
    from aiohttp import web

QUIT_TIMEOUT = 5.0
"""How long the children get to leave on the web driver's own "quit" message."""
TERMINATE_TIMEOUT = 3.0
"""Then SIGTERM (the web driver exits cleanly on it too); after that, SIGKILL."""
CLOSE_TIMEOUT = 2.0
"""Per websocket close handshake, and aiohttp's wait for handlers still running."""
LOGGERS = ("textual-serve", "aiohttp")


class ServeError(Exception):
    """A one-line reason the page cannot be served (address taken or invalid)."""


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the server goes away, however
    it goes (a SIGKILL'd server cannot clean up after itself)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind(host: str, port: int) -> list[socket.socket]:
    """Bind every address host resolves to, all on one port (port 0: the first one's free
    port), before anything else starts: a taken or invalid address is ServeError, one line."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ServeError(f"cannot listen on {where}: {reason}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    chosen = port
    try:
        for family, kind, proto, _, address in infos:
            key = (int(family), str(address[0]))
            if key in seen:
                continue
            seen.add(key)
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and len(infos) > 1:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], chosen, *address[2:]))
            chosen = int(sock.getsockname()[1])
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {where}: {reason}") from None
    return sockets


def _quiet_logging() -> None:
    """textual-serve and aiohttp log errors only, one line each: no banner, no traceback."""

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                detail = f"{type(error).__name__}: {error}"
                if detail not in message:
                    message = f"{message} ({detail})"
            return f"opstui serve: {message}".replace("\n", " ")

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine())
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.ERROR)
        logger.propagate = False


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Stray task errors as one line on stderr, not asyncio's traceback."""
    error = context.get("exception")
    text = f"{type(error).__name__}: {error}" if error else context.get("message", "")
    print(f"opstui serve: {text}", file=sys.stderr, flush=True)


def serve_web(
    command: list[str], host: str, port: int, *, public_url: str | None, title: str
) -> int:
    """Serve the dashboard at http://host:port until SIGTERM or SIGINT; exit code 0.

    Every browser connection runs its own `command` (an opstui argv): with --via-prometheus
    any number of viewers adds no backend load, without it every viewer polls the backends.
    public_url is the base URL browsers use when a proxy sits in front (the page's websocket
    URL is built from it); by default, from the Host the browser asked for, so a TV reaching
    a 0.0.0.0 listener by name gets a websocket URL it can reach. title names the page.
    """
    sockets = bind(host, port)
    bound = int(sockets[0].getsockname()[1])
    try:
        return asyncio.run(_serve(sockets, command, host, bound, public_url, title))
    finally:
        for sock in sockets:
            sock.close()


async def _serve(
    sockets: list[socket.socket],
    command: list[str],
    host: str,
    port: int,
    public_url: str | None,
    title: str,
) -> int:
    from aiohttp import web

    _quiet_logging()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_error)
    server = _make_server(command, host, port, public_url, title)
    app = await server.build_app()
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=CLOSE_TIMEOUT
    )
    await runner.setup()
    with stop_on_signals() as stop:
        try:
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            print(f"opstui serve: listening on http://{_shown(host)}:{port}", flush=True)
            await stop.wait()
            await server.stop_sessions()
        finally:
            await runner.cleanup()
    return 0


class _Sessions:
    """The live browser sessions: their app services, processes and websockets."""

    def __init__(self) -> None:
        self.closing = False
        self.services: dict[Any, Any] = {}


def _make_server(
    command: list[str], host: str, port: int, public_url: str | None, title: str
) -> Any:
    """A textual_serve.Server subclass built here, so textual-serve is imported lazily."""
    import aiohttp_jinja2
    from aiohttp import WSCloseCode, web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server, to_int

    class OpstuiAppService(AppService):
        """One browser's opstui, exec'd without a shell so the pid we signal is opstui's.
        It stays in the server's process group: a terminal's Ctrl+C or hangup, or a
        supervisor killing the group, reaches the children too (the web driver exits
        cleanly on SIGINT/SIGTERM); on Linux the child also gets SIGTERM when the server
        dies, even by SIGKILL, so no viewer keeps polling without a browser."""

        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            super().__init__(" ".join(argv), **kwargs)
            self.argv = argv
            self.process: asyncio.subprocess.Process | None = None

        async def _open_app_process(
            self, width: int = 80, height: int = 24
        ) -> asyncio.subprocess.Process:
            environment = self._build_environment(width=width, height=height)
            process = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
            )
            assert process.stdin is not None
            self._process = self.process = process
            self._stdin = process.stdin
            return process

    class OpstuiServer(Server):
        def __init__(self) -> None:
            super().__init__(
                " ".join(command), host=host, port=port, title=title, public_url=public_url
            )
            self.public_base = public_url.rstrip("/") if public_url else None
            self.sessions = _Sessions()

        async def build_app(self) -> web.Application:
            app: web.Application = await self._make_app()
            return app

        async def on_startup(self, app: web.Application) -> None:
            """No banner: the one "listening on" line is printed by serve_web."""

        async def handle_index(self, request: web.Request) -> web.Response:
            """textual-serve's page, with a <title>, and its URLs built from public_url or,
            without one, from the scheme and Host the browser used."""
            base = self.public_base or f"{request.scheme}://{request.host}"
            router = request.app.router
            websocket = f"{base}{router['websocket'].url_for()}"
            scheme = "wss" if websocket.startswith("https:") else "ws"
            static = f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"
            context = {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{scheme}:{websocket.split(':', 1)[1]}",
                "config": {"static": {"url": static}},
                "application": {"name": self.title},
            }
            page = aiohttp_jinja2.render_string("app_index.html", request, context)
            page = page.replace("<head>", f"<head>\n    <title>{html.escape(title)}</title>", 1)
            return web.Response(text=page, content_type="text/html")

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            """textual-serve's handler, with each session tracked so shutdown can end it."""
            websocket = web.WebSocketResponse(heartbeat=15, timeout=CLOSE_TIMEOUT)
            if self.sessions.closing:
                raise web.HTTPServiceUnavailable(text="opstui serve is shutting down")
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            service: OpstuiAppService | None = None
            try:
                await websocket.prepare(request)
                service = OpstuiAppService(
                    command,
                    write_bytes=websocket.send_bytes,
                    write_str=websocket.send_str,
                    close=websocket.close,
                    download_manager=self.download_manager,
                )
                self.sessions.services[service] = websocket
                await service.start(width, height)
                await self._process_messages(websocket, service)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await websocket.close(code=WSCloseCode.GOING_AWAY)
            except Exception as error:
                logging.getLogger("textual-serve").error("browser session failed: %s", error)
            finally:
                if service is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(service.stop(), QUIT_TIMEOUT)
                    await _end_process(service.process)
                    self.sessions.services.pop(service, None)
            return websocket

        async def stop_sessions(self) -> None:
            """Quit message to every child, then SIGTERM, then SIGKILL; close the pages."""
            self.sessions.closing = True
            live = list(self.sessions.services.items())
            if not live:
                return
            stops = [asyncio.ensure_future(service.stop()) for service, _ in live]
            await asyncio.wait(stops, timeout=QUIT_TIMEOUT)
            for task in stops:
                task.cancel()
            await asyncio.gather(*stops, return_exceptions=True)
            await asyncio.gather(*(_end_process(service.process) for service, _ in live))
            closes = [
                asyncio.wait_for(ws.close(code=WSCloseCode.GOING_AWAY), CLOSE_TIMEOUT)
                for _, ws in live
            ]
            await asyncio.gather(*closes, return_exceptions=True)

    return OpstuiServer()


async def _end_process(process: asyncio.subprocess.Process | None) -> None:
    """SIGTERM, then SIGKILL a child that is still running; reap it either way."""
    if process is None or process.returncode is not None:
        return
    for send, timeout in ((process.terminate, TERMINATE_TIMEOUT), (process.kill, None)):
        with contextlib.suppress(ProcessLookupError):
            send()
        try:
            await asyncio.wait_for(process.wait(), timeout)
            return
        except TimeoutError:
            continue
