"""HttpClient.fetch, the probes' path straight on aiohttp, against real loopback servers.

Where it could differ from `request` (httpx over the aiohttp transport): the headers sent,
basic auth from the URL, the body cap, redirects, cookies, the origin checks, closing, and
each failure reason. Failure cases run through both paths and must give the same reason.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from opstui.sources.base import ProbeError
from opstui.sources.http import MAX_BODY, USER_AGENT, HttpClient, HttpResponse
from tests.sources.conftest import Certificate, ServeTls, http_connection
from tests.support import ServeApp, free_port

Call = Callable[..., Awaitable[HttpResponse]]
PATHS = ["fetch", "request"]


def call(client: HttpClient, path: str) -> Call:
    """client.fetch or client.request, by name."""
    method: Call = getattr(client, path)
    return method


@pytest.fixture
async def clients() -> AsyncIterator[list[HttpClient]]:
    made: list[HttpClient] = []
    yield made
    for client in made:
        await client.aclose()


def make(made: list[HttpClient], base_url: str, **extra: Any) -> HttpClient:
    client = HttpClient(http_connection(base_url, **extra))
    made.append(client)
    return client


def echo_app(seen: list[web.Request]) -> web.Application:
    """/echo records the request; /big, /gzip-big, /slow, /redirect and /login as named."""

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"ok": True})

    async def big(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(body=b"x" * (MAX_BODY + 5000))

    async def gzip_big(request: web.Request) -> web.Response:
        body = gzip.compress(b"y" * (MAX_BODY * 3))  # ~3 KiB on the wire
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(text="late")

    async def redirect(request: web.Request) -> web.Response:
        seen.append(request)
        raise web.HTTPFound(location=request.query.get("to", "/echo"))

    async def login(request: web.Request) -> web.Response:
        seen.append(request)
        response = web.json_response({"ok": True})
        response.set_cookie("session", "s3cret-session", path="/")
        return response

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/gzip-big", gzip_big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/login", login)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


# --- what is sent ----------------------------------------------------------------------------


async def test_headers_sent_are_those_request_sends(
    serve_app: ServeApp, clients: list[HttpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """User-Agent, the connection's headers (a secret revealed), probe headers over them
    whatever their case; no Cookie; the same as the httpx path sends."""
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    monkeypatch.setenv("FETCH_KEY", "k3y-value")
    client = make(
        clients, f"{base}/api", headers={"X-Test": "conn", "X-Key": "${FETCH_KEY}", "X-Keep": "1"}
    )
    for path in PATHS:
        response = await call(client, path)("GET", "/health?full=1", headers={"x-test": "probe"})
        assert response.status_code == 200
    by_fetch, by_request = seen
    for request in (by_fetch, by_request):
        assert request.path_qs == "/api/health?full=1"
        assert request.headers["User-Agent"] == USER_AGENT
        assert request.headers.getall("X-Test") == ["probe"]
        assert request.headers["X-Key"] == "k3y-value"
        assert request.headers["X-Keep"] == "1"
        assert "Cookie" not in request.headers
        assert "Authorization" not in request.headers
    wanted = {"user-agent", "x-test", "x-key", "x-keep", "host", "accept"}
    assert {k.lower(): v for k, v in by_fetch.headers.items() if k.lower() in wanted} == {
        k.lower(): v for k, v in by_request.headers.items() if k.lower() in wanted
    }


async def test_head_method(serve_app: ServeApp, clients: list[HttpClient]) -> None:
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    response = await make(clients, base).fetch("HEAD", "/health")
    assert response.status_code == 200 and response.body == b""
    assert [r.method for r in seen] == ["HEAD"]


@pytest.mark.parametrize("path", PATHS)
async def test_url_credentials_go_as_basic_auth_over_any_authorization_header(
    serve_app: ServeApp,
    clients: list[HttpClient],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    monkeypatch.setenv("FETCH_PW", "s3cret")
    client = make(clients, base.replace("http://", "http://ops:${FETCH_PW}@"))
    await call(client, path)("GET", "/health")
    await call(client, path)("GET", "/health", headers={"authorization": "Bearer other"})
    basic = "Basic b3BzOnMzY3JldA=="  # ops:s3cret
    assert [r.headers.getall("Authorization") for r in seen] == [[basic], [basic]]
    assert "s3cret" not in client.shown_url("/health")


async def test_non_ascii_credentials_encode_as_httpx_does(
    serve_app: ServeApp, clients: list[HttpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    monkeypatch.setenv("FETCH_PW", "p%40ss%C3%A9")
    client = make(clients, base.replace("http://", "http://op%C3%A9:${FETCH_PW}@"))
    await client.fetch("GET", "/health")
    await client.request("GET", "/health")
    assert seen[0].headers["Authorization"] == seen[1].headers["Authorization"]


# --- what is read ----------------------------------------------------------------------------


async def test_body_is_capped(serve_app: ServeApp, clients: list[HttpClient]) -> None:
    base = await serve_app(echo_app([]))
    client = make(clients, base)
    response = await client.fetch("GET", "/big")
    assert response.truncated and len(response.body) == MAX_BODY
    small = await client.fetch("GET", "/big", max_body=1000)
    assert small.truncated and small.body == b"x" * 1000
    whole = await client.fetch("GET", "/big", max_body=MAX_BODY * 2)
    assert not whole.truncated and len(whole.body) == MAX_BODY + 5000
    # the client is still usable after a body left unread
    assert (await client.fetch("GET", "/health")).status_code == 200


@pytest.mark.parametrize("path", PATHS)
async def test_cap_counts_decoded_bytes(
    serve_app: ServeApp, clients: list[HttpClient], path: str
) -> None:
    base = await serve_app(echo_app([]))
    response = await call(make(clients, base), path)("GET", "/gzip-big")
    assert response.truncated and response.body == b"y" * MAX_BODY


async def test_response_fields(serve_app: ServeApp, clients: list[HttpClient]) -> None:
    base = await serve_app(echo_app([]))
    response = await make(clients, base).fetch("GET", "/health")
    assert response.status_code == 200
    assert response.reason == "OK"
    assert response.content_type is not None and "application/json" in response.content_type
    assert response.body == b'{"ok": true}'
    assert response.url == f"{base}/health"
    assert not response.truncated and response.latency_ms > 0


async def test_redirect_is_never_followed(
    serve_app: ServeApp, clients: list[HttpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe reads the redirect itself: neither a same-origin target nor another origin is
    requested (the connection's headers would go along)."""
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    foreign_seen: list[web.Request] = []
    foreign = await serve_app(echo_app(foreign_seen))
    monkeypatch.setenv("FETCH_ADMIN", "adm1n")
    client = make(clients, base, headers={"X-Admin-Key": "${FETCH_ADMIN}"})
    for to in ("/echo", f"{foreign}/steal"):
        response = await client.fetch("GET", f"/redirect?to={to}")
        assert response.status_code == 302
    assert [r.path for r in seen] == ["/redirect", "/redirect"]
    assert foreign_seen == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("path", PATHS)
async def test_no_cookie_is_kept(
    serve_app: ServeApp, clients: list[HttpClient], path: str, host: str
) -> None:
    """aiohttp's own jar refuses cookies from an IP address but keeps a host name's: the
    session has no jar at all, for probes and actions alike."""
    seen: list[web.Request] = []
    base = (await serve_app(echo_app(seen))).replace("127.0.0.1", host)
    client = make(clients, base)
    await call(client, path)("GET", "/login")
    await call(client, path)("GET", "/after")
    await call(client, path)("GET", "/after")
    assert [r.headers.get("Cookie", "") for r in seen] == ["", "", ""]


# --- origin ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["http://127.0.0.2:1/x", "//evil.example/x", "/api/../../x", "https://127.0.0.1/x"]
)
async def test_a_path_off_the_origin_is_refused_before_any_request(
    serve_app: ServeApp, clients: list[HttpClient], path: str
) -> None:
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    with pytest.raises(ProbeError) as caught:
        await make(clients, f"{base}/api").fetch("GET", path)
    assert caught.value.reason.startswith("path ")
    assert seen == []


@pytest.mark.parametrize("where", ["probe", "connection"])
async def test_a_host_header_off_the_origin_is_refused(
    serve_app: ServeApp, clients: list[HttpClient], where: str
) -> None:
    seen: list[web.Request] = []
    base = await serve_app(echo_app(seen))
    host = {"Host": "evil.example"}
    client = make(clients, base, headers=host if where == "connection" else {})
    with pytest.raises(ProbeError) as caught:
        await client.fetch("GET", "/health", headers=host if where == "probe" else None)
    assert caught.value.reason.startswith("headers: ")
    assert seen == []


# --- closing, transports ---------------------------------------------------------------------


async def test_aclose_closes_the_session_and_the_httpx_client(serve_app: ServeApp) -> None:
    base = await serve_app(echo_app([]))
    client = HttpClient(http_connection(base))
    await client.fetch("GET", "/health")
    await client.request("GET", "/health")
    session, httpx_client = client._session, client._client
    assert session is not None and httpx_client is not None
    await client.aclose()
    assert session.closed and httpx_client.is_closed
    await client.aclose()  # twice is harmless
    # fetch-only: the session is closed too
    other = HttpClient(http_connection(base))
    await other.fetch("GET", "/health")
    only = other._session
    await other.aclose()
    assert only is not None and only.closed


async def test_on_the_httpx_transport_fetch_is_request(
    serve_app: ServeApp, clients: list[HttpClient]
) -> None:
    base = await serve_app(echo_app([]))
    client = HttpClient(http_connection(base), transport="httpx")
    clients.append(client)
    assert (await client.fetch("GET", "/health")).status_code == 200
    assert client._session is None and client._client is not None


# --- failures: the same reason on both paths -------------------------------------------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HELLO THERE\r\n\r\n")
    await writer.drain()
    writer.close()


async def _short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    await writer.drain()
    writer.close()


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    _rst(writer)


async def _reset_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    await writer.drain()
    _rst(writer)


async def _bad_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
    await writer.drain()
    writer.close()


async def _bad_gzip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde")
    await writer.drain()
    writer.close()


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


RAW_CASES: dict[str, tuple[Behaviour, str]] = {
    "closed before answering": (_close, "server closed the connection"),
    "reset before answering": (_reset, "connection reset"),
    "not HTTP": (_garbage, "HTTP protocol error"),
    "body shorter than Content-Length": (_short_body, "HTTP protocol error"),
    "reset mid-body": (_reset_mid_body, "connection reset"),
    "bad chunk header": (_bad_chunk, "HTTP protocol error"),
    "bad gzip body": (_bad_gzip, "cannot decode the response body"),
    "hung": (_hang, "timeout after 500ms"),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", list(RAW_CASES))
async def test_failure_reasons_from_a_raw_server(
    clients: list[HttpClient], case: str, path: str
) -> None:
    behaviour, reason = RAW_CASES[case]
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await behaviour(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = make(clients, f"http://127.0.0.1:{port}")
        with pytest.raises(ProbeError) as caught:
            await call(client, path)("GET", "/health", time_limit=0.5)
        assert caught.value.reason == reason
    finally:
        for task in list(tasks):
            task.cancel()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("path", PATHS)
async def test_refused_dns_and_tls_reasons(
    serve_tls: ServeTls,
    serve_app: ServeApp,
    self_signed: Certificate,
    clients: list[HttpClient],
    path: str,
) -> None:
    tls = await serve_tls(web.Application())
    plain = await serve_app(echo_app([]))
    cases = {
        f"http://127.0.0.1:{free_port()}": "refused",
        "http://no-such-host.invalid:8080": "DNS: cannot resolve host",
        tls: "TLS: certificate verify failed",
        plain.replace("http://", "https://"): "TLS: ",
    }
    for base, reason in cases.items():
        with pytest.raises(ProbeError) as caught:
            await call(make(clients, base), path)("GET", "/health", time_limit=10)
        assert caught.value.reason.startswith(reason), (base, caught.value.reason)
    with pytest.raises(ProbeError) as caught:
        await call(make(clients, tls, ca_file="/nonexistent/ca.pem"), path)("GET", "/x")
    assert caught.value.reason.startswith("TLS: cannot read ca_file")
    trusted = make(clients, tls, ca_file=str(self_signed.cert))
    assert (await call(trusted, path)("GET", "/x", time_limit=5)).status_code == 404
    unverified = make(clients, tls, verify_tls=False)
    assert (await call(unverified, path)("GET", "/x", time_limit=5)).status_code == 404


async def test_timeout_then_still_usable(serve_app: ServeApp, clients: list[HttpClient]) -> None:
    base = await serve_app(echo_app([]))
    client = make(clients, base, timeout="30s")
    with pytest.raises(ProbeError) as caught:
        await client.fetch("GET", "/slow", time_limit=0.3)
    assert caught.value.reason == "timeout after 300ms"
    assert (await client.fetch("GET", "/ok", time_limit=5)).status_code == 200
