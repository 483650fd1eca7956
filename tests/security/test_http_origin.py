"""HTTP steps stay on their connection's origin (DESIGN.md section 6, point 5).

Every attack tries to get the connection's credentials (Authorization, X-Admin-Key, a Cookie,
basic auth from the base URL) to the "foreign" server: a templated path rendered to another
origin, tried without a token, with --read-only --yes, as a diagnose step (the TUI runs those
by itself), through the preview and through `opstui run`; a literal one at `opstui validate`
(steps and probes); and 30x redirects from the origin to the foreign server. Each asserts
what the foreign server received afterwards: nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstui.actions.runner import ActionError
from opstui.cli import main
from opstui.config.models import Config, HealthProbe, HttpConnection
from opstui.sources.base import ProbeError, Reading
from opstui.sources.http import HttpClient
from tests.actions.support import make_runner
from tests.security.http_servers import Servers, dump, recording_servers

ADMIN_KEY = "adm-key-origin-4e1f0a"
BEARER = "Bearer tok-origin-93b2c7"
COOKIE = "session=ck-origin-1d5e"
PASSWORD = "pw-origin-77aa01"
CREDENTIAL_HEADERS = ("authorization", "x-admin-key", "cookie")


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with recording_servers() as both:
        yield both


@pytest.fixture(autouse=True)
def _fresh(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    servers.reset()
    monkeypatch.setenv("OPSTUI_T_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("OPSTUI_T_BEARER", BEARER)
    monkeypatch.setenv("OPSTUI_T_COOKIE", COOKIE)
    monkeypatch.setenv("OPSTUI_T_PW", PASSWORD)


def _action(action_id: str, path: str, method: str = "GET", **params: Any) -> dict[str, Any]:
    return {
        "id": action_id,
        "kind": "http",
        "title": f"{method} {action_id}",
        "connection": params.pop("connection", "app"),
        "method": method,
        "path": path,
        "params": {name: {"type": "str"} for name in params.get("names", ["p"])},
    }


def config_data(servers: Servers, tmp_path: Path) -> dict[str, Any]:
    origin = servers.origin.url
    return {
        "environment": "production",
        "audit_log": str(tmp_path / "audit.jsonl"),
        "connections": {
            "app": {
                "kind": "http",
                "base_url": origin,
                "timeout": "3s",
                "headers": {
                    "Authorization": "${OPSTUI_T_BEARER}",
                    "X-Admin-Key": "${OPSTUI_T_ADMIN_KEY}",
                    "Cookie": "${OPSTUI_T_COOKIE}",
                },
            },
            "basic": {
                "kind": "http",
                "base_url": origin.replace("http://", "http://ops:${OPSTUI_T_PW}@"),
                "timeout": "3s",
                "headers": {"X-Admin-Key": "${OPSTUI_T_ADMIN_KEY}"},
            },
        },
        "probes": [{"id": "api", "kind": "health", "connection": "app", "path": "/health"}],
        "runbooks": [
            {
                "id": "r",
                "title": "Attacks",
                "diagnose": [
                    {
                        "kind": "http",
                        "title": "Follow the service's hint",
                        "connection": "app",
                        "path": "{{ probes.api.fields.status }}",
                    }
                ],
                "actions": [
                    _action("fetch", "{{ params.p }}"),
                    _action("fetch-basic", "{{ params.p }}", connection="basic"),
                    _action("push", "{{ params.p }}", method="POST"),
                    {
                        **_action("vhost", "/items/1"),
                        "headers": {"Host": "{{ params.p }}"},
                    },
                    _action(
                        "hop",
                        "/redirect/{{ params.code }}?to={{ params.to }}",
                        names=["code", "to"],
                    ),
                    _action(
                        "hop-basic",
                        "/redirect/{{ params.code }}?to={{ params.to }}",
                        connection="basic",
                        names=["code", "to"],
                    ),
                    _action(
                        "hop-post",
                        "/redirect/{{ params.code }}?to={{ params.to }}",
                        method="POST",
                        names=["code", "to"],
                    ),
                ],
            }
        ],
    }


def _payloads(origin: str, foreign: str) -> dict[str, str]:
    """Every way we know of to make a path name another origin; `foreign` is host:port."""
    host, _, port = foreign.partition(":")
    return {
        "absolute": f"http://{foreign}/steal",
        "absolute-upper": f"HTTP://{foreign}/steal",
        "protocol-relative": f"//{foreign}/steal",
        "backslashes": f"\\\\{foreign}\\steal",
        "slash-backslash": f"/\\{foreign}/steal",
        "scheme-no-slashes": f"http:{foreign}/steal",
        "scheme-one-slash": f"http:/{foreign}/steal",
        "userinfo-origin-at-foreign": f"http://{origin}@{foreign}/steal",
        "at-sign": f"@{foreign}/steal",
        "port-change": f"http://{origin.partition(':')[0]}:{port}/steal",
        "localhost-name": f"http://localhost:{port}/steal",
        "decimal-ip": f"http://2130706433:{port}/steal",
        "https-downgrade": f"https://{origin}/steal",
        "percent-encoded": f"http%3A%2F%2F{host}%3A{port}%2Fsteal",
        "encoded-slashes": f"%2F%2F{foreign}/steal",
        "leading-space": f" http://{foreign}/steal",
        "leading-tab": f"\thttp://{foreign}/steal",
        "crlf-header": f"/x\r\nHost: {foreign}",
        "idn-fullwidth": f"http://１２７.０.０.１:{port}/steal",
        "dot-segments-absolute": f"http://{foreign}/../steal",
    }


PAYLOADS = list(_payloads("o:1", "f:2"))
RUNNER_MODES = ("no-token", "read-only-yes", "mutating-read-only-yes", "preview", "diagnose")


def _reading(text: str) -> Reading:
    return Reading(value=1.0, fields={"status": text, "http_status": 200})


def _assert_nothing_foreign(servers: Servers) -> None:
    assert servers.foreign.requests() == [], dump(servers)
    for name in CREDENTIAL_HEADERS:  # nor anything of it anywhere but the origin
        assert servers.foreign.with_header(name) == []


async def _attempt(mode: str, payload: str, servers: Servers, tmp_path: Path) -> str | None:
    """One attempt through the Runner: the refusal's text, or None when it ran."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path, read_only=mode.endswith("read-only-yes"))
    runner = parts.runner
    try:
        if mode == "diagnose":
            parts.engine.ingest("api", _reading(payload))
            step = await runner.prepare_diagnose("r", 0)
            await runner.run(step)  # no token: what the runbook screen does on open
        else:
            action = "push" if mode.startswith("mutating") else "fetch"
            step = await runner.prepare_action("r", action, {"p": payload})
            if mode == "preview":
                await runner.preview(step)
            token = runner.confirm(step, via="--yes") if "yes" in mode else None
            await runner.run(step, token=token)
    except ActionError as exc:
        return str(exc)
    finally:
        await parts.close()
    return None


@pytest.mark.parametrize("mode", RUNNER_MODES)
@pytest.mark.parametrize("name", PAYLOADS)
async def test_templated_path_cannot_leave_the_origin(
    name: str, mode: str, servers: Servers, tmp_path: Path
) -> None:
    origin = servers.origin.url.removeprefix("http://")
    foreign = servers.foreign.url.removeprefix("http://")
    reason = await _attempt(mode, _payloads(origin, foreign)[name], servers, tmp_path)
    _assert_nothing_foreign(servers)
    if name in SAME_ORIGIN_PATHS:
        return  # a plain path, sent to the origin (or refused there for another reason)
    assert reason is not None, f"{name}: ran: {dump(servers)}"
    assert "path: " in reason, reason  # refused for its URL, before anything else
    assert "\n" not in reason and "\r" not in reason, reason
    assert servers.origin.requests() == [], dump(servers)


SAME_ORIGIN_PATHS = {
    # Plain paths on the origin, whatever they look like: sent there, never elsewhere.
    "backslashes",
    "slash-backslash",
    "at-sign",
    "percent-encoded",
    "encoded-slashes",
}


@pytest.mark.parametrize("read_only", [False, True], ids=["no-yes", "read-only-yes"])
@pytest.mark.parametrize("name", ["absolute", "protocol-relative", "userinfo-origin-at-foreign"])
def test_opstui_run_refuses_an_off_origin_path(
    name: str,
    read_only: bool,
    servers: Servers,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(config_data(servers, tmp_path)))
    foreign = servers.foreign.url.removeprefix("http://")
    origin = servers.origin.url.removeprefix("http://")
    payload = _payloads(origin, foreign)[name]
    args = ["run", "--config", str(path), "r", "fetch", "--param", f"p={payload}"]
    code = main([*args, "--read-only", "--yes"] if read_only else args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "not the connection's origin" in err or "userinfo" in err, err
    _assert_nothing_foreign(servers)


async def test_the_client_itself_refuses_an_off_origin_path(servers: Servers) -> None:
    """The second wall, under prepare and validate: the shared client never sends one."""
    config = Config.model_validate(config_data(servers, Path("/nonexistent")))
    connection = config.connections["app"]
    assert isinstance(connection, HttpConnection)
    client = HttpClient(connection)
    try:
        with pytest.raises(ProbeError, match="not the connection's origin"):
            await client.request("GET", f"{servers.foreign.url}/steal")
        with pytest.raises(ProbeError, match="headers: Host: "):
            await client.request("GET", "/items/1", headers={"host": "admin.internal"})
        assert client.shown_url(f"{servers.foreign.url}/x") == f"{servers.foreign.url}/x"
    finally:
        await client.aclose()
    assert servers.origin.requests() == []
    _assert_nothing_foreign(servers)


# --- literal paths: `opstui validate` --------------------------------------------------------


def _validate(tmp_path: Path, data: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:"), err
    return err


LITERAL_PLACES = {
    "action": ("runbooks", 0, "actions", 0, "path"),
    "diagnose": ("runbooks", 0, "diagnose", 0, "path"),
    "health-probe": ("probes", 0, "path"),
    "scrape-probe": ("probes", 1, "path"),
}


@pytest.mark.parametrize("where", list(LITERAL_PLACES))
@pytest.mark.parametrize(
    "name", ["absolute", "protocol-relative", "port-change", "https-downgrade"]
)
def test_validate_refuses_a_literal_off_origin_path(
    name: str,
    where: str,
    servers: Servers,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    origin = servers.origin.url.removeprefix("http://")
    foreign = servers.foreign.url.removeprefix("http://")
    payload = _payloads(origin, foreign)[name]
    data = config_data(servers, tmp_path)
    data["probes"].append(
        {"id": "m", "kind": "scrape", "connection": "app", "metric": "up", "path": "/metrics"}
    )
    node: Any = data
    at = LITERAL_PLACES[where]
    for key in at[:-1]:
        node = node[key]
    node[at[-1]] = payload
    err = _validate(tmp_path, data, capsys)
    shown = ".".join(str(k) for k in at).replace(".0", "[0]").replace(".1", "[1]")
    assert shown in err and "refused" in err, err
    assert len(err.strip().splitlines()) == 1, err
    # The same file cannot poll or run either: `check` stops at the config.
    assert main(["check", "--config", str(tmp_path / "opstui.yaml")]) == 2
    capsys.readouterr()
    _assert_nothing_foreign(servers)


def test_validate_refuses_dot_segments_above_the_base_path(
    servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config_data(servers, tmp_path)
    data["connections"]["app"]["base_url"] = servers.origin.url + "/api"
    data["runbooks"][0]["actions"][0]["path"] = "/%2e%2e/admin/drop"
    err = _validate(tmp_path, data, capsys)
    assert "climbs out of the base URL's path /api" in err, err
    assert servers.origin.requests() == [] and servers.foreign.requests() == []


# --- redirects -------------------------------------------------------------------------------

REDIRECTS = (301, 302, 303, 307, 308)


@pytest.mark.parametrize(
    "action", ["hop", "hop-basic", "hop-post"], ids=["get", "basic-auth", "post-confirmed"]
)
@pytest.mark.parametrize("code", REDIRECTS)
async def test_a_redirect_to_another_origin_is_not_followed(
    code: int, action: str, servers: Servers, tmp_path: Path
) -> None:
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path)
    runner = parts.runner
    try:
        params = {"code": str(code), "to": f"{servers.foreign.url}/steal"}
        step = await runner.prepare_action("r", action, params)
        token = runner.confirm(step, via="--yes") if action == "hop-post" else None
        outcome = await runner.run(step, token=token)
    finally:
        await parts.close()
    assert not outcome.ok
    assert f"redirect to another origin not followed: {servers.foreign.url}" in outcome.summary
    _assert_nothing_foreign(servers)
    first = servers.origin.requests()
    assert len(first) == 1 and first[0].path.startswith(f"/redirect/{code}")
    assert first[0].headers["x-admin-key"] == ADMIN_KEY  # it is the origin: it may have them


@pytest.mark.parametrize("code", [302, 307])
async def test_probe_and_diagnose_do_not_follow_a_foreign_redirect(
    code: int, servers: Servers, tmp_path: Path
) -> None:
    """A health probe takes a 3xx as the answer (never follows); a diagnose step run by the
    runbook screen refuses it like an action does."""
    from opstui.sources.health import HealthSource
    from opstui.sources.http import get_http_client
    from opstui.sources.registry import ClientPool

    data = config_data(servers, tmp_path)
    to = f"{servers.foreign.url}/steal"
    data["probes"][0]["path"] = f"/redirect/{code}?to={to}"
    config = Config.model_validate(data)
    pool = ClientPool()
    try:
        probe = config.effective_probe(config.probes[0])
        connection = config.connections["app"]
        assert isinstance(probe, HealthProbe) and isinstance(connection, HttpConnection)
        source = HealthSource(probe, connection, get_http_client(pool, "app", connection))
        reading = await source.poll()
        assert reading.fields["http_status"] == code
    finally:
        await pool.aclose()
    parts = make_runner(config, tmp_path)
    try:
        parts.engine.ingest("api", _reading(f"/redirect/{code}?to={to}"))
        outcome = await parts.runner.run(await parts.runner.prepare_diagnose("r", 0))
    finally:
        await parts.close()
    assert "redirect to another origin not followed" in outcome.summary
    _assert_nothing_foreign(servers)


@pytest.mark.parametrize("code", REDIRECTS)
async def test_a_same_origin_redirect_is_followed(
    code: int, servers: Servers, tmp_path: Path
) -> None:
    """No false positive: a redirect on the origin is followed, credentials and all."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path)
    try:
        params = {"code": str(code), "to": "/items/2"}
        outcome = await parts.runner.run(await parts.runner.prepare_action("r", "hop", params))
    finally:
        await parts.close()
    assert outcome.ok, outcome
    seen = servers.origin.requests()
    assert [s.path for s in seen] == [f"/redirect/{code}?to=/items/2", "/items/2"]
    assert seen[1].method == "GET" and seen[1].headers["x-admin-key"] == ADMIN_KEY
    _assert_nothing_foreign(servers)


async def test_a_same_origin_templated_path_runs(servers: Servers, tmp_path: Path) -> None:
    """No false positive: templated paths on the origin, relative or absolute, run."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path)
    try:
        for path in ("/items/1", "items/1", f"{servers.origin.url}/items/1", "/items/1?x=a@b"):
            step = await parts.runner.prepare_action("r", "fetch", {"p": path})
            outcome = await parts.runner.run(step)
            assert outcome.ok, (path, outcome)
        parts.engine.ingest("api", _reading("/items/3"))
        outcome = await parts.runner.run(await parts.runner.prepare_diagnose("r", 0))
        assert outcome.ok, outcome
    finally:
        await parts.close()
    assert len(servers.origin.with_header("x-admin-key")) == 5
    _assert_nothing_foreign(servers)


@pytest.mark.parametrize("mode", ["no-token", "read-only-yes"])
@pytest.mark.parametrize("host", ["foreign", "foreign-name", "origin-host-other-port"])
async def test_a_host_header_cannot_name_another_origin(
    host: str, mode: str, servers: Servers, tmp_path: Path
) -> None:
    """Behind a shared proxy the Host header picks the service: it must be the origin's."""
    foreign = servers.foreign.url.removeprefix("http://")
    value = {
        "foreign": foreign,
        "foreign-name": "admin.internal",
        "origin-host-other-port": f"127.0.0.1:{foreign.partition(':')[2]}",
    }[host]
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path, read_only=mode == "read-only-yes")
    try:
        with pytest.raises(ActionError, match=r"headers: Host: .* not the connection.s origin"):
            step = await parts.runner.prepare_action("r", "vhost", {"p": value})
            token = parts.runner.confirm(step, via="--yes") if "yes" in mode else None
            await parts.runner.run(step, token=token)
    finally:
        await parts.close()
    assert servers.origin.requests() == [], dump(servers)
    _assert_nothing_foreign(servers)


@pytest.mark.parametrize("where", ["connection", "action"])
def test_validate_refuses_a_literal_foreign_host_header(
    where: str, servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config_data(servers, tmp_path)
    target = data["connections"]["app"] if where == "connection" else data["runbooks"][0]
    if where == "action":
        target = target["actions"][0]
        target["headers"] = {}
    target["headers"]["Host"] = servers.foreign.url.removeprefix("http://")
    err = _validate(tmp_path, data, capsys)
    assert "headers: Host: " in err and "refused" in err, err
    assert servers.origin.requests() == [] and servers.foreign.requests() == []


async def test_a_host_header_naming_the_origin_runs(servers: Servers, tmp_path: Path) -> None:
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path)
    origin = servers.origin.url.removeprefix("http://")
    try:
        step = await parts.runner.prepare_action("r", "vhost", {"p": origin})
        outcome = await parts.runner.run(step)
    finally:
        await parts.close()
    assert outcome.ok, outcome
    assert [s.headers["host"] for s in servers.origin.requests()] == [origin]


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("http://bücher.example/api/", "health", "http://xn--bcher-kva.example/api/health"),
        ("http://bücher.example", "http://BÜCHER.example/x", "http://xn--bcher-kva.example/x"),
        ("https://Example.COM", "https://example.com:443/x", "https://example.com/x"),
        ("http://[::1]:5000", "/x", "http://[::1]:5000/x"),
        ("http://[::1]:5000", "http://[::2]:5000/x", None),
        ("http://bücher.example", "http://bucher.example/x", None),
        ("http://127.0.0.1:5000", "http://127.0.0.1.:5000/x", None),
    ],
)
def test_hosts_are_compared_normalised(base: str, path: str, expected: str | None) -> None:
    """No false positive for an IDN, a host's case or a default port written out; a host
    that differs after normalisation is refused."""
    from opstui.config.kinds.http import OffOrigin, join_on_origin

    if expected is None:
        with pytest.raises(OffOrigin, match="not the connection's origin"):
            join_on_origin(base, path)
    else:
        assert join_on_origin(base, path) == expected
