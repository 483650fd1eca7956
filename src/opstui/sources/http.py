"""One httpx client per `http` connection, on the aiohttp transport (DESIGN.md section 7).

httpx stays the API; its default transport costs 1-1.7 ms of CPU per request against ~0.3 ms
for `httpx_aiohttp.AiohttpTransport`, which matters at 200 probes/s. `make_transport` keeps
both so bench/ can compare (env OPSTUI_HTTP_TRANSPORT=httpx switches a running app).

The aiohttp transport builds its TCPConnector from the SSLContext we give it, but maps
exceptions loosely (a refused connection arrives as httpx.ConnectTimeout) and applies only
socket-level timeouts. So we build the SSLContext ourselves, put an asyncio deadline around
request + body, and classify failures from the root cause, not from httpx's exception type.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import httpx

from opstui import __version__
from opstui.config.kinds.http import (
    OffOrigin,
    check_host_header,
    join_on_origin,
    origin_text,
    same_origin,
)
from opstui.config.models import HttpConnection, is_sensitive_header
from opstui.config.types import Secret, format_duration, redact, reveal
from opstui.sources.base import Client, ProbeError
from opstui.sources.errors import exception_chain, one_line
from opstui.sources.registry import ClientPool

Transport = Literal["aiohttp", "httpx"]
TRANSPORT_ENV = "OPSTUI_HTTP_TRANSPORT"
DEFAULT_TRANSPORT: Transport = "aiohttp"
MAX_BODY = 1024 * 1024  # bytes read from a response; the rest is dropped
USER_AGENT = f"opstui/{__version__}"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KEEPALIVE_EXPIRY = 5.0  # seconds; as httpx, under the 5 s idle timeout of Node servers

HeaderValue = str | Secret


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A finished request: status, content type, body (capped) and the time it took."""

    status_code: int
    reason: str
    url: str
    content_type: str | None
    body: bytes
    truncated: bool
    latency_ms: float


def tls_context(connection: HttpConnection) -> ssl.SSLContext:
    """Verification on by default; `ca_file` replaces the trust store; off only on request.

    The default store is the system's (SSL_CERT_FILE/SSL_CERT_DIR honoured) plus certifi's,
    so both internal CAs installed on a bastion and public CAs work.
    """
    if not reveal(connection.base_url).lower().startswith("https:"):
        # Plain http (a redirect to https is another origin, never followed): no trust store
        # to load, which saves tens of milliseconds per connection at start-up.
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not connection.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if connection.ca_file:
        return ssl.create_default_context(cafile=connection.ca_file)
    return _system_and_certifi_context()


@functools.cache
def _system_and_certifi_context() -> ssl.SSLContext:
    """One verifying context shared by every https connection: loading stores is slow."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # certifi is optional on top of the system store
        pass
    return context


def make_transport(
    kind: Transport, *, context: ssl.SSLContext, limits: httpx.Limits
) -> httpx.AsyncBaseTransport:
    """The transport under an httpx client: aiohttp (production) or httpx's own (bench)."""
    if kind == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport: httpx.AsyncBaseTransport = AiohttpTransport(
            verify=context, trust_env=False, limits=limits
        )
        return transport
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(verify=context, trust_env=False, limits=limits)
    known = ", ".join(get_args(Transport))
    raise ValueError(f"unknown HTTP transport {kind!r}; use one of {known}")


def transport_from_env() -> Transport:
    """OPSTUI_HTTP_TRANSPORT, so a bench can run the real app on either transport."""
    value = os.environ.get(TRANSPORT_ENV, DEFAULT_TRANSPORT).strip().lower() or DEFAULT_TRANSPORT
    if value not in get_args(Transport):
        raise ValueError(
            f"{TRANSPORT_ENV}={value!r} is not a transport; use one of "
            + ", ".join(get_args(Transport))
        )
    return value  # type: ignore[return-value]


class HttpClient(Client):
    """The shared client of one http connection.

    The httpx client is created on first request, inside the running loop, so a bad
    `ca_file` becomes a poll error on the panel rather than a crash at start-up.
    """

    def __init__(self, connection: HttpConnection, *, transport: Transport = DEFAULT_TRANSPORT):
        if transport not in get_args(Transport):
            raise ValueError(f"unknown HTTP transport {transport!r}")
        self.connection = connection
        self.transport = transport
        real = httpx.URL(reveal(connection.base_url))
        # Credentials in the URL go as an explicit BasicAuth: aiohttp refuses a request that
        # has both an Authorization header (httpx adds one) and userinfo in the URL.
        self._auth = httpx.BasicAuth(real.username, real.password) if real.username else None
        self._base_url = real.copy_with(username=None, password=None)
        self._shown_base = httpx.URL(redact(connection.base_url))
        self._client: httpx.AsyncClient | None = None
        self._urls: dict[str, httpx.URL] = {}

    @property
    def base_url(self) -> str:
        """The base URL as it may be shown (a password as ***)."""
        return str(self._shown_base)

    def url_for(self, path: str) -> str:
        """The URL requested for `path` (without credentials; they go as a header)."""
        return str(self._url(path))

    def _url(self, path: str) -> httpx.URL:
        """url_for as a parsed URL, cached: a probe asks for the same path every poll, and
        building and parsing it was a tenth of each poll's cost."""
        url = self._urls.get(path)
        if url is None:
            try:
                joined = join_url(self._base_url, path)
            except OffOrigin as exc:  # the second wall: prepare and validate refuse first
                raise ProbeError(f"path {exc}") from None
            if len(self._urls) >= URL_CACHE_SIZE:  # templated action paths: stay bounded
                self._urls.clear()
            url = self._urls[path] = httpx.URL(joined)
        return url

    def shown_url(self, path: str) -> str:
        """url_for as it may be shown: a password in the base URL as ***. A path off the
        origin (never requested: _url refuses it) is shown as written, to say what it was."""
        try:
            return join_url(self._shown_base, path)
        except OffOrigin:
            return path

    def shown_headers(self, extra: Mapping[str, HeaderValue] | None = None) -> dict[str, str]:
        """Connection headers with `extra` merged over them, secrets (and likely ones) as ***."""
        merged = _merge_headers(self.connection.headers, extra or {})
        return {name: _shown_value(name, value) for name, value in merged.items()}

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.connection.max_connections,
                max_keepalive_connections=self.connection.max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            )
            transport = make_transport(
                self.transport, context=tls_context(self.connection), limits=limits
            )
            headers = {"User-Agent": USER_AGENT}
            headers.update({k: reveal(v) for k, v in self.connection.headers.items()})
            self._client = StatelessClient(
                transport=transport,
                headers=headers,
                auth=self._auth,
                timeout=self.connection.timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, HeaderValue] | None = None,
        time_limit: float | None = None,
        content: bytes | None = None,
        max_body: int = MAX_BODY,
        redirects: int = 0,
    ) -> HttpResponse:
        """One request with a hard deadline over connect + headers + body; ProbeError on failure.

        `time_limit` defaults to the connection's timeout. Redirects are never followed by
        httpx or aiohttp (either would carry the connection's headers along); with
        `redirects` > 0 up to that many same-origin ones are followed here, see _next_hop.
        """
        seconds = self.connection.timeout if time_limit is None else time_limit
        sent = {name: reveal(value) for name, value in (headers or {}).items()}
        every = (*self.connection.headers.items(), *sent.items())
        hosts = [(name, reveal(value)) for name, value in every if name.lower() == "host"]
        if hosts:  # the second wall, as for paths: validate and prepare refuse first
            try:
                check_host_header(str(self._base_url), hosts)
            except OffOrigin as exc:
                raise ProbeError(f"headers: {exc}") from None
        try:
            url = self._url(path)
            client = self._ensure_client()
            request = client.build_request(
                method, url, headers=sent, content=content, timeout=httpx.Timeout(seconds)
            )
            started = time.perf_counter()
            async with asyncio.timeout(seconds):
                response = await client.send(request, stream=True)
                for _hop in range(redirects):
                    try:
                        following = self._next_hop(request, response)
                    except ProbeError:
                        await response.aclose()
                        raise
                    if following is None:
                        break
                    await response.aclose()
                    request = following
                    response = await client.send(request, stream=True)
                try:
                    body, truncated = await _read_capped(response, max_body)
                finally:
                    await response.aclose()
            latency_ms = (time.perf_counter() - started) * 1000.0
        except ProbeError:
            raise
        except Exception as exc:  # every failure becomes one short reason
            raise probe_error(exc, seconds, self.connection) from exc
        return HttpResponse(
            status_code=response.status_code,
            reason=response.reason_phrase,
            url=str(response.url),
            content_type=response.headers.get("content-type"),
            body=body,
            truncated=truncated,
            latency_ms=latency_ms,
        )

    def _next_hop(self, request: httpx.Request, response: httpx.Response) -> httpx.Request | None:
        """The request a redirect asks for, or None to stop at `response` (not a redirect, or
        one that would repeat a mutation elsewhere than the confirmed URL). A redirect to
        another origin raises ProbeError: the connection's headers, basic auth and cookies go
        only to its own origin, so it is never followed."""
        location = response.headers.get("location")
        if not response.is_redirect or location is None:
            return None
        try:
            target = request.url.join(location)
        except Exception as exc:
            raise ProbeError(
                "redirect to an unreadable location not followed", detail=str(exc)
            ) from None
        if not same_origin(str(self._base_url), str(target)):
            raise ProbeError(f"redirect to another origin not followed: {origin_text(str(target))}")
        method = request.method
        code = response.status_code
        if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
            method = "GET"  # as browsers and httpx do
        if method not in SAFE_METHODS:
            return None  # a 307/308 would send the mutation to a URL nobody confirmed
        headers = httpx.Headers(request.headers)
        content: bytes | None = None
        if method == request.method:
            content = request.content
        else:
            for name in ("content-type", "content-length", "transfer-encoding"):
                headers.pop(name, None)
        return httpx.Request(
            method, target, headers=headers, content=content, extensions=request.extensions
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing and sends nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None


_NO_COOKIES = _NoCookies()


class StatelessClient(httpx.AsyncClient):
    """httpx without a cookie jar. Every probe and action request stands alone, exactly as
    the curl line the confirm modal shows (a cookie set by one step must not ride along on
    the next); and reading Set-Cookie from every response was a tenth of each poll's cost."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        return None


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` decoded bytes; the rest is never buffered."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def get_http_client(
    pool: ClientPool,
    name: str,
    connection: HttpConnection,
    *,
    transport: Transport | None = None,
) -> HttpClient:
    """The pool's client for connection `name`, created on first use."""
    kind = transport if transport is not None else transport_from_env()
    client = pool.get(name, lambda: HttpClient(connection, transport=kind))
    if not isinstance(client, HttpClient):
        raise TypeError(f"connection {name!r} already has a {type(client).__name__}")
    return client


# --- failures -------------------------------------------------------------------------------

HINT_CONFIG = "likely a config or credentials problem"
URL_CACHE_SIZE = 256
_ERRNO_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.ECONNABORTED: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def probe_error(exc: BaseException, timeout: float, connection: HttpConnection) -> ProbeError:
    """A short reason for a transport failure, judged from the innermost cause outwards."""
    chain = list(exception_chain(exc))
    detail = one_line(str(chain[-1]) or type(chain[-1]).__name__)
    for cause in reversed(chain):
        found = _root_reason(cause, timeout, connection)
        if found is not None:
            reason, hint = found
            return ProbeError(reason, hint=hint, detail=detail)
    for cause in chain:
        text = _library_reason(cause, timeout)
        if text is not None:
            return ProbeError(text, detail=detail)
    return ProbeError(f"request failed: {type(exc).__name__}", detail=detail)




def _root_reason(
    exc: BaseException, timeout: float, connection: HttpConnection
) -> tuple[str, str | None] | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = "set ca_file to the CA that signed it" if connection.verify_tls else None
        return "TLS: certificate verify failed", hint
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "handshake failed").lower().replace("_", " ")
        hint = "is the server speaking HTTPS?" if "wrong version" in reason else None
        return f"TLS: {reason}", hint
    if isinstance(exc, socket.gaierror) or type(exc).__name__ == "ClientConnectorDNSError":
        return "DNS: cannot resolve host", "check the host in base_url"
    if isinstance(exc, FileNotFoundError | PermissionError) and connection.ca_file:
        return f"TLS: cannot read ca_file ({exc.strerror or 'error'})", None
    if isinstance(exc, TimeoutError):
        return f"timeout after {format_duration(timeout)}", None
    if isinstance(exc, ConnectionRefusedError):
        return "refused", None
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection reset", None
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno], None
    return None


def _library_reason(exc: BaseException, timeout: float) -> str | None:
    name = type(exc).__name__
    text = str(exc).lower()
    if "refused" in text:
        return "refused"
    if name == "ServerDisconnectedError" or "server disconnected" in text:
        return "server closed the connection"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "bad URL"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "HTTP protocol error"
    if isinstance(exc, httpx.DecodingError):
        return "cannot decode the response body"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {format_duration(timeout)}"
    if isinstance(exc, httpx.ConnectError) or name.startswith("ClientConnector"):
        return "cannot connect"
    return None


def join_url(base: httpx.URL, path: str) -> str:
    """`path` under the base URL's prefix (`/api` + `/health` = `/api/health`); OffOrigin
    (a ValueError, one line) when the result would leave the base URL's scheme, host and port
    (an absolute URL, `//host`, userinfo, ...): see config.kinds.http.join_on_origin."""
    return join_on_origin(str(base), path)


def _merge_headers(
    base: Mapping[str, HeaderValue], extra: Mapping[str, HeaderValue]
) -> dict[str, HeaderValue]:
    """`extra` over `base`, header names compared case-insensitively."""
    merged: dict[str, HeaderValue] = dict(base)
    for name, value in extra.items():
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
        merged[name] = value
    return merged


def _shown_value(name: str, value: HeaderValue) -> str:
    if isinstance(value, Secret):
        return redact(value)
    return "***" if is_sensitive_header(name) else value

