"""What `opstui check` and `opstui validate` import (DESIGN.md section 10: start-up).

The durable guard of start-up time: no Textual outside the commands that draw, and a kind's
client library only when the config uses that kind. The real command runs in a child process
against a real local server; the modules it loaded are read back from the child, never timed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from aiohttp import web

from tests.support import ServeApp

CHILD = """
import json, sys
from opstui.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""

CLIENT_LIBRARIES = {
    "redis": "redis",
    "asyncpg": "sql",
    "pglast": "sql",
    "botocore": "ecs",
    "aioboto3": "ecs",
    "aiobotocore": "ecs",
    "prometheus_api_client": "prometheus",
}
"""Top-level packages of each kind's client library."""


def _health_app() -> web.Application:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "pass"})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text="# TYPE jobs_total counter\njobs_total 3\n")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app


def _config(tmp_path: Path, url: str) -> Path:
    """HTTP kinds and a Redis queue that a runbook's `until` names (so validate reads the
    queue kind's fields), a template naming the health probe's fields; no sql, ecs or
    prometheus kind anywhere."""
    path = tmp_path / "http-only.yaml"
    path.write_text(
        f"""
title: Imports
connections:
  api: {{kind: http, base_url: "{url}", timeout: 2s}}
  cache: {{kind: redis, url: "redis://127.0.0.1:1/0", timeout: 1s}}
probes:
  - {{id: api, kind: health, connection: api, path: /health}}
  - {{id: jobs, kind: scrape, connection: api, path: /metrics, metric: jobs_total}}
  - {{id: backlog, kind: queue, connection: cache, flavor: bullmq, queue: mail}}
runbooks:
  - id: slow
    title: Slow
    probes: [api]
    diagnose:
      - {{title: Health, kind: http, connection: api,
         path: "/health?code={{{{ probes.api.fields.http_status }}}}"}}
    actions:
      - id: wait
        title: Wait for the backlog
        kind: watch
        watch: backlog
        until: "waiting < 10"
        timeout: 1m
""",
        encoding="utf-8",
    )
    return path


async def _modules(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    report = tmp_path / "modules.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(report), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    document = json.loads(report.read_text("utf-8"))
    return int(document["code"]), {name.split(".")[0] for name in document["modules"]}


def _libraries(packages: set[str]) -> set[str]:
    return {name for name in CLIENT_LIBRARIES if name in packages}


async def test_validate_imports_no_textual_and_no_client_library(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    config = _config(tmp_path, await serve_app(_health_app()))
    code, packages = await _modules(tmp_path, "validate", "--config", str(config))
    assert code == 0
    assert "textual" not in packages
    assert _libraries(packages) == set()  # the queue's fields are read without redis-py
    assert "aiohttp" not in packages  # nothing is polled
    assert "click" not in packages  # httpx's command-line client


async def test_check_imports_only_the_kinds_the_config_uses(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    config = _config(tmp_path, await serve_app(_health_app()))
    code, packages = await _modules(tmp_path, "check", "--config", str(config))
    assert code == 2  # the queue's Redis is refused: it was polled, with redis-py
    assert "textual" not in packages
    assert _libraries(packages) == {"redis"}
    assert "asyncpg" not in packages and "pglast" not in packages
