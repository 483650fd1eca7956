"""The demo's ECS in a process of its own: `python -m opstui.demo.moto_child FD`.

moto takes over a second of CPU to import its ECS models and seed them; in the demo's own
process that second would be taken from the dashboard's start (one interpreter lock for
both), here it runs on another core. FD is a socket the demo bound and listens on already,
so a client that connects early (the dashboard's first ECS poll) waits in its backlog instead
of being refused. The child seeds the Anclora service in-process (moto's mock, whose state
its server shares), then serves moto's server on FD, prints `ready`, and prints the
service's desiredCount once a second (the world sizes its workers from it). It exits when
its stdin closes (the demo ended, even by SIGKILL) or on SIGTERM; a failure to start is one
`error: ...` line and exit 1.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from typing import Any

from opstui.demo.aws import (
    ACCESS_KEY,
    CALL_TIMEOUT,
    CLUSTER,
    DESIRED,
    REGION,
    SECRET_KEY,
    SERVICE,
)

READ_EVERY = 1.0


def ecs_client(url: str) -> Any:
    """A boto3 ECS client on `url` with the demo's dummy keys and short timeouts."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    return boto3.session.Session().client(
        "ecs",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            connect_timeout=CALL_TIMEOUT, read_timeout=CALL_TIMEOUT, retries={"max_attempts": 1}
        ),
    )


def ecs_in_process() -> Any:
    """A boto3 ECS client for moto's in-process mock (call it while the mock is on)."""
    import boto3

    return boto3.session.Session().client(
        "ecs", region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )


def seed(ecs: Any) -> None:
    """The Anclora cluster, task definition and service, as a fresh account would get them."""
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


def serve(fd: int) -> str:
    """moto's server on the listening socket `fd`, in a daemon thread; its URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # werkzeug logs every request to stderr; nobody reads it.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sock = socket.socket(fileno=fd)
    host, port = sock.getsockname()[:2]
    sock.detach()  # werkzeug makes its own socket object of the same descriptor
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=fd
    )
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return f"http://{host}:{port}"


def _exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(0)  # the parent is gone: nobody is left to read from us


def _own_aws_env() -> None:
    """The demo's dummy account only: no profile, no ~/.aws, no instance metadata."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def main(argv: list[str]) -> int:
    fd = int(argv[1])
    _own_aws_env()
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    try:
        from moto import mock_aws

        mock = mock_aws()
        mock.start(reset=True)
        try:
            seed(ecs_in_process())
        finally:
            mock.stop(remove_data=False)  # the server serves what the mock made
        ecs = ecs_client(serve(fd))
    except Exception as exc:  # one line for the parent, which says it
        print(f"error: {' '.join(str(exc).split()) or type(exc).__name__}", flush=True)
        return 1
    print("ready", flush=True)
    while True:
        try:
            reply = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
            services = reply.get("services") or []
            if services:
                print(int(services[0]["desiredCount"]), flush=True)
        except Exception:  # a failed read: the world keeps its last size
            pass
        time.sleep(READ_EVERY)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
