"""Throwaway server processes for integration and fault tests.

Each real backend (redis-server, postgres, prometheus, moto) runs as a child process on a
random loopback port in a temp dir, so tests can inject faults: stop it, hang it (SIGSTOP),
bring it back on the same port. Never the machine's shared services.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")


class ServerProcess(ABC):
    """A child server process that can be stopped, hung and brought back on the same port.

    Subclasses give `argv()` and `ready()`; `port` is chosen once so a restart keeps the
    address the probes use.
    """

    name = "server"
    start_timeout = 30.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_tcp_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @abstractmethod
    def argv(self) -> Sequence[str]:
        """The command line that runs this server on `self.port` in `self.workdir`."""

    def env(self) -> dict[str, str] | None:
        return None

    def ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            list(self.argv()), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            env=self.env(), start_new_session=True,
        )
        log.close()
        try:
            wait_until(self._ready_or_dead, f"{self.name} on port {self.port}", self.start_timeout)
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")

    def _ready_or_dead(self) -> bool:
        return self.proc is None or self.proc.poll() is not None or self.ready()

    def stop(self) -> None:
        """Stop it for good (SIGTERM, then SIGKILL); the port then refuses connections."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        self._signal(proc, signal.SIGCONT)
        self._signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait(timeout=10)

    def hang(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel does), nothing answers."""
        assert self.proc is not None
        self._signal(self.proc, signal.SIGSTOP)

    def unhang(self) -> None:
        assert self.proc is not None
        self._signal(self.proc, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
