"""HealthSource against real aiohttp servers on loopback: every body dialect and failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from opstui.sources.base import ProbeError, Reading
from opstui.sources.health import HealthSource
from opstui.sources.registry import ClientPool, build_source, source_class
from opstui.states import Severity
from tests.sources.conftest import Certificate, ServeTls, health_probe, http_connection
from tests.sources.test_health_parse import IETF_PASS, SEED_000, SEED_004, SPRING_UP
from tests.support import ServeApp, free_port

HEALTH_JSON = "application/health+json"


def json_reply(
    body: Any, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type=content_type)


SPRING_DOWN = {
    "status": "DOWN",
    "components": {
        "db": {"status": "DOWN", "details": {"error": "Connection refused"}},
        "redis": {"status": "UP", "components": {"primary": {"status": "UP"}}},
    },
}
TERMINUS_OK = {
    "status": "ok",
    "info": {"database": {"status": "up"}},
    "error": {},
    "details": {"database": {"status": "up"}},
}
TERMINUS_ERROR = {
    "status": "error",
    "info": {"database": {"status": "up"}},
    "error": {"redis": {"status": "down", "message": "Could not connect"}},
    "details": {
        "database": {"status": "up"},
        "redis": {"status": "down", "message": "Could not connect"},
    },
}


def health_app(seen: list[web.Request] | None = None) -> web.Application:
    """One server with a route per scenario."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen.append(request)
        name = request.match_info["name"]
        if name == "slow":
            await asyncio.sleep(10)
            return web.Response(text="late")
        if name == "echo":
            return json_reply({"status": "pass", "key": request.headers.get("X-Admin-Key", "")})
        return SCENARIOS[name]()

    app = web.Application()
    app.router.add_route("*", "/{name}", handler)
    app.router.add_route("*", "/health/{name}", handler)
    return app


SCENARIOS: dict[str, Any] = {
    "ietf-pass": lambda: json_reply(IETF_PASS, content_type=HEALTH_JSON),
    "ietf-warn": lambda: json_reply({**IETF_PASS, "status": "warn"}, content_type=HEALTH_JSON),
    "ietf-fail": lambda: json_reply({**IETF_PASS, "status": "fail"}, 503, HEALTH_JSON),
    "spring-up": lambda: json_reply(SPRING_UP),
    "spring-down": lambda: json_reply(SPRING_DOWN, 503),
    "terminus-ok": lambda: json_reply(TERMINUS_OK),
    "terminus-error": lambda: json_reply(TERMINUS_ERROR, 503),
    "seed000": lambda: json_reply(SEED_000),
    "ready": lambda: json_reply(SEED_004, 503),
    "text-ok": lambda: web.Response(text="OK"),
    "empty": lambda: web.Response(body=b""),
    "nocontent": lambda: web.Response(status=204),
    "html500": lambda: web.Response(
        text="<html><h1>Internal Server Error</h1></html>", status=500, content_type="text/html"
    ),
    "fail200": lambda: web.Response(text='{"status": "fail"}', content_type="text/plain"),
    "401": lambda: web.Response(status=401, text="Unauthorized"),
    "403": lambda: web.Response(status=403, text="Forbidden"),
    "404": lambda: web.Response(status=404, text="Not Found"),
    "202": lambda: web.Response(status=202, text=""),
}


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    shared = ClientPool()
    yield shared
    await shared.aclose()


async def poll(
    pool: ClientPool, base_url: str, conn: dict[str, Any] | None = None, **probe: Any
) -> Reading:
    source = HealthSource.build(
        health_probe(**probe), http_connection(base_url, **(conn or {})), pool
    )
    return await source.poll()


@pytest.mark.parametrize(
    ("path", "verdict", "status", "http_status", "components", "failing"),
    [
        ("/ietf-pass", Severity.OK, "pass", 200, 4, 0),
        ("/ietf-warn", Severity.WARN, "warn", 200, 4, 0),
        ("/ietf-fail", Severity.CRIT, "fail", 503, 4, 0),
        ("/spring-up", Severity.OK, "UP", 200, 5, 0),
        ("/spring-down", Severity.CRIT, "DOWN", 503, 2, 1),
        ("/terminus-ok", Severity.OK, "ok", 200, 1, 0),
        ("/terminus-error", Severity.CRIT, "error", 503, 2, 1),
        ("/seed000", Severity.OK, "healthy", 200, 3, 0),
        ("/health/ready", Severity.CRIT, "", 503, 3, 1),
        ("/text-ok", Severity.OK, "OK", 200, 0, 0),
        ("/empty", Severity.OK, "", 200, 0, 0),
        ("/nocontent", Severity.OK, "", 204, 0, 0),
        ("/html500", Severity.CRIT, "", 500, 0, 0),
    ],
)
async def test_bodies(
    serve_app: ServeApp,
    pool: ClientPool,
    path: str,
    verdict: Severity,
    status: str,
    http_status: int,
    components: int,
    failing: int,
) -> None:
    base = await serve_app(health_app())
    reading = await poll(pool, base, path=path)
    assert reading.verdict is verdict
    assert reading.fields["status"] == status
    assert reading.fields["http_status"] == http_status
    assert reading.fields["components"] == components
    assert reading.fields["components_failing"] == failing
    assert len(reading.components) == components
    assert reading.latency_ms is not None and reading.latency_ms > 0
    assert reading.value == reading.latency_ms == reading.fields["latency_ms"]


async def test_seed_000_components_and_raw(serve_app: ServeApp, pool: ClientPool) -> None:
    reading = await poll(pool, await serve_app(health_app()), path="/seed000")
    observed = {c.name: c.observed for c in reading.components}
    assert observed["memory"] == "812 MiB"
    assert observed["eventLoop"] == "12ms"
    assert reading.raw is not None and json.loads(reading.raw) == SEED_000


async def test_spring_down_components(serve_app: ServeApp, pool: ClientPool) -> None:
    reading = await poll(pool, await serve_app(health_app()), path="/spring-down")
    assert [(c.name, c.severity) for c in reading.components] == [
        ("db", Severity.CRIT),
        ("redis.primary", Severity.OK),
    ]


async def test_html_500_notes(serve_app: ServeApp, pool: ClientPool) -> None:
    reading = await poll(pool, await serve_app(health_app()), path="/html500")
    assert "body is not JSON (text/html)" in reading.notes


async def test_fail_body_with_http_200_is_crit_with_contradiction(
    serve_app: ServeApp, pool: ClientPool
) -> None:
    reading = await poll(pool, await serve_app(health_app()), path="/fail200")
    assert reading.verdict is Severity.CRIT
    assert "HTTP 200 but body says fail" in reading.notes


@pytest.mark.parametrize("code", [401, 403, 404])
async def test_config_problems_are_errors_with_a_hint(
    serve_app: ServeApp, pool: ClientPool, code: int
) -> None:
    with pytest.raises(ProbeError) as caught:
        await poll(pool, await serve_app(health_app()), path=f"/{code}")
    assert caught.value.reason == f"HTTP {code}"
    assert caught.value.hint == "likely a config or credentials problem"
    assert caught.value.detail is not None and f"/{code}" in caught.value.detail


async def test_expect_status(serve_app: ServeApp, pool: ClientPool) -> None:
    base = await serve_app(health_app())
    assert (await poll(pool, base, path="/202")).verdict is Severity.OK
    assert (await poll(pool, base, path="/202", expect_status=[200])).verdict is Severity.CRIT
    # a 404 the config expects is a reading, not a config problem
    reading = await poll(pool, base, path="/404", expect_status=[404])
    assert reading.verdict is Severity.OK


async def test_head_method(serve_app: ServeApp, pool: ClientPool) -> None:
    seen: list[web.Request] = []
    reading = await poll(pool, await serve_app(health_app(seen)), path="/seed000", method="HEAD")
    assert [r.method for r in seen] == ["HEAD"]
    assert reading.verdict is Severity.OK
    assert reading.fields["http_status"] == 200
    assert reading.raw == ""


async def test_secret_header_reaches_server_but_not_describe(
    serve_app: ServeApp, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_KEY", "k-123-very-secret")
    seen: list[web.Request] = []
    base = await serve_app(health_app(seen))
    source = HealthSource.build(
        health_probe(path="/echo", headers={"X-Admin-Key": "${ADMIN_KEY}"}),
        http_connection(base, headers={"X-Trace": "opstui"}),
        pool,
    )
    reading = await source.poll()
    assert seen[0].headers["X-Admin-Key"] == "k-123-very-secret"
    assert seen[0].headers["X-Trace"] == "opstui"
    assert reading.raw is not None and "k-123-very-secret" in reading.raw  # the server echoed it
    described = source.describe()
    assert "k-123-very-secret" not in repr(described)
    assert described["headers"] == {"X-Trace": "opstui", "X-Admin-Key": "***"}
    assert described["request"] == f"GET {base}/echo"


async def test_connection_header_is_sent_and_probe_header_overrides(
    serve_app: ServeApp, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONN_KEY", "from-connection")
    monkeypatch.setenv("PROBE_KEY", "from-probe")
    seen: list[web.Request] = []
    base = await serve_app(health_app(seen))
    connection = {"headers": {"X-Admin-Key": "${CONN_KEY}"}}
    await poll(pool, base, connection, path="/echo")
    await poll(pool, base, connection, path="/echo", headers={"x-admin-key": "${PROBE_KEY}"})
    assert [r.headers.getall("X-Admin-Key") for r in seen] == [
        ["from-connection"],
        ["from-probe"],
    ]


async def test_refused(pool: ClientPool) -> None:
    with pytest.raises(ProbeError) as caught:
        await poll(pool, f"http://127.0.0.1:{free_port()}")
    assert caught.value.reason == "refused"


async def test_timeout_uses_probe_timeout(serve_app: ServeApp, pool: ClientPool) -> None:
    base = await serve_app(health_app())
    with pytest.raises(ProbeError) as caught:
        await poll(pool, base, {"timeout": "30s"}, path="/slow", timeout="250ms")
    assert caught.value.reason == "timeout after 250ms"


async def test_timeout_defaults_to_connection_timeout(
    serve_app: ServeApp, pool: ClientPool
) -> None:
    base = await serve_app(health_app())
    with pytest.raises(ProbeError) as caught:
        await poll(pool, base, {"timeout": "200ms"}, path="/slow")
    assert caught.value.reason == "timeout after 200ms"


async def test_self_signed_tls(
    serve_tls: ServeTls, self_signed: Certificate, pool: ClientPool
) -> None:
    base = await serve_tls(health_app())
    with pytest.raises(ProbeError) as caught:
        await poll(pool, base, path="/seed000")
    assert caught.value.reason == "TLS: certificate verify failed"
    trusted = ClientPool()
    try:
        reading = await poll(trusted, base, {"ca_file": str(self_signed.cert)}, path="/seed000")
        assert reading.verdict is Severity.OK
    finally:
        await trusted.aclose()


async def test_describe_redacts_password_in_base_url(
    pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "hunter2")
    source = HealthSource.build(
        health_probe(path="/health/ready", expect_status=[200]),
        http_connection("https://ops:${PW}@api.internal:8002/v1"),
        pool,
    )
    described = source.describe()
    assert "hunter2" not in repr(described)
    assert described["request"] == "GET https://ops:***@api.internal:8002/v1/health/ready"
    assert described["tls"] == "verified"
    assert described["expect_status"] == [200]


async def test_probes_share_the_connection_client(pool: ClientPool) -> None:
    connection = http_connection("http://127.0.0.1:1")
    first = HealthSource.build(health_probe(id="a"), connection, pool)
    second = HealthSource.build(health_probe(id="b", path="/ready"), connection, pool)
    assert first.client is second.client


async def test_registered_under_its_kind(pool: ClientPool) -> None:
    assert source_class("health") is HealthSource
    source = build_source(health_probe(), http_connection("http://127.0.0.1:1"), pool)
    assert isinstance(source, HealthSource)


async def test_an_unchanged_body_keeps_its_verdict_and_a_changed_one_is_judged_again(
    serve_app: ServeApp, pool: ClientPool
) -> None:
    """The source keeps the last small body's verdict: every change of body, content type or
    code is judged afresh, so the memo never shows an old verdict."""
    answers = [
        (200, {"status": "pass"}),
        (200, {"status": "pass"}),
        (200, {"status": "fail"}),
        (503, {"status": "fail"}),
        (503, {"status": "pass"}),
        (200, {"status": "pass"}),
    ]
    queue = list(answers)

    async def handler(request: web.Request) -> web.Response:
        code, body = queue.pop(0)
        return json_reply(body, code)

    app = web.Application()
    app.router.add_get("/health", handler)
    base = await serve_app(app)
    source = HealthSource.build(health_probe(path="/health"), http_connection(base), pool)
    got = []
    for _ in answers:
        reading = await source.poll()
        got.append((reading.fields["http_status"], reading.verdict, reading.notes))
    assert got == [
        (200, Severity.OK, ()),
        (200, Severity.OK, ()),
        (200, Severity.CRIT, ("HTTP 200 but body says fail",)),
        (503, Severity.CRIT, ()),
        (503, Severity.OK, ("HTTP 503 but body says pass",)),
        (200, Severity.OK, ()),
    ]


async def test_a_body_that_changes_each_poll_is_judged_each_poll(
    serve_app: ServeApp, pool: ClientPool
) -> None:
    counter = iter(range(100))

    async def handler(request: web.Request) -> web.Response:
        n = next(counter)
        status = "pass" if n % 2 == 0 else "warn"
        return json_reply({"status": status, "checks": {"db": [{"observedValue": n}]}})

    app = web.Application()
    app.router.add_get("/health", handler)
    base = await serve_app(app)
    source = HealthSource.build(health_probe(path="/health"), http_connection(base), pool)
    verdicts = [(await source.poll()).verdict for _ in range(4)]
    assert verdicts == [Severity.OK, Severity.WARN, Severity.OK, Severity.WARN]
