"""Attacks on `opstui serve`'s gate, each against real serve processes and a recording backend.

What counts is the server's state afterwards: no opstui child was started for the request (the
child is what holds the credentials and runs actions), the backend received no mutation, and
the refusal carried neither the page nor a session cookie. Without a `serve:` section, serve
must not listen beyond loopback at all (and never starts listening: nothing accepts on the
port)."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil
import pytest

from opstui.serve import COOKIE, Gate
from tests.security.serve_servers import (  # noqa: F401 - fixtures
    DEADLINE,
    PASSWORD,
    TITLE,
    TOKEN,
    TOKEN_LABEL,
    USER,
    Backend,
    Served,
    Terminal,
    backend_fixture,
    basic,
    gated_fixture,
    open_serve_fixture,
    run_mutation,
    serve_env,
    start_serve,
    write_config,
    ws_url,
)

Headers = dict[str, str]


def _cookie(value: str) -> Headers:
    return {"Cookie": f"{COOKIE}={value}"}


def _forged_signature() -> str:
    name = base64.urlsafe_b64encode(TOKEN_LABEL.encode()).decode().rstrip("=")
    return f"{name}.{'0' * 64}"


def _other_servers_cookie() -> str:
    """A well-formed cookie signed by another gate with the very same secrets (another serve
    process, or this one before a restart)."""
    return Gate({TOKEN_LABEL: TOKEN}, {USER: PASSWORD}).cookie_for(TOKEN_LABEL)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# (path and query, headers) for plain HTTP requests that must all be refused with 401.
HTTP_ATTACKS: dict[str, tuple[str, Callable[[], Headers]]] = {
    "page-no-credentials": ("/", dict),
    "static-no-credentials": ("/static/js/textual.js", dict),
    "static-listing-no-credentials": ("/static/", dict),
    "download-no-credentials": ("/download/anything", dict),
    "unknown-path-no-credentials": ("/nope", dict),
    "page-wrong-token": ("/?token=wrong-token-0123456789", dict),
    "page-token-prefix": (f"/?token={TOKEN[:-1]}", dict),
    "page-token-suffix": (f"/?token={TOKEN}x", dict),
    "page-token-swapped-case": (f"/?token={TOKEN.swapcase()}", dict),
    "page-empty-token": ("/?token=", dict),
    "page-token-label-as-token": (f"/?token={TOKEN_LABEL}", dict),
    "page-password-as-token": (f"/?token={PASSWORD}", dict),
    "static-with-token-query": (f"/static/js/textual.js?token={TOKEN}x", dict),
    "bearer-wrong": ("/", lambda: {"Authorization": "Bearer wrong-token-0123456789"}),
    "bearer-password": ("/", lambda: {"Authorization": f"Bearer {PASSWORD}"}),
    "bearer-empty": ("/", lambda: {"Authorization": "Bearer "}),
    "basic-wrong-password": ("/", lambda: {"Authorization": basic(USER, PASSWORD + "x")}),
    "basic-unknown-user": ("/", lambda: {"Authorization": basic("bob", PASSWORD)}),
    "basic-token-as-password": ("/", lambda: {"Authorization": basic(USER, TOKEN)}),
    "basic-label-and-token": ("/", lambda: {"Authorization": basic(TOKEN_LABEL, TOKEN)}),
    "basic-empty-password": ("/", lambda: {"Authorization": basic(USER, "")}),
    "basic-no-colon": ("/", lambda: {"Authorization": f"Basic {_b64(USER + PASSWORD)}"}),
    "basic-not-base64": ("/", lambda: {"Authorization": f"Basic {USER}:{PASSWORD}"}),
    "basic-user-with-password-suffix": (
        "/", lambda: {"Authorization": basic(USER + ":" + PASSWORD, "")}
    ),
    "cookie-forged-signature": ("/", lambda: _cookie(_forged_signature())),
    "cookie-raw-token": ("/", lambda: _cookie(TOKEN)),
    "cookie-other-servers-key": ("/", lambda: _cookie(_other_servers_cookie())),
    "cookie-label-only": ("/", lambda: _cookie(TOKEN_LABEL)),
    "static-cookie-forged": ("/static/js/textual.js", lambda: _cookie(_forged_signature())),
    "page-wrong-token-with-valid-basic": (
        "/?token=wrong-token-0123456789", lambda: {"Authorization": basic(USER, PASSWORD)}
    ),
}


async def _settled_no_child(served: Served) -> None:
    """No child now, and none a moment later (a handler that ran would have spawned one)."""
    await asyncio.sleep(0.3)
    assert served.viewers() == []


@pytest.mark.parametrize("attack", list(HTTP_ATTACKS))
async def test_http_request_without_valid_credentials_is_refused(
    gated: Served, backend: Backend, attack: str
) -> None:
    path, headers = HTTP_ATTACKS[attack]
    await asyncio.to_thread(gated.wait_no_viewers)
    before = len(backend.requests)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(gated.base + path, headers=headers(), allow_redirects=False) as response,
    ):
        body = await response.text()
        assert response.status == 401, (response.status, body[:200])
        assert "Set-Cookie" not in response.headers
        assert TITLE not in body and "textual" not in body
        assert response.headers.get("WWW-Authenticate", "").startswith("Basic ")
    await _settled_no_child(gated)
    assert backend.requests[before:] == []


WS_ATTACKS: dict[str, tuple[str, Callable[[], Headers], int]] = {
    "ws-no-credentials": ("", dict, 401),
    "ws-token-in-query": (f"&token={TOKEN}", dict, 401),
    "ws-wrong-token-in-query": ("&token=wrong-token-0123456789", dict, 401),
    "ws-bearer-wrong": ("", lambda: {"Authorization": "Bearer wrong-token-0123456789"}, 401),
    "ws-basic-wrong-password": (
        "", lambda: {"Authorization": basic(USER, PASSWORD + "x")}, 401
    ),
    "ws-cookie-forged": ("", lambda: _cookie(_forged_signature()), 401),
    "ws-cookie-other-servers-key": ("", lambda: _cookie(_other_servers_cookie()), 401),
    "ws-cross-origin-with-valid-basic": (
        "", lambda: {"Authorization": basic(USER, PASSWORD), "Origin": "http://evil.example"},
        403,
    ),
    "ws-null-origin-with-valid-basic": (
        "", lambda: {"Authorization": basic(USER, PASSWORD), "Origin": "null"}, 403
    ),
    "ws-cross-origin-with-valid-bearer": (
        "", lambda: {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}, 403
    ),
}


@pytest.mark.parametrize("attack", list(WS_ATTACKS))
async def test_websocket_without_valid_credentials_starts_no_opstui(
    gated: Served, backend: Backend, attack: str
) -> None:
    query, headers, status = WS_ATTACKS[attack]
    await asyncio.to_thread(gated.wait_no_viewers)
    before = len(backend.requests)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(ws_url(gated) + query, headers=headers())
    assert refused.value.status == status
    await _settled_no_child(gated)
    assert backend.requests[before:] == []


async def test_read_only_serve_refuses_another_sites_websocket(
    open_serve: Served, backend: Backend
) -> None:
    """Without auth the children are read-only, but another site's page still may not read
    the dashboard through a browser that can reach the loopback port."""
    await asyncio.to_thread(open_serve.wait_no_viewers)
    before = len(backend.requests)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                ws_url(open_serve), headers={"Origin": "http://evil.example"}
            )
    assert refused.value.status == 403
    await _settled_no_child(open_serve)
    assert backend.requests[before:] == []


@pytest.mark.parametrize("target", ["page", "websocket"])
async def test_read_only_serve_refuses_a_rebound_dns_name(
    open_serve: Served, backend: Backend, target: str
) -> None:
    """DNS rebinding: evil.example resolved to 127.0.0.1, so the browser's Host (and, for the
    websocket, Origin) is evil.example's: same origin to the browser, refused by serve."""
    await asyncio.to_thread(open_serve.wait_no_viewers)
    before = len(backend.requests)
    port = open_serve.base.rsplit(":", 1)[1]
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        if target == "page":
            async with session.get(open_serve.base + "/", headers=rebound) as response:
                assert response.status == 403
                assert TITLE not in await response.text()
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(ws_url(open_serve), headers=rebound)
            assert refused.value.status == 403
    await _settled_no_child(open_serve)
    assert backend.requests[before:] == []


async def test_a_signed_in_viewer_of_a_read_only_serve_cannot_mutate(
    backend: Backend, tmp_path: Path
) -> None:
    """`serve --read-only` with a login: the viewer is known, the children still read-only;
    the keys that POST on a writable serve (test_serve_auth.py) leave the backend untouched."""
    served = start_serve(write_config(tmp_path, backend.url, auth=True), "--read-only")
    try:
        before = len(backend.mutations())
        headers = {"Authorization": basic(USER, PASSWORD)}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.ws_connect(ws_url(served), headers=headers) as ws,
        ):
            await run_mutation(Terminal(ws))
            [viewer] = served.viewers()
            assert "--read-only" in viewer.cmdline()
        assert backend.mutations()[before:] == []
        assert all(r.get("phase") not in ("intent", "result") for r in served.audit())
    finally:
        served.close()


def _own_public_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


@pytest.mark.parametrize("where", ["0.0.0.0", "[::]", "own-address"])
def test_without_auth_serve_refuses_to_listen_beyond_loopback(
    backend: Backend, tmp_path: Path, where: str
) -> None:
    host = _own_public_address() if where == "own-address" else where
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    if where == "[::]" and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    config = write_config(tmp_path, backend.url, auth=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "opstui", "serve", "--config", str(config),
         "--listen", f"{host}:{port}"],
        capture_output=True, text=True, timeout=DEADLINE, env=serve_env(),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opstui: refusing to listen on"), lines
    assert "without authentication" in lines[0]
    assert result.stdout == ""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
