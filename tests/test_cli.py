"""The `opstui` command as a person runs it: real binary, real local servers."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

from tests.support import ServeApp, free_port

IETF_PASS = {
    "status": "pass",
    "checks": {"db:responseTime": [{"observedValue": 4, "observedUnit": "ms", "status": "pass"}]},
}
SPRING_DOWN = {
    "status": "DOWN",
    "components": {"db": {"status": "DOWN", "details": {"error": "Connection refused"}}},
}


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opstui", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _json_app(body: object, status: int) -> web.Application:
    async def handler(_: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/health", handler)
    return app


def _three_probe_config(tmp_path: Path, ok_url: str, down_url: str, refused_url: str) -> Path:
    config = tmp_path / "three.yaml"
    config.write_text(
        f"""
title: Three services
refresh: 1s
connections:
  good: {{kind: http, base_url: "{ok_url}", timeout: 2s}}
  spring: {{kind: http, base_url: "{down_url}", timeout: 2s}}
  gone: {{kind: http, base_url: "{refused_url}", timeout: 2s}}
probes:
  - {{id: api, kind: health, connection: good, path: /health, unit: ms}}
  - {{id: billing, kind: health, connection: spring, path: /health}}
  - {{id: legacy, kind: health, connection: gone, path: /health}}
"""
    )
    return config


async def test_check_json_reports_ok_crit_error_and_exits_2(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    ok_url = await serve_app(_json_app(IETF_PASS, 200))
    down_url = await serve_app(_json_app(SPRING_DOWN, 503))
    config = _three_probe_config(tmp_path, ok_url, down_url, f"http://127.0.0.1:{free_port()}")

    code, out, err = await _run("check", "--json", "--config", str(config))

    assert code == 2, err
    document = json.loads(out)
    assert document["title"] == "Three services"
    assert document["worst"] == "crit"
    by_id = {p["id"]: p for p in document["probes"]}
    assert [p["id"] for p in document["probes"]] == ["api", "billing", "legacy"]
    states = {k: by_id[k]["state"] for k in by_id}
    assert states == {"api": "ok", "billing": "crit", "legacy": "error"}
    shape = {"id", "kind", "state", "value", "unit", "fields", "error", "latency_ms"}
    for probe in document["probes"]:
        assert set(probe) == shape
        assert probe["kind"] == "health"
    assert isinstance(by_id["api"]["value"], float)
    assert by_id["api"]["unit"] == "ms"
    assert by_id["api"]["error"] is None
    assert by_id["api"]["fields"]["http_status"] == 200
    assert by_id["billing"]["fields"]["http_status"] == 503
    assert "refused" in by_id["legacy"]["error"]
    assert by_id["legacy"]["value"] is None and by_id["legacy"]["latency_ms"] is None


async def test_check_table_and_exit_codes(serve_app: ServeApp, tmp_path: Path) -> None:
    ok_url = await serve_app(_json_app(IETF_PASS, 200))
    config = tmp_path / "one.yaml"
    config.write_text(
        f"connections: {{a: {{kind: http, base_url: '{ok_url}'}}}}\n"
        "probes: [{id: api, kind: health, connection: a}]\n"
    )
    code, out, _ = await _run("check", "--config", str(config))
    assert code == 0
    assert "● OK" in out and "api" in out


async def test_validate_good_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "connections: {a: {kind: http, base_url: 'http://127.0.0.1:1'}}\n"
        "probes: [{id: api, kind: health, connection: a}]\n"
    )
    code, out, _ = await _run("validate", "--config", str(good))
    assert code == 0 and "ok (1 probes" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "connections: {a: {kind: http, base_url: 'http://127.0.0.1:1'}}\n"
        "probes:\n"
        "  - id: api\n"
        "    kind: health\n"
        "    connection: a\n"
        "    interval: soon\n"
    )
    code, out, err = await _run("validate", "--config", str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{bad}:6: ")
    assert "interval" in lines[0]
    assert "Traceback" not in err


async def test_config_from_environment_variable(tmp_path: Path) -> None:
    import os

    config = tmp_path / "env.yaml"
    config.write_text(
        "connections: {a: {kind: http, base_url: 'http://127.0.0.1:1'}}\n"
        "probes: [{id: api, kind: health, connection: a}]\n"
    )
    env = {**os.environ, "OPSTUI_CONFIG": str(config)}
    code, out, _ = await _run("validate", env=env)
    assert code == 0 and str(config) in out


async def test_missing_config_is_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = await _run("check", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "nope.yaml" in err and "Traceback" not in err


async def test_schema_is_json_schema() -> None:
    code, out, _ = await _run("schema")
    assert code == 0
    schema = json.loads(out)
    assert "$schema" in schema
    assert "probes" in json.dumps(schema)


async def test_a_bad_via_prometheus_url_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "ops.yaml"
    config.write_text("title: t\nvia_prometheus: {url: 'http://prom:9090', match: 'job=\"a\"'}\n")
    for command in ([], ["serve", "--listen", f"127.0.0.1:{free_port()}"]):
        code, out, err = await _run(
            *command, "--config", str(config), "--via-prometheus", "prom:9090"
        )
        assert code == 2, (command, err)
        assert err.strip().splitlines() == [
            "opstui: --via-prometheus 'prom:9090': expected an http:// or https:// URL with a "
            "host, got 'prom:9090'"
        ], err
        assert out == ""


def test_via_prometheus_keeps_the_configs_matchers_and_replaces_its_url() -> None:
    from opstui.cli import via_prometheus
    from opstui.config.models import Config

    config = Config.model_validate(
        {"via_prometheus": {"url": "http://a:9090", "match": 'job="opstui"', "timeout": "3s"}}
    )
    via = via_prometheus(config, "http://b:9090")
    assert via is not None
    assert (via.url, via.match, via.timeout) == ("http://b:9090", 'job="opstui"', 3.0)
    assert via_prometheus(config, None) is config.via_prometheus
    assert via_prometheus(Config.model_validate({}), None) is None
