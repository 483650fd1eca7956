"""TLS settings, credential headers and odd answers of the prometheus source.

The server is a local aiohttp app answering /api/v1/query like Prometheus (Debian's binary
cannot serve HTTPS without a web config, and these cases are about our client, not PromQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from opstui.config.models import PrometheusConnection, PrometheusProbe
from opstui.sources.base import ProbeError
from opstui.sources.prometheus import PrometheusSource
from opstui.sources.registry import ClientPool
from tests.sources.conftest import Certificate, ServeTls
from tests.support import ServeApp

VECTOR = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "4"]}]},
}


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    pool = ClientPool()
    yield pool
    await pool.aclose()


def _app(seen: list[dict[str, str]], body: Any = VECTOR, status: int = 200) -> web.Application:
    async def query(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if isinstance(body, str):
            return web.Response(text=body, status=status)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    return app


def _source(pool: ClientPool, name: str, **connection: Any) -> PrometheusSource:
    conn = PrometheusConnection.model_validate({"kind": "prometheus", **connection})
    probe = PrometheusProbe.model_validate(
        {"kind": "prometheus", "id": "p", "connection": name, "query": "x", "backfill": False}
    )
    return PrometheusSource.build(probe, conn, pool)


async def test_tls_verification_and_ca_file(
    serve_tls: ServeTls, self_signed: Certificate, pool: ClientPool
) -> None:
    url = await serve_tls(_app([]))
    with pytest.raises(ProbeError) as caught:
        await _source(pool, "strict", url=url).poll()
    assert caught.value.reason == "TLS: certificate verify failed"
    assert caught.value.hint == "set ca_file to the CA that signed it"
    trusted = await _source(pool, "ca", url=url, ca_file=str(self_signed.cert)).poll()
    assert trusted.value == 4.0
    unverified = await _source(pool, "lab", url=url, verify_tls=False).poll()
    assert unverified.value == 4.0


async def test_secret_header_is_sent_and_never_shown(
    serve_app: ServeApp, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROM_TOKEN", "s3cret-token")
    seen: list[dict[str, str]] = []
    url = await serve_app(_app(seen))
    source = _source(pool, "auth", url=url, headers={"Authorization": "Bearer ${PROM_TOKEN}"})
    assert (await source.poll()).value == 4.0
    assert seen[0]["Authorization"] == "Bearer s3cret-token"
    assert seen[0]["User-Agent"].startswith("opstui/")
    assert "s3cret" not in repr(source.describe())


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"status": "error", "errorType": "unauthorized", "error": "no"}, 401, "HTTP 401"),
        ("not found", 404, "HTTP 404"),
        ({"status": "error", "errorType": "timeout", "error": "query timed out"}, 503,
         "query timed out in Prometheus"),
        ("<html>login</html>", 200, "bad response: not Prometheus API JSON"),
        ({"status": "success", "data": {"result": [[1, 2, 3]]}}, 200,
         "bad response: a vector item is not an object"),
    ],
)  # fmt: skip
async def test_failures_have_short_reasons(
    serve_app: ServeApp, pool: ClientPool, body: Any, status: int, reason: str
) -> None:
    url = await serve_app(_app([], body, status))
    with pytest.raises(ProbeError) as caught:
        await _source(pool, "odd", url=url).poll()
    assert caught.value.reason == reason
