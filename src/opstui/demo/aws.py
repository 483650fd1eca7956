"""The demo's ECS: moto's AWS server (the `demo` extra) in a child process, seeded like Anclora's.

Cluster anclora-production runs service anclora-whatsapp (desiredCount 2). The world reads
the service's desiredCount every second through `desired_count()`, so scaling the service
(a runbook's `update-service --desired-count`) really changes how fast the backlog drains.
Credentials are dummies given to each client explicitly; nothing reads ~/.aws.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from opstui.demo.redis_backend import _die_with_parent, end_process

REGION = "eu-west-1"
CLUSTER = "anclora-production"
SERVICE = "anclora-whatsapp"
DESIRED = 2
ACCESS_KEY = "demo"
SECRET_KEY = "demo-secret"
CALL_TIMEOUT = 3.0
START_TIMEOUT = 20.0


def moto_available() -> bool:
    """Whether the `demo` extra (moto's server) is installed. Found, not imported: importing
    moto takes a fifth of a second, and its server starts in a child process anyway."""
    try:
        spec = importlib.util.find_spec("moto")
        if spec is None or not spec.submodule_search_locations:
            return False
        server = [Path(p) / "server.py" for p in spec.submodule_search_locations]
        return any(p.is_file() for p in server) and importlib.util.find_spec("flask") is not None
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
    """moto's ThreadedMotoServer on 127.0.0.1, seeded with the service, in a child process
    (demo/moto_child.py) so that its second of start-up runs on another core."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # from now on a client waits for the child instead of being refused
        self._sock: socket.socket | None = sock
        self.port: int = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._error = ""
        self._desired: int | None = None

    @property
    def description(self) -> str:
        return f"ECS (moto) on {self.url.removeprefix('http://')}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """spawn() and wait_ready(): return once the service is seeded."""
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the child, handing it the listening socket; it seeds and serves on its own
        from here. Call it on a thread that lives as long as the child (_die_with_parent)."""
        sock, self._sock = self._sock, None
        if sock is None:
            raise RuntimeError("moto's socket is closed (stopped before it started)")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "opstui.demo.moto_child", str(sock.fileno())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, preexec_fn=_die_with_parent, pass_fds=(sock.fileno(),),
            )
        finally:
            sock.close()  # the child has its own copy
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name="opstui-demo-ecs", daemon=True
        )
        self._reader.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the child has seeded the service; RuntimeError if it failed or did not
        answer within `timeout` (the child is stopped then)."""
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"moto did not start within {timeout:g} s")
        if self._error:
            self.stop()
            raise RuntimeError(f"moto could not start: {self._error}")

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            word = line.strip()
            if word == "ready":
                self._ready.set()
            elif word.startswith("error: "):
                self._error = word.removeprefix("error: ")
                self._ready.set()
            elif word.isdigit():
                self._desired = int(word)
        if not self._ready.is_set():
            self._error = f"exited with code {process.wait()}"
            self._ready.set()

    def _client(self) -> Any:
        """A boto3 ECS client on the demo's moto (tests change the service with it)."""
        from opstui.demo.moto_child import ecs_client

        return ecs_client(self.url)

    def desired_count(self) -> int | None:
        """The service's desiredCount as the child last read it (None before its first read
        or once it stopped)."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._desired

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        process, self._process = self._process, None
        if process is None:
            return
        end_process(process)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(timeout=5)

