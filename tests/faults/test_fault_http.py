"""Fault matrix for http health probes against a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config.models import Config
from tests.faults.harness import run_fault_matrix
from tests.servers.http import HealthServer
from tests.servers.process import free_tcp_port


@pytest.fixture
def health_server(tmp_path: Path) -> Iterator[HealthServer]:
    server = HealthServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _config(url: str) -> Config:
    return Config.model_validate(
        {
            "refresh": "1s",
            "connections": {"svc": {"kind": "http", "base_url": url, "timeout": "2s"}},
            "probes": [{"id": "probe", "kind": "health", "connection": "svc"}],
        }
    )


async def test_http_fault_matrix(health_server: HealthServer) -> None:
    rows = await run_fault_matrix(
        "http", health_server, _config(health_server.url),
        _config(f"http://127.0.0.1:{free_tcp_port()}"),
    )
    by_case = {r.case: r for r in rows}
    assert "refused" in by_case["connection refused"].reason
    assert "timeout" in by_case["hung past timeout"].reason
