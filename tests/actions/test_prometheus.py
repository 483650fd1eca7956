"""The prometheus executor through the Runner, against a real `prometheus` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.actions.support import make_config, make_runner
from tests.servers.prometheus import PrometheusServer
from tests.support import require_binary


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus")
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), binary)
    server.start()
    try:
        yield server
    finally:
        server.close()


def prom_config(url: str) -> dict[str, Any]:
    series = (
        'label_replace(vector(3), "room", "a", "", "") or '
        'label_replace(vector(7), "room", "b", "", "")'
    )
    return {
        "connections": {"prom": {"kind": "prometheus", "url": url, "timeout": "5s"}},
        "runbooks": [
            {
                "id": "metrics",
                "title": "Metrics",
                "diagnose": [
                    {"kind": "prometheus", "title": "Rooms", "connection": "prom", "query": series},
                    {
                        "kind": "prometheus",
                        "title": "Scalar",
                        "connection": "prom",
                        "query": "scalar(vector({{ params.n | default(6) }})) * 7",
                    },
                    {
                        "kind": "prometheus",
                        "title": "Broken",
                        "connection": "prom",
                        "query": "sum((",
                    },
                ],
            }
        ],
    }


async def test_query_is_read_only_and_shown_as_a_table(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    parts = make_runner(make_config(prom_config(prometheus.url)), tmp_path, read_only=True)
    try:
        step = await parts.runner.prepare_diagnose("metrics", 0)
        assert step.equivalent.startswith("label_replace(vector(3)")
        verdict = await parts.runner.classify(step)
        assert not verdict.mutating
        outcome = await parts.runner.run(step)
        assert outcome.ok, outcome
        assert outcome.summary == "2 series"
        assert outcome.output.splitlines() == ["room  value", "b     7", "a     3"]

        scalar = await parts.runner.run(await parts.runner.prepare_diagnose("metrics", 1))
        assert scalar.ok and scalar.output == "42"

        broken = await parts.runner.run(await parts.runner.prepare_diagnose("metrics", 2))
        assert not broken.ok and broken.summary.startswith("query failed: ")
        assert not parts.audit.path.exists()
    finally:
        await parts.close()
