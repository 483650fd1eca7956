"""A stand-in of WhatsApp Agent (seed 003): the FastAPI app's endpoints (health, production
metrics and alerts, the webhook) plus the outside services the guide calls (OpenAI, Meta
Graph, the security team's webhook) on one local server; the project directory the guide's
commands read (logs/, scripts/, app/, a git repository, a config backup); PostgreSQL with
`conversations` and pg_stat_statements; Redis with cache keys and a maxmemory."""

from __future__ import annotations

import datetime
import io
import os
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from aiohttp import web

from tests.systems.remember_me.harness import Recorder, make_recorder

OPENAI_KEY = "sk-test-openai"
META_TOKEN = "meta-test-token"

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
DROP TABLE IF EXISTS conversations;
CREATE TABLE conversations (id serial PRIMARY KEY, phone text NOT NULL, started_at timestamptz);
INSERT INTO conversations (phone, started_at)
SELECT '+55119' || lpad(i::text, 8, '0'), now() - i * interval '1 minute'
FROM generate_series(1, 50) AS i;
"""
SLOW_QUERY = "SELECT pg_sleep(0.15)"

APP_LOG = """\
2025-08-09 10:00:01 INFO POST /webhook 200 took 120ms
2025-08-09 10:00:02 ERROR webhook handler failed TimeoutError
2025-08-09 10:00:03 CRITICAL database connection refused
2025-08-09 10:00:04 ERROR openai request failed RateLimitError
2025-08-09 10:00:05 WARNING auth login failed for token ab12
2025-08-09 10:00:06 ERROR webhook handler failed TimeoutError
"""
ACCESS_LOG = """\
10.0.0.1 - - [09/Aug/2025:10:00:01 +0000] "POST /webhook HTTP/1.1" 200 12 "-" "meta"
10.0.0.9 - - [09/Aug/2025:10:00:02 +0000] "POST /webhook HTTP/1.1" 500 12 "-" "meta"
10.0.0.9 - - [09/Aug/2025:10:00:03 +0000] "GET /health HTTP/1.1" 503 12 "-" "curl"
10.0.0.9 - - [09/Aug/2025:10:00:04 +0000] "GET /admin HTTP/1.1" 403 12 "-" "scanner"
"""
SECURITY_LOG = "2025-08-09 10:00:04 unauthorized access to /admin from 10.0.0.9\n"
PERFORMANCE_LOG = "2025-08-09 10:00:07 GET /conversations took 2400ms (slow)\n"
ENV_FILE = "LOG_LEVEL=INFO\nAPP_PORT=8000\n"
TOOLS = ("docker", "certbot", "iostat", "iptables", "logrotate", "python")
SCRIPTS = ("rolling_update.sh", "restore_backup.sh", "monitor_health.sh", "restore_full_backup.sh")
VALIDATORS = ("validate_configuration.py", "validate_secrets.py")


def seed_redis(client: redis.Redis) -> None:
    client.flushall()
    client.config_set("maxmemory", "64mb")
    client.config_set("maxmemory-policy", "noeviction")
    for i in range(20):
        client.set(f"cache:conversation:{i}", "x" * 200)
    client.select(1)
    client.set("sessions:keep", "1")  # another database: FLUSHDB leaves it, FLUSHALL does not
    client.select(0)


@dataclass
class Project:
    """The project directory and the recorders standing in for its tools and scripts."""

    root: Path
    tools: dict[str, Recorder] = field(default_factory=dict)
    scripts: dict[str, Recorder] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def docker(self) -> list[list[str]]:
        return self.tools["docker"].calls()

    def write_logs(self) -> None:
        """logs/ as the incident left them: current logs, a 10-day-old .log and a 5-day-old
        rotated one."""
        logs = self.root / "logs"
        for name in os.listdir(logs) if logs.exists() else []:
            (logs / name).unlink()
        logs.mkdir(exist_ok=True)
        for name, text in (
            ("app.log", APP_LOG),
            ("access.log", ACCESS_LOG),
            ("security.log", SECURITY_LOG),
            ("performance.log", PERFORMANCE_LOG),
            ("old.log", "old\n"),
            ("app.log.1", "rotated\n"),
        ):
            (logs / name).write_text(text)
        now = time.time()
        os.utime(logs / "old.log", (now - 10 * 86400, now - 10 * 86400))
        os.utime(logs / "app.log.1", (now - 5 * 86400, now - 5 * 86400))


def make_project(root: Path) -> Project:
    project = Project(root)
    for tool in TOOLS:
        project.tools[tool] = make_recorder(project.bin, tool)
    for script in SCRIPTS:
        project.scripts[script] = make_recorder(root / "scripts", script)
    for validator in VALIDATORS:
        project.scripts[validator] = make_recorder(root, validator)
    (root / "app" / "services").mkdir(parents=True)
    (root / "app" / "services" / "openai_client.py").write_text("MAX_RETRY = 3  # retry\n")
    (root / "app" / "config").mkdir(parents=True)
    (root / "app" / "config" / "environment_config.py").write_text("RATE_LIMIT_PER_MINUTE = 60\n")
    (root / ".env").write_text(ENV_FILE)
    (root / "docker-compose.yml").write_text("services:\n  app: {image: whatsapp-agent}\n")
    backups = root / "backups" / "automatic"
    backups.mkdir(parents=True)
    today = datetime.date.today().strftime("%Y%m%d")
    with tarfile.open(backups / f"config_{today}_0300.tar.gz", "w:gz") as tar:
        data = b"restored from backup\n"
        info = tarfile.TarInfo("restored-config.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    git = ["git", "-C", str(root), "-c", "user.name=ops", "-c", "user.email=ops@example.com"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=30)
    subprocess.run([*git, "add", ".env", "docker-compose.yml"], check=True, timeout=30)
    subprocess.run([*git, "commit", "-q", "-m", "config v1"], check=True, timeout=30)
    subprocess.run(
        [*git, "commit", "-q", "--allow-empty", "-m", "deploy: new prompt"], check=True, timeout=30
    )
    project.write_logs()
    return project


@dataclass
class WhatsappAgent:
    """The app and its outside services; `received` records each POST (path, JSON body)."""

    received: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self.health)
        app.router.add_get("/production/metrics/performance", self.performance)
        app.router.add_get("/production/metrics/business", self.business)
        app.router.add_get("/production/alerts/active", self.alerts)
        app.router.add_post("/webhook", self.record)
        app.router.add_post("/security-hook", self.record)
        app.router.add_get("/v1/models", self.openai_models)
        app.router.add_get("/v17.0/{node:.+}", self.meta_node)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "healthy", "checks": {"database": "ok", "redis": "ok", "openai": "ok"}}
        )

    async def performance(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "sla_metrics": {
                    "response_time": {"p95_ms": 850, "sla_ms": 2000, "compliant": True},
                    "error_rate": {"percent": 1.2, "sla_percent": 5, "compliant": True},
                },
            }
        )

    async def business(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "messages_today": 1234, "conversations": 50})

    async def alerts(self, request: web.Request) -> web.Response:
        return web.json_response({"alerts": [], "count": 0})

    async def record(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append((request.path, body))
        return web.json_response({"status": "received"})

    async def openai_models(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {OPENAI_KEY}":
            return web.json_response({"error": "invalid api key"}, status=401)
        return web.json_response({"data": [{"id": "gpt-4o-mini"}]})

    async def meta_node(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {META_TOKEN}":
            return web.json_response({"error": {"code": 190}}, status=401)
        return web.json_response({"id": request.match_info["node"], "verified_name": "Agent"})
