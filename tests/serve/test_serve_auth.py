"""`opstui serve` with and without authentication, as real processes: a token link becomes an
HttpOnly SameSite=Strict cookie, basic auth works on the page and the websocket, the child
learns who its viewer is and the audit log records it; without a serve: section every child is
read-only, so the same keys that POST with auth never reach the backend."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from opstui.config.serve import ServeConfig
from opstui.serve import COOKIE, VIEWER_ENV, Gate, ServeError, gate_from
from tests.security.serve_servers import (  # noqa: F401 - fixtures
    ACTION_PATH,
    DEADLINE,
    PASSWORD,
    PROBE_TITLE,
    TITLE,
    TOKEN,
    TOKEN_ENV,
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
from tests.support import ServeApp

NO_REDIRECTS = {"allow_redirects": False}


def _timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=10)


# --- the gate on its own -------------------------------------------------------------------


def test_gate_matches_each_secret_and_nothing_near_it() -> None:
    gate = Gate({"tv": "t" * 20, "ops": "o" * 20}, {"alice": "p" * 12})
    assert gate.by_token("t" * 20) == "tv" and gate.by_token("o" * 20) == "ops"
    assert gate.by_token("t" * 19) is None and gate.by_token("t" * 21) is None
    good = base64.b64encode(b"alice:" + b"p" * 12).decode()
    assert gate.by_basic(good) == "alice"
    assert gate.by_basic(base64.b64encode(b"alice:" + b"p" * 11).decode()) is None
    assert gate.by_basic(base64.b64encode(b"tv:" + b"t" * 20).decode()) is None
    assert gate.viewer(None, f"Bearer {'t' * 20}") == "tv"
    assert gate.viewer(None, f"Basic {good}") == "alice"


def test_a_session_cookie_is_signed_by_this_process_only() -> None:
    gate, other = Gate({"tv": "t" * 20}, {}), Gate({"tv": "t" * 20}, {})
    cookie = gate.cookie_for("tv")
    assert gate.by_cookie(cookie) == "tv"
    assert other.by_cookie(cookie) is None  # a restart signs everyone out
    name, _, signature = cookie.partition(".")
    assert gate.by_cookie(f"{name}.{signature[:-1]}0") is None
    assert gate.by_cookie(name) is None
    assert gate.by_cookie(f"{name}.{signature}\u00e9") is None  # non-ASCII: refused, no error


def test_a_missing_secret_is_one_line_never_a_fallback_to_no_auth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opstui.config.types import deferred_secrets

    monkeypatch.delenv("OPSTUI_TEST_UNSET_TOKEN", raising=False)
    with deferred_secrets():
        config = ServeConfig.model_validate({"tokens": {"tv": "${OPSTUI_TEST_UNSET_TOKEN}"}})
    with pytest.raises(ServeError, match=r"^serve\.tokens\.tv: environment variable "
                                         r"OPSTUI_TEST_UNSET_TOKEN is not set$"):
        gate_from(config)
    assert gate_from(None) is None and gate_from(ServeConfig()) is None


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        ("tokens", {"tv": "a-literal-token-0123456789"}, "not as a literal"),
        ("users", {"alice": "a-literal-password"}, "not as a literal"),
        ("tokens", {"tv": "${OPSTUI_TEST_SHORT}"}, "at least 16 characters"),
        ("users", {"alice": "${OPSTUI_TEST_SHORT}"}, "at least 12 characters"),
        ("users", {"al:ice": "${OPSTUI_TEST_SHORT}"}, "no colon"),
    ],
    ids=["literal-token", "literal-password", "short-token", "short-password", "colon-user"],
)
def test_validate_refuses_a_weak_serve_section(
    tmp_path: Path, section: str, value: dict[str, str], message: str
) -> None:
    entries = ", ".join(f'"{k}": "{v}"' for k, v in value.items())
    config = tmp_path / "weak.yaml"
    config.write_text(f"serve:\n  {section}: {{{entries}}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "opstui", "validate", "--config", str(config)],
        capture_output=True, text=True, timeout=DEADLINE,
        env=serve_env(OPSTUI_TEST_SHORT="short"),
    )
    assert result.returncode == 2
    assert message in result.stderr and f"serve.{section}" in result.stderr, result.stderr
    assert "a-literal" not in result.stderr and "Traceback" not in result.stderr


def test_serve_without_the_token_in_its_environment_exits_2(
    backend: Backend, tmp_path: Path
) -> None:
    config = write_config(tmp_path, backend.url, auth=True)
    env = {k: v for k, v in serve_env().items() if k != TOKEN_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "opstui", "serve", "--config", str(config), "--listen",
         "127.0.0.1:0"],
        capture_output=True, text=True, timeout=DEADLINE, env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and TOKEN_ENV in lines[0], lines
    assert result.stdout == ""


# --- the token link and basic auth, end to end ---------------------------------------------


async def test_token_link_sets_a_strict_httponly_cookie_and_drops_the_token(
    gated: Served,
) -> None:
    async with aiohttp.ClientSession(timeout=_timeout()) as session:
        async with session.get(
            f"{gated.base}/?fontsize=20&token={TOKEN}", **NO_REDIRECTS
        ) as moved:
            assert moved.status == 303
            assert moved.headers["Location"] == "./?fontsize=20"
            set_cookie = moved.headers["Set-Cookie"]
            assert TOKEN not in str(moved.headers)
        assert set_cookie.startswith(f"{COOKIE}=")
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/"):
            assert attribute in set_cookie, set_cookie
        cookie = set_cookie.split(";", 1)[0].split("=", 1)[1]
        headers = {"Cookie": f"{COOKIE}={cookie}"}
        async with session.get(f"{gated.base}/", headers=headers) as page:
            assert page.status == 200 and TITLE in await page.text()
        async with session.get(f"{gated.base}/static/js/textual.js", headers=headers) as js:
            assert js.status == 200
        async with session.ws_connect(ws_url(gated), headers=headers) as ws:
            terminal = Terminal(ws)
            await terminal.start()
            await terminal.wait_for(TITLE, PROBE_TITLE)
            viewers = gated.viewers()
            assert len(viewers) == 1
            assert viewers[0].environ().get(VIEWER_ENV) == TOKEN_LABEL
            assert "--read-only" not in viewers[0].cmdline()
    await asyncio.to_thread(gated.wait_no_viewers)


async def test_basic_auth_user_mutates_and_the_audit_names_the_viewer(
    gated: Served, backend: Backend
) -> None:
    """The positive control of the read-only test below: the same keys do POST here."""
    before = len(backend.mutations())
    headers = {"Authorization": basic(USER, PASSWORD)}
    async with aiohttp.ClientSession(timeout=_timeout()) as session:
        async with session.get(f"{gated.base}/", headers=headers) as page:
            assert page.status == 200
            assert page.headers["Set-Cookie"].startswith(f"{COOKIE}=")
        async with session.ws_connect(ws_url(gated), headers=headers) as ws:
            await run_mutation(Terminal(ws))
            [viewer] = gated.viewers()
            assert viewer.environ().get(VIEWER_ENV) == USER  # not the server's own
    assert backend.mutations()[before:] == [("POST", ACTION_PATH)]
    stamped = [r for r in gated.audit() if r.get("phase") in ("intent", "result")]
    assert stamped and all(r["viewer"] == USER for r in stamped), stamped
    await asyncio.to_thread(gated.wait_no_viewers)


async def test_without_auth_the_same_keys_never_reach_the_backend(
    open_serve: Served, backend: Backend
) -> None:
    before = len(backend.mutations())
    async with (
        aiohttp.ClientSession(timeout=_timeout()) as session,
        session.ws_connect(ws_url(open_serve)) as ws,
    ):
        await run_mutation(Terminal(ws))
        [viewer] = open_serve.viewers()
        assert "--read-only" in viewer.cmdline()
        assert VIEWER_ENV not in viewer.environ()
    assert backend.mutations()[before:] == []
    assert all(r.get("viewer") is None for r in open_serve.audit())
    await asyncio.to_thread(open_serve.wait_no_viewers)


async def test_with_auth_serve_listens_beyond_loopback_and_still_asks(
    backend: Backend, tmp_path: Path
) -> None:
    """The other side of the loopback refusal: with a serve: section, 0.0.0.0 is allowed."""
    served = start_serve(write_config(tmp_path, backend.url, auth=True), listen="0.0.0.0:0")
    try:
        port = served.base.rsplit(":", 1)[1]
        async with (
            aiohttp.ClientSession(timeout=_timeout()) as session,
            session.get(f"http://127.0.0.1:{port}/") as refused,
        ):
            assert refused.status == 401
        assert served.viewers() == []
    finally:
        served.close()


async def test_token_only_gate_asks_for_the_link_not_a_password(serve_app: ServeApp) -> None:
    """The middleware in process, with tokens and no users: no basic-auth prompt for a
    browser to show, and basic credentials count for nothing."""
    from aiohttp import web

    from opstui.serve import _guard

    reached: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.Response(text="page")

    app = web.Application(middlewares=[_guard(Gate({"tv": TOKEN}, {}), None)])
    app.router.add_get("/", handler, name="index")
    base = await serve_app(app)
    async with aiohttp.ClientSession(timeout=_timeout()) as session:
        for headers in ({}, {"Authorization": basic("tv", TOKEN)}):
            async with session.get(f"{base}/", headers=headers) as refused:
                assert refused.status == 401
                assert "WWW-Authenticate" not in refused.headers
                assert "?token=" in await refused.text()
        async with session.get(f"{base}/", headers={"Authorization": f"Bearer {TOKEN}"}) as ok:
            assert ok.status == 200
    assert reached == ["/"]
