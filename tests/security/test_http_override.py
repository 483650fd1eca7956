"""Method overrides make a step as mutating as the method they name (DESIGN.md section 6, 1).

The origin server honours `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` and a
`_method` parameter (query, JSON body, form body) as real frameworks do, and deletes
/items/1 when told DELETE. Each attack is a GET (or HEAD/OPTIONS) that would do that; tried
without a token, with --read-only --yes, as a diagnose step, through the preview, through
`opstui run` and as a probe. Each asserts the server's state afterwards: item 1 is still
there and no overridden request arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstui.actions.runner import ActionError, Refused
from opstui.cli import main
from opstui.config.models import Config
from tests.actions.support import make_runner
from tests.security.http_servers import Servers, dump, recording_servers

ADMIN_KEY = "adm-key-override-5c2d"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with recording_servers() as both:
        yield both


@pytest.fixture(autouse=True)
def _fresh(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    servers.reset()
    monkeypatch.setenv("OPSTUI_T_ADMIN_KEY", ADMIN_KEY)


# name -> the step's keys (over a GET of /items/1 on connection app); `m` is a param = DELETE
ATTACKS: dict[str, dict[str, Any]] = {
    "header-x-http-method-override": {"headers": {"X-HTTP-Method-Override": "DELETE"}},
    "header-x-http-method-lower": {"headers": {"x-http-method": "delete"}},
    "header-x-method-override": {"headers": {"X-Method-Override": "DELETE"}},
    "header-templated": {"headers": {"X-HTTP-Method-Override": "{{ params.m }}"}},
    "connection-header": {"connection": "overriding"},
    "head-with-override": {"method": "HEAD", "headers": {"X-HTTP-Method-Override": "DELETE"}},
    "options-with-override": {
        "method": "OPTIONS",
        "headers": {"X-HTTP-Method-Override": "DELETE"},
    },
    "query-_method": {"path": "/items/1?_method=DELETE"},
    "query-_method-lower": {"path": "/items/1?a=1&_method=delete"},
    "query-_method-encoded": {"path": "/items/1?%5Fmethod=DELETE"},
    "query-_method-templated": {"path": "/items/1?_method={{ params.m }}"},
    "json-body-_method": {"json": {"_method": "DELETE"}},
    "json-body-templated": {"json": {"_method": "{{ params.m }}"}},
    "form-body-_method": {"headers": {"Content-Type": FORM}, "json": "&_method=DELETE&"},
}
SMUGGLED = {"headers": {"X-Note": "{{ params.m }}"}}
"""A templated header whose value smuggles an override header in with CR/LF."""
LITERAL = [name for name, keys in ATTACKS.items() if "{{" not in repr(keys)]


def _step(name: str, keys: dict[str, Any], *, action: bool) -> dict[str, Any]:
    step: dict[str, Any] = {
        "kind": "http",
        "title": name,
        "connection": "app",
        "method": "GET",
        "path": "/items/1",
        **keys,
    }
    if action:
        step["id"] = name
        if "{{" in repr(keys):
            step["params"] = {"m": {"type": "str", "default": "DELETE"}}
    return step


def config_data(servers: Servers, tmp_path: Path) -> dict[str, Any]:
    base = {"kind": "http", "base_url": servers.origin.url, "timeout": "3s"}
    return {
        "environment": "production",
        "audit_log": str(tmp_path / "audit.jsonl"),
        "connections": {
            "app": {**base, "headers": {"X-Admin-Key": "${OPSTUI_T_ADMIN_KEY}"}},
            "overriding": {**base, "headers": {"X-HTTP-Method-Override": "DELETE"}},
        },
        "runbooks": [
            {
                "id": "r",
                "title": "Overrides",
                "diagnose": [_step(n, ATTACKS[n], action=False) for n in LITERAL],
                "actions": [_step(n, k, action=True) for n, k in ATTACKS.items()]
                + [
                    _step("safe-query", {"path": "/items/1?_method=GET"}, action=True),
                    _step("safe-header", {"headers": {"X-HTTP-Method": "get"}}, action=True),
                    _step("get-with-body", {"json": {"q": "x"}}, action=True),
                    {
                        **_step("smuggle", SMUGGLED, action=True),
                        "params": {"m": {"type": "str"}},
                    },
                ],
            }
        ],
    }


def _assert_item_kept(servers: Servers, *, reached: bool = False) -> None:
    assert "1" in servers.origin.items, dump(servers)
    assert servers.origin.overridden() == [], dump(servers)
    if not reached:
        assert servers.origin.requests() == [], dump(servers)
    assert servers.foreign.requests() == []


RUNNER_MODES = ("no-token", "read-only-yes", "preview")


@pytest.mark.parametrize("mode", RUNNER_MODES)
@pytest.mark.parametrize("name", list(ATTACKS))
async def test_an_override_is_a_mutation(
    name: str, mode: str, servers: Servers, tmp_path: Path
) -> None:
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path, read_only=mode == "read-only-yes")
    runner = parts.runner
    try:
        step = await runner.prepare_action("r", name)
        verdict = await runner.classify(step)
        assert verdict.mutating, verdict
        assert "makes it a DELETE" in verdict.reason, verdict.reason
        if mode == "preview":
            assert await runner.preview(step) is None  # an HTTP preview sends nothing
            _assert_item_kept(servers)
        token = runner.confirm(step, via="--yes") if mode == "read-only-yes" else None
        with pytest.raises(Refused):
            await runner.run(step, token=token)
    finally:
        await parts.close()
    _assert_item_kept(servers)


@pytest.mark.parametrize("name", LITERAL)
async def test_an_override_in_a_diagnose_step_is_refused(
    name: str, servers: Servers, tmp_path: Path
) -> None:
    """The runbook screen runs diagnose steps by itself, with no token."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path)
    try:
        step = await parts.runner.prepare_diagnose("r", LITERAL.index(name))
        with pytest.raises(Refused, match="makes it a DELETE"):
            await parts.runner.run(step)
    finally:
        await parts.close()
    _assert_item_kept(servers)


@pytest.mark.parametrize("read_only", [False, True], ids=["no-yes", "read-only-yes"])
@pytest.mark.parametrize(
    "name", ["header-x-http-method-override", "query-_method-templated", "form-body-_method"]
)
def test_opstui_run_refuses_an_override(
    name: str,
    read_only: bool,
    servers: Servers,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(config_data(servers, tmp_path)))
    args = ["run", "--config", str(path), "r", name]
    assert main([*args, "--read-only", "--yes"] if read_only else args) == 3
    out = capsys.readouterr()
    assert "makes it a DELETE" in out.out + out.err, out
    _assert_item_kept(servers)


PROBE_ATTACKS: dict[str, dict[str, Any]] = {
    "health-header": {"kind": "health", "headers": {"X-HTTP-Method-Override": "DELETE"}},
    "health-query": {"kind": "health", "path": "/items/1?_method=DELETE"},
    "health-on-overriding-connection": {"kind": "health", "connection": "overriding"},
    "health-head-override": {
        "kind": "health",
        "method": "HEAD",
        "headers": {"X-Method-Override": "DELETE"},
    },
    "scrape-query": {"kind": "scrape", "metric": "up", "path": "/items/1?_method=DELETE"},
}


@pytest.mark.parametrize("name", list(PROBE_ATTACKS))
def test_a_probe_with_an_override_is_a_validate_error(
    name: str, servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = config_data(servers, tmp_path)
    data["probes"] = [{"id": "p", "connection": "app", "path": "/items/1", **PROBE_ATTACKS[name]}]
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and "probes[0]." in err, err
    assert "makes it a DELETE; a probe only reads" in err, err
    assert main(["check", "--config", str(path)]) == 2  # so it is never polled
    capsys.readouterr()
    _assert_item_kept(servers)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "delete"])
def test_a_probe_cannot_use_a_method_that_changes_state(
    method: str, servers: Servers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A health probe is polled every interval with nobody confirming: GET or HEAD only."""
    data = config_data(servers, tmp_path)
    data["probes"] = [
        {"id": "p", "kind": "health", "connection": "app", "path": "/items/1", "method": method}
    ]
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:") and "probes[0].method: a probe only reads" in err, err
    assert main(["check", "--config", str(path)]) == 2  # so it is never polled
    capsys.readouterr()
    _assert_item_kept(servers)
    assert servers.origin.requests() == [], servers.origin.requests()


@pytest.mark.parametrize("name", ["safe-query", "safe-header", "get-with-body"])
async def test_no_false_positive(name: str, servers: Servers, tmp_path: Path) -> None:
    """`_method=GET`, an override naming GET, a GET with a plain body: read-only, and run."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path, read_only=True)
    try:
        step = await parts.runner.prepare_action("r", name)
        assert not (await parts.runner.classify(step)).mutating
        outcome = await parts.runner.run(step)
    finally:
        await parts.close()
    assert outcome.ok, outcome
    assert len(servers.origin.requests()) == 1
    _assert_item_kept(servers, reached=True)


@pytest.mark.parametrize(
    "value", ["x\r\nX-HTTP-Method-Override: DELETE", "x\nX-HTTP-Method: DELETE"]
)
@pytest.mark.parametrize("mode", ["no-token", "read-only-yes"])
async def test_a_header_cannot_smuggle_an_override(
    value: str, mode: str, servers: Servers, tmp_path: Path
) -> None:
    """Refused when rendered (before classification could miss it), whatever the transport
    would have done with it."""
    config = Config.model_validate(config_data(servers, tmp_path))
    parts = make_runner(config, tmp_path, read_only=mode == "read-only-yes")
    try:
        with pytest.raises(ActionError, match=r"headers\.X-Note: control characters"):
            step = await parts.runner.prepare_action("r", "smuggle", {"m": value})
            token = parts.runner.confirm(step, via="--yes") if "yes" in mode else None
            await parts.runner.run(step, token=token)
    finally:
        await parts.close()
    _assert_item_kept(servers)
