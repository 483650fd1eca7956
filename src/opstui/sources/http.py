"""One client per `http` connection: aiohttp for probes, httpx over it for actions.

DESIGN.md section 7: httpx's default transport costs 1-1.7 ms of CPU per request, httpx over
`httpx_aiohttp.AiohttpTransport` ~0.3 ms, aiohttp alone ~0.1 ms, which matters at 200
probes/s. So probes (`HttpClient.fetch`: health, scrape) call aiohttp directly, and actions
(`HttpClient.request`) keep httpx as their API, over the aiohttp transport on the same
`aiohttp.ClientSession`: one connection pool, one TLS context, no cookie jar.
`OPSTUI_HTTP_TRANSPORT=httpx` puts both on httpx's own transport, for comparison.

aiohttp applies only socket-level timeouts and the transport maps exceptions loosely (a
refused connection arrives as httpx.ConnectTimeout). So we build the SSLContext ourselves,
put an asyncio deadline around connect + headers + body, and classify failures from the root
cause, not from a library's exception type.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import functools
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

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

if TYPE_CHECKING:
    import aiohttp
    import yarl

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
    kind: Transport,
    *,
    context: ssl.SSLContext,
    limits: httpx.Limits,
    session: aiohttp.ClientSession | None = None,
) -> httpx.AsyncBaseTransport:
    """The transport under an httpx client: aiohttp (production) or httpx's own (bench).
    With `session`, the aiohttp transport sends on it (its connector, TLS and cookie jar)."""
    if kind == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport: httpx.AsyncBaseTransport = AiohttpTransport(
            verify=context, trust_env=False, limits=limits, client=session
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

    The aiohttp session and the httpx client are created on first request, inside the
    running loop, so a bad `ca_file` becomes a poll error on the panel rather than a crash at
    start-up. With the aiohttp transport the httpx client sends on the same session.
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
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._fetch_urls: dict[str, yarl.URL] = {}
        self._fetch_headers: dict[str, str] | None = None
        self._basic = _basic_auth(real.username, real.password) if real.username else None
        self._host_header = any(name.lower() == "host" for name in connection.headers)

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

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context(self.connection)
        return self._tls

    def _ensure_session(self) -> aiohttp.ClientSession:
        """The aiohttp session under both paths: the pool (max_connections, keep-alive as
        httpx's), our TLS context, no cookie jar, no proxy from the environment, no default
        timeout (every caller puts its own deadline over the whole request)."""
        session = self._session
        if session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=self.connection.max_connections,
                ssl=self._tls_context(),
                keepalive_timeout=KEEPALIVE_EXPIRY,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return session

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=self.connection.max_connections,
                max_keepalive_connections=self.connection.max_connections,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            )
            session = self._ensure_session() if self.transport == "aiohttp" else None
            transport = make_transport(
                self.transport, context=self._tls_context(), limits=limits, session=session
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
        sent = self._revealed(headers)
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

    def _revealed(self, headers: Mapping[str, HeaderValue] | None) -> dict[str, str]:
        """A request's own headers with secrets revealed, after the Host check: a Host header
        (the connection's or the request's) must name the base URL's host, the second wall
        as for paths (validate and prepare refuse first)."""
        sent = {name: reveal(value) for name, value in headers.items()} if headers else {}
        every = (*self.connection.headers.items(), *sent.items())
        hosts = [(name, reveal(value)) for name, value in every if name.lower() == "host"]
        if hosts:
            try:
                check_host_header(str(self._base_url), hosts)
            except OffOrigin as exc:
                raise ProbeError(f"headers: {exc}") from None
        return sent

    def _fetch_url(self, path: str) -> yarl.URL:
        """_url as aiohttp reads it (yarl from `str(url)`, as the transport hands it over),
        cached alongside it."""
        url = self._fetch_urls.get(path)
        if url is None:
            import yarl

            joined = self._url(path)
            if len(self._fetch_urls) >= URL_CACHE_SIZE:
                self._fetch_urls.clear()
            url = self._fetch_urls[path] = yarl.URL(str(joined))
        return url

    def _ensure_fetch_headers(self) -> dict[str, str]:
        """fetch's headers as httpx sends them: User-Agent, the connection's headers, then
        the URL's credentials as basic auth, which win over any Authorization header.
        Revealed on first request, as the httpx client's are."""
        headers = {"User-Agent": USER_AGENT}
        headers.update({k: reveal(v) for k, v in self.connection.headers.items()})
        if self._basic is not None:
            headers = _with_basic(headers, self._basic)
        self._fetch_headers = headers
        return headers

    async def fetch(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, HeaderValue] | None = None,
        time_limit: float | None = None,
        max_body: int = MAX_BODY,
    ) -> HttpResponse:
        """A probe's request: `request` without httpx, straight on the aiohttp session.

        The same URL (joined on the origin, cached), headers (User-Agent, the connection's,
        `headers` over them, the URL's credentials as basic auth), deadline over connect +
        headers + body, body cap and failure reasons as `request`; never a redirect
        followed, no cookie kept. On the httpx transport (OPSTUI_HTTP_TRANSPORT=httpx) it is
        `request`."""
        if self.transport != "aiohttp":
            return await self.request(
                method, path, headers=headers, time_limit=time_limit, max_body=max_body
            )
        seconds = self.connection.timeout if time_limit is None else time_limit
        extra = self._revealed(headers) if headers or self._host_header else None
        try:
            url = self._fetch_url(path)
            sent = self._fetch_headers or self._ensure_fetch_headers()
            if extra:
                sent = _merge_revealed(sent, extra)
                if self._basic is not None:
                    sent = _with_basic(sent, self._basic)
            session = self._ensure_session()
            started = time.perf_counter()
            async with asyncio.timeout(seconds):
                async with session.request(
                    method, url, headers=sent, allow_redirects=False
                ) as response:
                    body, truncated = await _read_stream_capped(response.content, max_body)
            latency_ms = (time.perf_counter() - started) * 1000.0
        except ProbeError:
            raise
        except Exception as exc:  # every failure becomes one short reason
            raise probe_error(exc, seconds, self.connection) from exc
        code = response.status
        return HttpResponse(
            status_code=code,
            reason=response.reason or httpx.codes.get_reason_phrase(code),
            url=str(response.url),
            content_type=response.headers.get("Content-Type"),
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
        session, self._session = self._session, None
        try:
            if client is not None:
                await client.aclose()  # on the aiohttp transport this closes the session too
        finally:
            if session is not None and not session.closed:
                await session.close()


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


async def _read_stream_capped(stream: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """At most `limit` decoded bytes of an aiohttp body; the rest is never buffered here."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.readany():
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False


def _basic_auth(username: str, password: str) -> str:
    """The Authorization value httpx.BasicAuth sends (UTF-8, as httpx encodes it)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _merge_revealed(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`extra` over `base`, header names compared case-insensitively (as httpx merges)."""
    wanted = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in wanted}
    merged.update(extra)
    return merged


def _with_basic(headers: Mapping[str, str], basic: str) -> dict[str, str]:
    """`headers` with the URL's credentials as the one Authorization header."""
    return _merge_revealed(headers, {"Authorization": basic})


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
    aiohttp_reason = _aiohttp_reason(exc, text)
    if aiohttp_reason is not None:
        return aiohttp_reason
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


def _aiohttp_reason(exc: BaseException, text: str) -> str | None:
    """aiohttp's parser errors, named as httpx names its own. A body cut short by a reset
    keeps the reset only in its message (aiohttp chains the parser's complaint instead)."""
    from aiohttp import ClientPayloadError
    from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError

    if isinstance(exc, ClientPayloadError) and "connectionreseterror" in text:
        return "connection reset"
    if isinstance(exc, ContentEncodingError):
        return "cannot decode the response body"
    if isinstance(exc, HttpProcessingError):
        return "HTTP protocol error"
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

