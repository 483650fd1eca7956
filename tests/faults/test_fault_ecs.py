"""Fault matrix for ecs probes against a real moto server process.

moto keeps its state in memory, so the server's seed callback recreates the cluster and the
service every time the harness starts it again ("server back").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config.models import Config
from tests.faults.harness import run_fault_matrix
from tests.servers.moto import MotoServer, aws_test_env, create_services
from tests.servers.process import free_tcp_port


def _seed(server: MotoServer) -> None:
    create_services(server, "prod", {"web": 2})


@pytest.fixture
def moto_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_test_env().items():
        monkeypatch.setenv(name, value)
    server = MotoServer(tmp_path, seed=_seed)
    server.start()
    yield server
    server.stop()


def _config(url: str) -> Config:
    return Config.model_validate(
        {
            "refresh": "1s",
            "connections": {
                "aws": {"kind": "aws", "region": "eu-west-1", "endpoint_url": url, "timeout": "2s"}
            },
            "probes": [
                {
                    "id": "probe",
                    "kind": "ecs",
                    "connection": "aws",
                    "cluster": "prod",
                    "service": "web",
                }
            ],
        }
    )


async def test_ecs_fault_matrix(moto_server: MotoServer) -> None:
    rows = await run_fault_matrix(
        "ecs",
        moto_server,
        _config(moto_server.url),
        _config(f"http://127.0.0.1:{free_tcp_port()}"),
    )
    by_case = {r.case: r for r in rows}
    assert by_case["connection refused"].reason == "refused"
    assert by_case["stopped mid-run"].reason == "refused"
    assert "timeout" in by_case["hung past timeout"].reason
    assert by_case["back after stop"].state == "ok"
    assert by_case["back after hang"].state == "ok"
