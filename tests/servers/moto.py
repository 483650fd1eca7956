"""moto's AWS server as a child process, and boto3 helpers to seed ECS state into it.

A process (not ThreadedMotoServer) so fault tests can stop it and SIGSTOP it. moto keeps its
state in memory: after a restart it is empty, so `start()` re-runs the `seed` callback.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.servers.process import ServerProcess

REGION = "eu-west-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def aws_test_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with dummy credentials and none of the machine's AWS config: no
    ~/.aws files, no profile, no instance metadata lookups (which would go to the network)."""
    env = {k: v for k, v in (base or {}).items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


class MotoServer(ServerProcess):
    """`python -m moto.server` on a loopback port; `seed(server)` runs after every start."""

    name = "moto"
    start_timeout = 90.0  # moto imports a lot; a loaded 2-core CI box can take a while

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        seed: Callable[[MotoServer], None] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.seed = seed
        self.extra_env = dict(extra_env or {})

    def argv(self) -> Sequence[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def env(self) -> dict[str, str]:
        env = aws_test_env(os.environ)
        env.update(self.extra_env)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def start(self) -> None:
        super().start()
        if self.seed is not None:
            self.seed(self)

    def client(self, service: str) -> Any:
        """A sync boto3 client against this server (seeding only; the probes use aioboto3)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
        )


def create_services(
    server: MotoServer, cluster: str, services: Mapping[str, int], family: str = "web"
) -> None:
    """A cluster, a task definition and services with the given desired counts."""
    ecs = server.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    register_task_definition(ecs, family)
    for name, desired in services.items():
        ecs.create_service(
            cluster=cluster, serviceName=name, taskDefinition=family, desiredCount=desired
        )


def register_task_definition(ecs: Any, family: str) -> str:
    response = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": family, "image": "nginx", "memory": 128, "cpu": 64}],
    )
    arn: str = response["taskDefinition"]["taskDefinitionArn"]
    return arn


def run_tasks(server: MotoServer, cluster: str, family: str, count: int) -> list[str]:
    """Tasks need an EC2 container instance in moto: make an instance, register it with the
    cluster through a (fake) instance identity document, then run_task."""
    ecs, ec2 = server.client("ecs"), server.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": REGION})
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=document)
    response = ecs.run_task(cluster=cluster, taskDefinition=family, count=count)
    assert not response["failures"], response["failures"]
    return [task["taskArn"] for task in response["tasks"]]


def stop_task(server: MotoServer, cluster: str, task_arn: str, reason: str) -> None:
    server.client("ecs").stop_task(cluster=cluster, task=task_arn, reason=reason)
