"""The Anclora system for the example config: the stand-in app, a real redis-server holding
the BullMQ keys, moto ECS holding the cluster and service, Prometheus scraping the stand-in,
recorder scripts standing in for `aws`, `docker-compose` and the rollback script. One system
per module (servers take seconds to start); the env vars point the example at it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstui.config.loader import load_config
from opstui.config.models import Config
from tests.servers.moto import MotoServer, aws_test_env, create_services
from tests.servers.redis import RedisServer
from tests.support import require_binary
from tests.systems.anclora.prometheus import AncloraPrometheus
from tests.systems.anclora.standin import QUEUE, AncloraStandIn, StandInState

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "anclora-whatsapp.yaml"
CLUSTER = "anclora-production"
SERVICE = "anclora-whatsapp"
DESIRED = 4
ADMIN_KEY = "adm-7f3c9e1b2d"
EVOLUTION_KEY = "evo-5a8d2c4f6e"
WAITING = 120
ACTIVE = 4
FAILED = 7
COMPLETED = 50

_RECORDER = """#!/bin/sh
printf '%s\\n' "$(basename "$0") $*" >> {log}
echo "recorded: $(basename "$0") $*"
"""


@dataclass
class System:
    config: Config
    state: StandInState
    app: AncloraStandIn
    redis: RedisServer
    moto: MotoServer
    prometheus: AncloraPrometheus
    record: Path  # one line per recorder-script call: "aws logs tail ..."
    tmp: Path

    def recorded(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []

    def service(self) -> dict[str, Any]:
        found: dict[str, Any] = self.moto.client("ecs").describe_services(
            cluster=CLUSTER, services=[SERVICE]
        )["services"][0]
        return found


def seed_queue(server: RedisServer) -> None:
    """BullMQ's layout: wait/active lists, completed/failed/delayed sorted sets, a meta hash,
    the id counter and one hash per job."""
    with server.sync_client() as client:
        client.flushdb()
        pipe = client.pipeline()
        pipe.hset(f"{QUEUE}:meta", mapping={"opts.maxLenEvents": "10000", "version": "bullmq"})
        pipe.set(f"{QUEUE}:id", WAITING + ACTIVE + FAILED + COMPLETED)
        job = 0
        for _ in range(WAITING):
            job += 1
            pipe.lpush(f"{QUEUE}:wait", str(job))
        for _ in range(ACTIVE):
            job += 1
            pipe.lpush(f"{QUEUE}:active", str(job))
        for _ in range(COMPLETED):
            job += 1
            pipe.zadd(f"{QUEUE}:completed", {str(job): job})
        for _ in range(FAILED):
            job += 1
            pipe.zadd(f"{QUEUE}:failed", {str(job): job})
            pipe.hset(
                f"{QUEUE}:{job}",
                mapping={"name": "send-message", "failedReason": "Evolution API 502"},
            )
        pipe.execute()


def _recorder(path: Path, log: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_RECORDER.format(log=log))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _seed_ecs(server: MotoServer) -> None:
    create_services(server, CLUSTER, {SERVICE: DESIRED}, family=SERVICE)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    prometheus_binary = require_binary("prometheus")
    require_binary("redis-server")
    tmp = tmp_path_factory.mktemp("anclora")
    record = tmp / "recorded.log"
    bin_dir, repo = tmp / "bin", tmp / "repo"
    for name in ("aws", "docker-compose"):
        _recorder(bin_dir / name, record)
    _recorder(repo / "scripts" / "deployment" / "rollback.sh", record)

    redis_server = RedisServer(tmp / "redis")
    moto = MotoServer(
        tmp / "moto", seed=_seed_ecs, extra_env={"MOTO_ECS_SERVICE_RUNNING": str(DESIRED)}
    )
    app: AncloraStandIn | None = None
    prometheus: AncloraPrometheus | None = None
    patch = pytest.MonkeyPatch()
    try:
        redis_server.start()
        seed_queue(redis_server)
        state = StandInState(ADMIN_KEY, EVOLUTION_KEY, redis_server.url)
        app = AncloraStandIn(state)
        app.start()
        prometheus = AncloraPrometheus(
            tmp / "prometheus", f"127.0.0.1:{app.port}", binary=prometheus_binary
        )
        prometheus.start()  # scrapes while moto starts
        moto.start()
        prometheus.wait_for_rates()

        for name in [k for k in os.environ if k.startswith("AWS_")]:
            patch.delenv(name)
        for name, value in aws_test_env().items():
            patch.setenv(name, value)
        patch.setenv("AWS_REGION", "eu-west-1")
        patch.setenv("AWS_ENDPOINT_URL_ECS", moto.url)
        patch.setenv("ANCLORA_URL", app.url)
        patch.setenv("ADMIN_KEY", ADMIN_KEY)
        patch.setenv("EVOLUTION_URL", app.url)
        patch.setenv("EVOLUTION_API_KEY", EVOLUTION_KEY)
        patch.setenv("INSTANCE_NAME", "anclora")
        patch.setenv("REDIS_URL", redis_server.url)
        patch.setenv("PROMETHEUS_URL", prometheus.url)
        patch.setenv("ANCLORA_REPO", str(repo))
        patch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        config = load_config(EXAMPLE)
        yield System(config, state, app, redis_server, moto, prometheus, record, tmp)
    finally:
        patch.undo()
        if prometheus is not None:
            prometheus.close()
        if app is not None:
            app.stop()
        moto.stop()
        redis_server.stop()
