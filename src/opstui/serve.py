"""`opstui serve`: the dashboard in web browsers, through textual-serve, e.g. for wall TVs.

Each browser connection gets its own opstui process (textual-serve's model: the page is an
xterm.js terminal, a websocket carries its bytes to and from a child running Textual's web
driver). So the cost of a viewer is a whole opstui: with `--via-prometheus` every viewer reads
the one Prometheus (any number of TVs adds no load on the backends themselves); without it,
each viewer polls every backend on its own, like a terminal would.

Who may do what (issue 10): without a `serve:` authentication in the config every child runs
with --read-only (cli.py adds it) and serve listens on loopback only; with one, a `Gate` checks
every request (page, static files, websocket) in an aiohttp middleware before any handler runs,
so an unauthenticated websocket never starts an opstui. The matched token label or user name
reaches the child as OPSTUI_VIEWER, which the audit log records.

This module also owns what textual-serve's `Server.serve` leaves to chance: it binds the address
first (a taken port is one line and exit 2, not a traceback), runs the aiohttp app on its own
loop with its own SIGTERM/SIGINT handlers, and on the way out asks every child to quit, then
terminates and finally kills the stragglers, so no opstui outlives the server. textual-serve
and aiohttp are imported inside `serve_web`, so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import html
import ipaddress
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from opstui.config.types import MissingSecretError
from opstui.stopping import stop_on_signals

if TYPE_CHECKING:
    from aiohttp import web

    from opstui.config.serve import ServeConfig

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


VIEWER_ENV = "OPSTUI_VIEWER"
"""The authenticated viewer, as each child's environment carries it to the audit log."""
COOKIE = "opstui_session"
TOKEN_PARAM = "token"


def _digest(text: str) -> bytes:
    """Secrets are compared as SHA-256 digests: equal length, so compare_digest leaks nothing
    about a secret's length either."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


class Gate:
    """Who is asking: a session cookie, a bearer token or basic auth, each checked in constant
    time against every configured secret (no early exit on the first match).

    A browser presents a token once as `/?token=...`; the page answers with a redirect that
    drops it from the address bar and sets an HttpOnly SameSite=Strict session cookie, which
    the browser sends with the static files and the same-origin websocket upgrade (browsers
    cannot put headers on a websocket; SameSite=Strict keeps other sites' pages from riding
    it, and HttpOnly keeps it from scripts). The cookie is the viewer's name with an HMAC under
    a key made at start: nothing to store, and a restart signs everyone out. Basic auth is
    checked on every request (browsers resend it, the websocket included) and sets the same
    cookie, so a browser that does not resend it on the upgrade still gets through.
    """

    def __init__(self, tokens: Mapping[str, str], users: Mapping[str, str]) -> None:
        self._tokens = [(label, _digest(token)) for label, token in tokens.items()]
        self._users = [(_digest(user), user, _digest(password)) for user, password in users.items()]
        self._key = secrets.token_bytes(32)

    @property
    def basic(self) -> bool:
        return bool(self._users)

    def by_token(self, presented: str) -> str | None:
        """The label of the token presented, or None."""
        wanted = _digest(presented)
        found = None
        for label, digest in self._tokens:
            if hmac.compare_digest(wanted, digest) and found is None:
                found = label
        return found

    def by_basic(self, header: str) -> str | None:
        """The user an `Authorization: Basic ...` header names, when its password is right."""
        try:
            decoded = base64.b64decode(header.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            return None
        user, colon, password = decoded.partition(":")
        if not colon:
            return None
        name, secret = _digest(user), _digest(password)
        found = None
        for user_digest, known, password_digest in self._users:
            ok = hmac.compare_digest(name, user_digest) & hmac.compare_digest(
                secret, password_digest
            )
            if ok and found is None:
                found = known
        return found

    def _sign(self, viewer: str) -> str:
        return hmac.new(self._key, viewer.encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, viewer: str) -> str:
        """`<viewer, base64url>.<HMAC>`: names the viewer and cannot be forged without the key."""
        name = base64.urlsafe_b64encode(viewer.encode()).decode().rstrip("=")
        return f"{name}.{self._sign(viewer)}"

    def by_cookie(self, value: str) -> str | None:
        name, dot, signature = value.partition(".")
        if not dot:
            return None
        try:
            viewer = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except (binascii.Error, UnicodeError, ValueError):
            return None
        presented = signature.encode("utf-8", "surrogateescape")
        return viewer if hmac.compare_digest(presented, self._sign(viewer).encode()) else None

    def viewer(self, cookie: str | None, authorization: str | None) -> str | None:
        """The viewer a request's cookie or Authorization header proves, or None."""
        if cookie:
            viewer = self.by_cookie(cookie)
            if viewer is not None:
                return viewer
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return self.by_token(value.strip())
        if scheme.lower() == "basic" and value.strip() and self._users:
            return self.by_basic(value.strip())
        return None


def gate_from(config: ServeConfig | None) -> Gate | None:
    """The Gate for the config's `serve:` section, or None (then serve is read-only). A secret
    that is not available here is ServeError, one line: never a silent fall back."""
    if config is None or not config.enabled:
        return None
    found: dict[str, dict[str, str]] = {"tokens": {}, "users": {}}
    for section, entries in (("tokens", config.tokens), ("users", config.users)):
        for name, secret in entries.items():
            try:
                found[section][name] = secret.reveal() if not isinstance(secret, str) else secret
            except MissingSecretError as exc:
                raise ServeError(f"serve.{section}.{name}: {exc}") from None
    return Gate(found["tokens"], found["users"])


def _loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


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
    command: list[str],
    host: str,
    port: int,
    *,
    public_url: str | None,
    title: str,
    gate: Gate | None = None,
) -> int:
    """Serve the dashboard at http://host:port until SIGTERM or SIGINT; exit code 0.

    Every browser connection runs its own `command` (an opstui argv): with --via-prometheus
    any number of viewers adds no backend load, without it every viewer polls the backends.
    public_url is the base URL browsers use when a proxy sits in front (the page's websocket
    URL is built from it); by default, from the Host the browser asked for, so a TV reaching
    a 0.0.0.0 listener by name gets a websocket URL it can reach. title names the page.
    gate: who may connect; without one, only loopback addresses are served (the caller has
    made every child read-only).
    """
    sockets = bind(host, port)
    if gate is None and not all(_loopback_address(str(s.getsockname()[0])) for s in sockets):
        for sock in sockets:
            sock.close()
        raise ServeError(
            f"refusing to listen on {_shown(host)}:{port} without authentication "
            "(add tokens or users to the config's serve: section, or listen on 127.0.0.1)"
        )
    bound = int(sockets[0].getsockname()[1])
    try:
        return asyncio.run(_serve(sockets, command, host, bound, public_url, title, gate))
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
    gate: Gate | None,
) -> int:
    from aiohttp import web

    _quiet_logging()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_error)
    server = _make_server(command, host, port, public_url, title)
    app = await server.build_app()
    app.middlewares.append(_guard(gate, public_url))
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=CLOSE_TIMEOUT
    )
    await runner.setup()
    with stop_on_signals() as stop:
        try:
            for sock in sockets:
                await web.SockSite(runner, sock).start()
            print(f"opstui serve: listening on http://{_shown(host)}:{port}", flush=True)
            if gate is None:
                print("opstui serve: read-only (no serve: authentication in the config)",
                      flush=True)
            await stop.wait()
            await server.stop_sessions()
        finally:
            await runner.cleanup()
    return 0


_VIEWER: ContextVar[str | None] = ContextVar("opstui_serve_viewer", default=None)
"""The request's viewer, set by the guard right before it calls the handler (same task)."""
Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _loopback_host(host: str) -> bool:
    """A Host header naming this machine's loopback (an address or localhost)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    return name == "localhost" or name.endswith(".localhost") or _loopback_address(name)


def _guard(gate: Gate | None, public_url: str | None) -> Any:
    """The aiohttp middleware that runs before every handler: the page, the static files,
    downloads and, above all, the websocket (whose handler starts a child). A websocket's
    Origin must be the page's own (another site's page may not drive a dashboard through a
    browser that can reach serve). Without a gate, the Host must be a loopback name (or
    --public-url's), so a rebound DNS name cannot read the read-only dashboard; with one, a
    request without a valid cookie, bearer token or basic auth is 401 and no handler runs."""
    from aiohttp import web

    public_origin = _origin(public_url) if public_url else None
    public_host = urlsplit(public_url).netloc.lower() if public_url else None
    secure_cookie = public_origin is not None and public_origin.startswith("https:")
    if gate is not None and gate.basic:
        refusal = "opstui serve: sign in with your user name and password, or a token link"
    else:
        refusal = "opstui serve: open the link with ?token=... that you were given"

    def with_cookie(response: web.StreamResponse, request: web.Request, viewer: str) -> None:
        assert gate is not None
        response.set_cookie(
            COOKIE,
            gate.cookie_for(viewer),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=secure_cookie or request.secure,
        )

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if route == "websocket":
            origin = request.headers.get("Origin")
            expected = public_origin or f"{request.scheme}://{request.host}".lower()
            if origin is not None and origin.lower() != expected:
                return web.Response(status=403, text="opstui serve: this page's origin only\n")
        if gate is None:
            if not _loopback_host(request.host) and request.host.lower() != public_host:
                # DNS rebinding: another site's name pointed at 127.0.0.1
                return web.Response(status=403, text="opstui serve: loopback names only\n")
            _VIEWER.set(None)
            return await handler(request)
        cookie = request.cookies.get(COOKIE)
        if route == "index" and TOKEN_PARAM in request.query:
            # A token link decides on its own (a wrong one is refused, whatever else the
            # browser holds); a right one never stays in the address bar or a Referer.
            viewer = gate.by_token(request.query[TOKEN_PARAM])
            if viewer is not None:
                rest = [(k, v) for k, v in request.query.items() if k != TOKEN_PARAM]
                location = "./" + (f"?{urlencode(rest)}" if rest else "")
                moved = web.Response(status=303, headers={"Location": location})
                with_cookie(moved, request, viewer)
                return moved
        else:
            viewer = gate.viewer(cookie, request.headers.get("Authorization"))
        if viewer is None:
            challenge = {"WWW-Authenticate": 'Basic realm="opstui", charset="UTF-8"'}
            return web.Response(
                status=401, text=refusal + "\n", headers=challenge if gate.basic else None
            )
        _VIEWER.set(viewer)
        response = await handler(request)
        if route == "index" and (cookie is None or gate.by_cookie(cookie) != viewer):
            with_cookie(response, request, viewer)
        return response

    return guard


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

        def __init__(self, argv: list[str], viewer: str | None, **kwargs: Any) -> None:
            super().__init__(" ".join(argv), **kwargs)
            self.argv = argv
            self.viewer = viewer
            self.process: asyncio.subprocess.Process | None = None

        async def _open_app_process(
            self, width: int = 80, height: int = 24
        ) -> asyncio.subprocess.Process:
            environment = self._build_environment(width=width, height=height)
            environment.pop(VIEWER_ENV, None)  # only the gate names a viewer
            if self.viewer is not None:
                environment[VIEWER_ENV] = self.viewer
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
                    _VIEWER.get(),
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
