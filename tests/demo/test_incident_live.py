"""Integration: the demo's real backends (redis-server, moto's ECS, the stand-in service) with
the world's clock sped up 20x; the incident shows in Redis and /health, and the demo
runbook's scale-up action, run through the actions Runner, drains it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from opstui.config.loader import load_config
from opstui.demo.launcher import start_backends
from opstui.demo.runner import CALM_ENV, SPEED_ENV
from tests.actions.support import make_runner
from tests.demo.conftest import wait_until
from tests.support import require_binary

WAIT_KEY = "bull:anclora-whatsapp:wait"


def health(url: str) -> tuple[int, dict[str, Any]]:
    reply = httpx.get(f"{url}/health", timeout=5)
    return reply.status_code, reply.json()


async def test_scale_up_from_the_runbook_drains_the_live_incident(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    require_binary("redis-server")
    pytest.importorskip("moto.server")
    monkeypatch.setenv(SPEED_ENV, "20")
    monkeypatch.delenv(CALM_ENV, raising=False)
    backends = start_backends()
    client: redis.Redis | None = None
    try:
        assert backends.server is not None and backends.redis is not None
        assert backends.config_path is not None
        url, runner = backends.server.url, backends.server.runner
        assert runner.speed == 20 and runner.world.incident is not None
        for name, value in backends.env.items():
            monkeypatch.setenv(name, value)
        config = load_config(backends.config_path)
        client = redis.Redis.from_url(
            backends.redis.url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
        )
        llen = client.llen

        wait_until(lambda: int(llen(WAIT_KEY)) > 5000, "the backlog past 5,000", timeout=30)
        wait_until(lambda: health(url)[0] == 503, "/health to fail", timeout=30)
        _, body = health(url)
        assert body["checks"]["eventLoop"][0]["status"] == "fail"
        assert runner.world.tasks == 2

        parts = make_runner(config, tmp_path)
        try:
            step = await parts.runner.prepare_action(
                "high-queue-backlog", "scale-up", {"count": "4"}
            )
            token = parts.runner.confirm(step, via="prompt")
            outcome = await parts.runner.run(step, token=token)
        finally:
            await parts.close()
        assert outcome.ok, outcome.error

        wait_until(lambda: runner.world.tasks == 4, "the world to read desiredCount 4")
        wait_until(lambda: int(llen(WAIT_KEY)) < 1000, "the backlog to drain", timeout=30)
        wait_until(lambda: health(url)[0] == 200, "/health to pass", timeout=30)
        assert health(url)[1]["checks"]["eventLoop"][0]["status"] == "pass"
    finally:
        if client is not None:
            client.close()
        backends.stop()
