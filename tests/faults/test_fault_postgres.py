"""Fault matrix for sql probes against a real PostgreSQL process (interval 1s, timeout 2s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.config.models import Config
from tests.faults.harness import run_fault_matrix
from tests.servers.postgres import PostgresServer
from tests.servers.process import free_tcp_port


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path)
    server.start()
    yield server
    server.close()


def _config(dsn: str) -> Config:
    return Config.model_validate(
        {
            "refresh": "1s",
            "connections": {"db": {"kind": "postgres", "dsn": dsn, "timeout": "2s"}},
            "probes": [
                {
                    "id": "probe",
                    "kind": "sql",
                    "connection": "db",
                    "query": "SELECT count(*) AS n FROM pg_stat_activity",
                }
            ],
        }
    )


async def test_postgres_fault_matrix(pg_server: PostgresServer) -> None:
    rows = await run_fault_matrix(
        "postgres",
        pg_server,
        _config(pg_server.dsn),
        _config(f"postgresql://postgres@127.0.0.1:{free_tcp_port()}/postgres"),
    )
    by_case = {r.case: r for r in rows}
    assert by_case["connection refused"].reason == "refused"
    assert by_case["stopped mid-run"].state == "error"
    assert "timeout after 2s" in by_case["hung past timeout"].reason
    assert by_case["back after hang"].state == "ok"
