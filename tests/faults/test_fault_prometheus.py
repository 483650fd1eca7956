"""Fault matrix for a prometheus query probe against Debian's real `prometheus`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config.models import Config
from tests.faults.harness import run_fault_matrix
from tests.servers.process import free_tcp_port
from tests.servers.prometheus import PrometheusServer
from tests.support import require_binary


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path, require_binary("prometheus"))
    server.start()
    yield server
    server.close()


def _config(url: str) -> Config:
    return Config.model_validate(
        {
            "refresh": "1s",
            "connections": {"prom": {"kind": "prometheus", "url": url, "timeout": "2s"}},
            "probes": [
                {"id": "probe", "kind": "prometheus", "connection": "prom", "query": "vector(1)"}
            ],
        }
    )


async def test_prometheus_fault_matrix(prometheus_server: PrometheusServer) -> None:
    rows = await run_fault_matrix(
        "prometheus",
        prometheus_server,
        _config(prometheus_server.url),
        _config(f"http://127.0.0.1:{free_tcp_port()}"),
    )
    by_case = {r.case: r for r in rows}
    assert by_case["connection refused"].reason == "refused"
    assert by_case["stopped mid-run"].reason in ("refused", "connection reset")
    assert by_case["hung past timeout"].reason == "timeout after 2s"
    assert by_case["back after hang"].state == "ok"
