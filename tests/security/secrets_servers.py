"""The echo scenario for the secret-leak tests: every backend gives back what it received.

- an HTTP server (basic auth from the base URL's userinfo, plus a token header) that answers
  every request with a 500 whose body quotes the request headers, JSON-escaped;
- PostgreSQL with password authentication for role `app`, whose probe query fails quoting
  a setting that holds the password, and whose SQL arg step fails quoting the bound value;
- redis-server with requirepass, a key holding the value a `${SECRET}` SET item sends;
- a shell step printing its `${SECRET}` argv item and env value.

Secrets are chosen so that their encoded forms differ from the raw text (`@`, `/`, `:`, a
quote): a sink that hides the raw value but not the URL-encoded, base64 or JSON-escaped one
still fails. `Scenario.forms()` lists every form a sink must not contain.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import asyncpg
import yaml
from aiohttp import web

from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.support import environment, require_binary
from tests.systems.remember_me.harness import ThreadedApp

HTTP_USER = "opsuser"
HTTP_PASSWORD = "b@sic:pw/Zq7!"
TOKEN = 'tok-4f9a"q\\x'
PG_PASSWORD = "pgPa55-wd@x/y"
SQL_ARG = "sqlArg-77k"
REDIS_PASSWORD = "rEdis-pw-91"
REDIS_ARG = "redisArg-5150"
SHELL_ARG = "shArg-1234x"
SHELL_ENV = "shEnv-5678y"
REDIS_KEY = "sec:key"

SECRETS = {
    "password of the HTTP base URL (basic auth)": HTTP_PASSWORD,
    "token header": TOKEN,
    "PostgreSQL DSN password": PG_PASSWORD,
    "SQL arg": SQL_ARG,
    "redis URL password": REDIS_PASSWORD,
    "redis command item": REDIS_ARG,
    "shell argv item": SHELL_ARG,
    "shell env value": SHELL_ENV,
}


def encoded_forms(value: str) -> set[str]:
    """The forms a leak takes: raw, URL-encoded, JSON-escaped, base64."""
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        base64.b64encode(value.encode()).decode(),
    }
    return {f for f in forms if f}


def leaks(text: str) -> list[str]:
    """Which secrets (by name and form) `text` contains; empty when it is clean."""
    found = []
    basic = base64.b64encode(f"{HTTP_USER}:{HTTP_PASSWORD}".encode()).decode()
    if basic in text:
        found.append(f"basic auth header (base64 {basic})")
    for name, value in SECRETS.items():
        for form in encoded_forms(value):
            if form in text:
                found.append(f"{name} as {form!r}")
    return found


RECEIVED_BODIES: list[str] = []
"""Every request body the echo server got (its state, for the tests to check)."""


def _echo_app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        received = {name: value for name, value in request.headers.items()}
        text = await request.text()
        if text:
            RECEIVED_BODIES.append(text)
        body = json.dumps({"status": "fail", "error": "boom", "received": received, "body": text})
        return web.Response(status=500, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def _prepare_postgres(server: PostgresServer) -> None:
    conn = await asyncpg.connect(server.dsn, timeout=30)
    try:
        await conn.execute("CREATE DATABASE ops")
        escaped = PG_PASSWORD.replace("'", "''")
        await conn.execute(f"CREATE ROLE app LOGIN PASSWORD '{escaped}'")
        await conn.execute(f"ALTER ROLE app SET opstui.echo = '{escaped}'")
    finally:
        await conn.close()
    conn = await asyncpg.connect(server.dsn_for(database="ops"), timeout=30)
    try:
        await conn.execute("CREATE TABLE notes (v text)")
        await conn.execute("GRANT SELECT, INSERT ON notes TO app")
    finally:
        await conn.close()


def notes(server: PostgresServer) -> list[str]:
    """The rows the `note` action inserted (the server's state)."""

    async def read() -> list[str]:
        conn = await asyncpg.connect(server.dsn_for(database="ops"), timeout=30)
        try:
            return [row["v"] for row in await conn.fetch("SELECT v FROM notes")]
        finally:
            await conn.close()

    return asyncio.run(read())


HBA = (
    "local all all trust\n"
    "host all postgres 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)


@dataclass
class Scenario:
    """The started servers, the config file and the environment it needs."""

    root: Path
    config_path: Path
    env: dict[str, str]
    http: ThreadedApp
    postgres: PostgresServer
    redis: RedisServer
    marker: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def audit_path(self) -> Path:
        return self.root / "audit" / "audit.jsonl"

    def audit_text(self) -> str:
        return self.audit_path.read_text() if self.audit_path.exists() else ""


def scenario_config(http_url: str, pg_port: int, redis_port: int, marker: Path,
                    audit: Path) -> dict[str, Any]:
    """The echo scenario's config, every credential as a ${ENV} reference."""
    host = http_url.removeprefix("http://")
    shell_print = 'echo "argv=$1 env=$SEC_SHELL_ENV"'
    return {
        "title": "echo scenario",
        "environment": "staging",
        "audit_log": str(audit),
        "connections": {
            "app": {
                "kind": "http",
                "base_url": f"http://{HTTP_USER}:${{SEC_HTTP_PW}}@{host}",
                "headers": {"X-Api-Token": "${SEC_TOKEN}"},
                "timeout": "5s",
            },
            "db": {
                "kind": "postgres",
                "dsn": f"postgresql://app:${{SEC_PG_PW}}@127.0.0.1:{pg_port}/ops",
                "timeout": "5s",
            },
            "cache": {
                "kind": "redis",
                "url": f"redis://:${{SEC_REDIS_PW}}@127.0.0.1:{redis_port}/0",
                "timeout": "5s",
            },
        },
        "probes": [
            {"id": "health", "kind": "health", "connection": "app", "path": "/health",
             "interval": "1s"},
            {"id": "echo_sql", "kind": "sql", "connection": "db", "interval": "1s",
             "query": "SELECT current_setting('opstui.echo')::int"},
            {"id": "cache", "kind": "redis_info", "connection": "cache", "interval": "1s"},
        ],
        "runbooks": [
            {
                "id": "leak",
                "title": "Everything echoes",
                "probes": ["health", "echo_sql", "cache"],
                "diagnose": [
                    {"title": "HTTP echo", "kind": "http", "connection": "app",
                     "path": "/diag"},
                    {"title": "SQL echo", "kind": "sql", "connection": "db",
                     "sql": "SELECT $1::text::int", "args": ["${SEC_SQL_ARG}"]},
                    {"title": "Redis echo", "kind": "redis", "connection": "cache",
                     "command": ["GET", REDIS_KEY]},
                    {"title": "Shell echo", "kind": "shell", "readonly": True,
                     "argv": ["sh", "-c", shell_print, "sh", "${SEC_SHELL_ARG}"],
                     "env": {"SEC_SHELL_ENV": "${SEC_SHELL_ENV_VALUE}"}},
                    {"title": "Plain default", "kind": "shell", "readonly": True,
                     "argv": ["echo", "${OPSTUI_SURELY_UNSET_VAR:-visible-default}"]},
                    {"title": "Secret key name", "kind": "redis", "connection": "cache",
                     "command": ["GET", "${SEC_REDIS_ARG}"]},
                ],
                "actions": [
                    {"id": "post", "title": "HTTP post", "kind": "http", "connection": "app",
                     "method": "POST", "path": "/act"},
                    {"id": "set", "title": "Redis set", "kind": "redis", "connection": "cache",
                     "command": ["SET", REDIS_KEY, "${SEC_REDIS_ARG}"]},
                    {"id": "shell", "title": "Shell with secrets", "kind": "shell",
                     "argv": ["sh", "-c", f'printf "%s %s" "$1" "$SEC_SHELL_ENV" > {marker}; '
                              f"{shell_print}", "sh", "${SEC_SHELL_ARG}"],
                     "env": {"SEC_SHELL_ENV": "${SEC_SHELL_ENV_VALUE}"}},
                    {"id": "sql", "title": "SQL with a secret arg", "kind": "sql",
                     "connection": "db", "mutating": True,
                     "sql": "SELECT $1::text::int", "args": ["${SEC_SQL_ARG}"]},
                    {"id": "note", "title": "Insert a note", "kind": "sql", "connection": "db",
                     "mutating": True, "sql": "INSERT INTO notes (v) VALUES ($1)",
                     "args": ["${SEC_SQL_ARG}"]},
                    {"id": "post-json", "title": "HTTP post with a secret body",
                     "kind": "http", "connection": "app", "method": "POST", "path": "/act",
                     "json": {"token": "${SEC_TOKEN}", "note": "plain"}},
                    {"id": "del-secret", "title": "Delete a secret-named key", "kind": "redis",
                     "connection": "cache", "command": ["DEL", "${SEC_REDIS_ARG}"]},
                    {"id": "nuke", "title": "Dangerous", "kind": "shell", "danger": "high",
                     "argv": ["touch", str(marker)]},
                ],
            }
        ],
    }


SCENARIO_ENV = {
    "SEC_HTTP_PW": quote(HTTP_PASSWORD, safe=""),
    "SEC_TOKEN": TOKEN,
    "SEC_PG_PW": quote(PG_PASSWORD, safe=""),
    "SEC_SQL_ARG": SQL_ARG,
    "SEC_REDIS_PW": REDIS_PASSWORD,
    "SEC_REDIS_ARG": REDIS_ARG,
    "SEC_SHELL_ARG": SHELL_ARG,
    "SEC_SHELL_ENV_VALUE": SHELL_ENV,
}



@contextmanager
def echo_scenario() -> Iterator[Scenario]:
    """Start the three servers, write the config; everything removed afterwards."""
    require_binary("redis-server")
    root = Path(tempfile.mkdtemp(prefix="opstui-secrets-"))
    http = ThreadedApp(_make_echo)
    postgres = PostgresServer(root / "pg", hba=HBA)
    redis_server = RedisServer(root / "redis", requirepass=REDIS_PASSWORD)
    (root / "pg").mkdir()
    (root / "redis").mkdir()
    try:
        http.start()
        postgres.start()
        asyncio.run(_prepare_postgres(postgres))
        redis_server.start()
        with redis_server.sync_client() as client:
            client.set(REDIS_KEY, REDIS_ARG)
            client.set(REDIS_ARG, "found-by-secret-name")
        marker = root / "marker.txt"
        config = scenario_config(
            http.url, postgres.port, redis_server.port, marker, root / "audit" / "audit.jsonl"
        )
        path = root / "opstui.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        with environment(SCENARIO_ENV):
            yield Scenario(root, path, dict(SCENARIO_ENV), http, postgres, redis_server, marker)
    finally:
        redis_server.stop()
        postgres.close()
        http.close()
        shutil.rmtree(root, ignore_errors=True)


async def _make_echo() -> web.Application:
    return _echo_app()
