"""Fault matrix for a queue probe and a redis_info probe against a real redis-server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.config.models import Config
from tests.faults.harness import run_fault_matrix
from tests.servers.process import free_tcp_port
from tests.servers.redis import RedisServer
from tests.servers.started import redis_started


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_started(tmp_path) as server:
        yield server


def _config(url: str, probe: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "refresh": "1s",
            "connections": {"cache": {"kind": "redis", "url": url, "timeout": "1s"}},
            "probes": [{"id": "probe", "connection": "cache", **probe}],
        }
    )


QUEUE = {"kind": "queue", "flavor": "list", "queue": "jobs"}
INFO = {"kind": "redis_info", "value": "connected_clients"}


@pytest.mark.parametrize(("backend", "probe"), [("redis-queue", QUEUE), ("redis-info", INFO)])
async def test_redis_fault_matrix(
    redis_server: RedisServer, backend: str, probe: dict[str, Any]
) -> None:
    refused = f"redis://127.0.0.1:{free_tcp_port()}/0"
    rows = await run_fault_matrix(
        backend, redis_server, _config(redis_server.url, probe), _config(refused, probe)
    )
    by_case = {r.case: r for r in rows}
    assert by_case["connection refused"].reason == "refused"
    assert by_case["stopped mid-run"].reason in (
        "refused",
        "connection reset",
        "connection closed by server",
    )
    assert by_case["hung past timeout"].reason == "timeout after 1s"
    assert by_case["back after hang"].state == "ok"
