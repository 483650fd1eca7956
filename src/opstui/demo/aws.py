"""The demo's ECS: moto's in-process AWS server (the `demo` extra) seeded like Anclora's.

Cluster anclora-production runs service anclora-whatsapp (desiredCount 2). The world reads
the service's desiredCount every second through `desired_count()`, so scaling the service
(a runbook's `update-service --desired-count`) really changes how fast the backlog drains.
Credentials are dummies given to each client explicitly; nothing reads ~/.aws.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import urllib.request
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
CLUSTER = "anclora-production"
SERVICE = "anclora-whatsapp"
DESIRED = 2
ACCESS_KEY = "demo"
SECRET_KEY = "demo-secret"
CALL_TIMEOUT = 3.0


def moto_available() -> bool:
    """Whether the `demo` extra (moto's server) is installed."""
    try:
        return importlib.util.find_spec("moto.server") is not None
    except (ImportError, ValueError):
        return False


def demo_aws_env(workdir: Path) -> dict[str, str]:
    """Environment for the demo process: dummy keys, no profile, no ~/.aws, no metadata."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(workdir / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def apply_env(env: dict[str, str]) -> dict[str, str | None]:
    """Set `env` in this process; the previous values, for restore_env()."""
    previous = {name: os.environ.get(name) for name in env}
    for name in [n for n in os.environ if n.startswith("AWS_") and n not in env]:
        previous[name] = os.environ.pop(name)
    os.environ.update(env)
    return previous


def restore_env(previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


class DemoEcs:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port), seeded with the service."""

    def __init__(self) -> None:
        self._server: Any = None
        self._ecs: Any = None
        self.url = ""

    @property
    def description(self) -> str:
        return f"ECS (moto) on {self.url.removeprefix('http://')}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr, which would scribble over the dashboard.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        try:
            self._seed()
        except Exception:
            self.stop()
            raise

    def _client(self) -> Any:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        return boto3.session.Session().client(
            "ecs",
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                connect_timeout=CALL_TIMEOUT,
                read_timeout=CALL_TIMEOUT,
                retries={"max_attempts": 1},
            ),
        )

    def _seed(self) -> None:
        # moto keeps its state per process: start from nothing, as a fresh account would.
        reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=CALL_TIMEOUT):
            pass
        ecs = self._client()
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(
            family=SERVICE,
            containerDefinitions=[
                {"name": SERVICE, "image": "anclora/whatsapp:2.4.1", "memory": 2048, "cpu": 1024}
            ],
        )
        ecs.create_service(
            cluster=CLUSTER, serviceName=SERVICE, taskDefinition=SERVICE, desiredCount=DESIRED
        )
        # moto starts a service at runningCount 0; an update brings it to desiredCount.
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=DESIRED)
        self._ecs = ecs

    def desired_count(self) -> int | None:
        """The service's desiredCount now (None if it cannot be read): blocking, call it off
        the event loop."""
        if self._ecs is None:
            return None
        reply = self._ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
        services = reply.get("services") or []
        if not services:
            return None
        return int(services[0]["desiredCount"])

    def stop(self) -> None:
        server, self._server = self._server, None
        self._ecs = None
        if server is not None:
            server.stop()
