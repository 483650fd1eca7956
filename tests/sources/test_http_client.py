"""HttpClient against real loopback servers: TLS, timeouts, failure reasons, both transports."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from opstui.sources.base import ProbeError
from opstui.sources.http import (
    MAX_BODY,
    HttpClient,
    Transport,
    get_http_client,
    transport_from_env,
)
from opstui.sources.registry import ClientPool
from tests.sources.conftest import Certificate, ServeTls, http_connection
from tests.support import ServeApp, free_port

TRANSPORTS: list[Transport] = ["aiohttp", "httpx"]


def hello_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "path": request.path_qs,
                "auth": request.headers.get("Authorization", ""),
                "agent": request.headers.get("User-Agent", ""),
                "x-test": request.headers.get("X-Test", ""),
            }
        )

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (MAX_BODY + 5000))

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/{tail:.*}", hello)
    return app


@pytest.fixture
async def client_factory() -> AsyncIterator[list[HttpClient]]:
    made: list[HttpClient] = []
    yield made
    for client in made:
        await client.aclose()


def make(
    made: list[HttpClient], base_url: str, transport: Transport, **extra: object
) -> HttpClient:
    client = HttpClient(http_connection(base_url, **extra), transport=transport)
    made.append(client)
    return client


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_path_joins_under_prefix_and_headers_reach_server(
    serve_app: ServeApp, client_factory: list[HttpClient], transport: Transport
) -> None:
    base = await serve_app(hello_app())
    client = make(client_factory, f"{base}/api/v1", transport, headers={"X-Test": "conn"})
    response = await client.request("GET", "/health?full=1", headers={"x-test": "probe"})
    assert response.status_code == 200
    seen = response.body.decode()
    assert '"/api/v1/health?full=1"' in seen
    assert '"x-test": "probe"' in seen  # probe header wins over the connection's
    assert '"agent": "opstui/' in seen
    assert response.latency_ms > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_password_in_base_url_goes_as_basic_auth_and_is_never_shown(
    serve_app: ServeApp,
    client_factory: list[HttpClient],
    transport: Transport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = await serve_app(hello_app())
    monkeypatch.setenv("HEALTH_PW", "s3cret")
    client = make(client_factory, base.replace("http://", "http://ops:${HEALTH_PW}@"), transport)
    response = await client.request("GET", "/health")
    assert '"auth": "Basic b3BzOnMzY3JldA=="' in response.body.decode()  # ops:s3cret
    assert "s3cret" not in client.shown_url("/health")
    assert "ops:***@" in client.shown_url("/health")
    assert "s3cret" not in client.base_url


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_body_is_capped(
    serve_app: ServeApp, client_factory: list[HttpClient], transport: Transport
) -> None:
    base = await serve_app(hello_app())
    response = await make(client_factory, base, transport).request("GET", "/big")
    assert response.truncated
    assert len(response.body) == MAX_BODY


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_refused(client_factory: list[HttpClient], transport: Transport) -> None:
    client = make(client_factory, f"http://127.0.0.1:{free_port()}", transport)
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/health", time_limit=5)
    assert caught.value.reason == "refused"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_timeout_applies_per_request(
    serve_app: ServeApp, client_factory: list[HttpClient], transport: Transport
) -> None:
    base = await serve_app(hello_app())
    client = make(client_factory, base, transport, timeout="30s")
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/slow", time_limit=0.3)
    assert caught.value.reason == "timeout after 300ms"
    # the client is still usable afterwards
    assert (await client.request("GET", "/ok", time_limit=5)).status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_dns_failure(client_factory: list[HttpClient], transport: Transport) -> None:
    client = make(client_factory, "http://no-such-host.invalid:8080", transport)
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/health", time_limit=10)
    assert caught.value.reason == "DNS: cannot resolve host"


async def _reset_server() -> tuple[asyncio.Server, int]:
    """Reads the request, then aborts the connection with a TCP RST (SO_LINGER 0)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_connection_reset(client_factory: list[HttpClient], transport: Transport) -> None:
    server, port = await _reset_server()
    try:
        client = make(client_factory, f"http://127.0.0.1:{port}", transport)
        with pytest.raises(ProbeError) as caught:
            await client.request("GET", "/health", time_limit=5)
        assert caught.value.reason == "connection reset"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_self_signed_fails_verification_by_default(
    serve_tls: ServeTls, client_factory: list[HttpClient], transport: Transport
) -> None:
    base = await serve_tls(hello_app())
    client = make(client_factory, base, transport)
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/health", time_limit=5)
    assert caught.value.reason == "TLS: certificate verify failed"
    assert caught.value.hint is not None and "ca_file" in caught.value.hint


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_self_signed_passes_with_ca_file(
    serve_tls: ServeTls,
    self_signed: Certificate,
    client_factory: list[HttpClient],
    transport: Transport,
) -> None:
    base = await serve_tls(hello_app())
    client = make(client_factory, base, transport, ca_file=str(self_signed.cert))
    response = await client.request("GET", "/health", time_limit=5)
    assert response.status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_verify_tls_off_accepts_self_signed(
    serve_tls: ServeTls, client_factory: list[HttpClient], transport: Transport
) -> None:
    base = await serve_tls(hello_app())
    client = make(client_factory, base, transport, verify_tls=False)
    assert (await client.request("GET", "/health", time_limit=5)).status_code == 200


async def test_plain_http_server_on_https_url(
    serve_app: ServeApp, client_factory: list[HttpClient]
) -> None:
    base = await serve_app(hello_app())
    client = make(client_factory, base.replace("http://", "https://"), "aiohttp")
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/health", time_limit=5)
    assert caught.value.reason.startswith("TLS: ")


async def test_missing_ca_file_is_a_poll_error(
    serve_tls: ServeTls, client_factory: list[HttpClient]
) -> None:
    base = await serve_tls(hello_app())
    client = make(client_factory, base, "aiohttp", ca_file="/nonexistent/ca.pem")
    with pytest.raises(ProbeError) as caught:
        await client.request("GET", "/health", time_limit=5)
    assert caught.value.reason.startswith("TLS: cannot read ca_file")


async def test_pool_shares_one_client_per_connection() -> None:
    pool = ClientPool()
    connection = http_connection("http://127.0.0.1:1")
    first = get_http_client(pool, "app", connection)
    assert get_http_client(pool, "app", connection) is first
    assert get_http_client(pool, "other", connection) is not first
    assert first.transport == "aiohttp"
    await pool.aclose()


def test_transport_switch_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSTUI_HTTP_TRANSPORT", raising=False)
    assert transport_from_env() == "aiohttp"
    monkeypatch.setenv("OPSTUI_HTTP_TRANSPORT", "httpx")
    assert transport_from_env() == "httpx"
    monkeypatch.setenv("OPSTUI_HTTP_TRANSPORT", "curl")
    with pytest.raises(ValueError, match="OPSTUI_HTTP_TRANSPORT"):
        transport_from_env()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_cookie_rides_from_one_request_to_the_next(
    serve_app: ServeApp, transport: Transport
) -> None:
    """Each request stands alone, as the curl line a confirmation shows: a Set-Cookie from a
    login-like answer is not sent back on the next request."""
    seen: list[str] = []

    async def login(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.set_cookie("session", "s3cret-session", path="/")
        return response

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie", ""))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/after", echo)
    url = await serve_app(app)
    client = HttpClient(http_connection(url), transport=transport)
    try:
        first = await client.request("GET", "/login")
        assert first.status_code == 200
        await client.request("GET", "/after")
        await client.request("GET", "/after")
    finally:
        await client.aclose()
    assert seen == ["", ""]
