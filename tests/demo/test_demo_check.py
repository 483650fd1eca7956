"""Integration: the demo's backends up (not the TUI), `opstui check --json` on its effective
config reads every probe: Redis queue and server, ECS, health, scrape."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from opstui.demo import launcher
from opstui.demo.launcher import DemoBackends, environment_for, start_backends
from tests.demo.conftest import wait_until
from tests.support import require_binary

DESIGNED_TO_FAIL = {"remember-me-api"}
"""Its Redis flaps by script: crit for 9 s of every 30, whatever the world does."""


@pytest.fixture(params=["redis-server+moto", "standin-no-moto"])
def backends(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DemoBackends]:
    if request.param == "redis-server+moto":
        require_binary("redis-server")
        pytest.importorskip("moto.server")
        started = start_backends()
    else:
        monkeypatch.setattr(launcher, "moto_available", lambda: False)
        started = start_backends(find_redis=False)
    try:
        assert started.server is not None
        runner = started.server.runner
        wait_until(lambda: runner.redis_ok is True and runner.world.total_completed > 0,
                   "the world to run")
        yield started
    finally:
        started.stop()


def test_check_json_reads_every_demo_probe(backends: DemoBackends) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opstui", "check", "--json", "--config",
         str(backends.config_path)],
        env=environment_for(backends), capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.stdout, result.stderr
    probes = {p["id"]: p for p in json.loads(result.stdout)["probes"]}
    with_ecs = backends.ecs is not None
    assert ("ecs" in probes) is with_ecs
    for pid, probe in probes.items():
        assert probe["state"] != "error", (pid, probe)
        if pid == "throughput":  # a rate needs two scrapes; one check gives one
            assert probe["state"] == "nodata" and "two scrapes" in probe["error"]
            continue
        assert probe["value"] is not None, (pid, probe)
        if pid not in DESIGNED_TO_FAIL:
            assert probe["state"] in ("ok", "warn", "pending"), (pid, probe)

    queue = probes["queue"]["fields"]
    assert queue["completed"] > 0 and queue["is_paused"] is False
    assert {"waiting", "active", "delayed", "prioritized", "failed"} <= set(queue)
    redis = probes["redis"]["fields"]
    assert redis["connected_clients"] >= 2 and redis["maxmemory"] == 64 * 1024 * 1024
    assert 0 < probes["p95"]["value"] < 5
    if with_ecs:
        assert probes["ecs"]["fields"]["desired"] == 2
        assert probes["ecs"]["value"] == 1.0
