"""The demo's Redis: a real `redis-server` child process when installed, else the stand-in.

The child listens on 127.0.0.1 on a free port, persists nothing (`--save "" --appendonly
no`), works in the demo's temp dir and dies with the demo (PR_SET_PDEATHSIG on Linux, and
stop() on every exit path). The stand-in runs in a loop thread of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from opstui.demo.loopthread import LoopThread
from opstui.demo.redis_standin import RedisStandin

START_TIMEOUT = 10.0
MAXMEMORY = "64mb"


class DemoRedis(Protocol):
    """What the launcher needs of either Redis."""

    @property
    def url(self) -> str: ...

    @property
    def description(self) -> str: ...

    def spawn(self) -> None:
        """Start what must start on the caller's thread (a child process: Linux sends the
        death signal when the thread that forked it ends, not the process)."""

    def start(self) -> None:
        """Return once it answers (spawning first if spawn() was not called)."""

    def stop(self) -> None: ...


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the demo dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def end_process(process: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM a demo child; SIGKILL it if it has not gone within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServerProcess:
    """`redis-server` as a child of the demo."""

    def __init__(self, binary: str, workdir: Path, port: int = 0) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        """0: start() picks a free port; else the one a config already names."""
        self._fixed = port != 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def description(self) -> str:
        return f"redis-server on 127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> None:
        """Start on a free port; another process may grab it first, so try a few. A port
        given to the constructor is tried once (the demo's config names it already)."""
        last = ""
        for _ in range(1 if self._fixed else attempts):
            if not self._fixed:
                self.port = _free_port()
            last = self._try_start()
            if not last:
                return
        raise RuntimeError(f"redis-server did not start: {last}")

    def spawn(self) -> None:
        """Start the child on the port given to the constructor; start() waits for it.
        Call it on a thread that lives as long as the child (see _die_with_parent)."""
        if self._process is None:
            self._spawn()

    def _spawn(self) -> None:
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction",
            "--daemonize", "no", "--logfile", str(self.workdir / "redis.log"),
        ]
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.workdir, preexec_fn=_die_with_parent,
        )

    def _try_start(self) -> str:
        if self._process is None:
            self._spawn()
        process = self._process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                return self._log_tail() or f"exited with code {process.returncode}"
            if _ping(self.port):
                return ""
            time.sleep(0.05)
        self.stop()
        return f"no answer within {START_TIMEOUT:g} s"

    def _log_tail(self) -> str:
        try:
            lines = (self.workdir / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            end_process(process)


class StandinRedis:
    """The in-process stand-in, served from a loop thread of its own."""

    @property
    def description(self) -> str:
        return "in-process Redis stand-in (redis-server not installed)"

    def __init__(self, port: int = 0) -> None:
        self.server = RedisStandin(port=port)
        self._thread = LoopThread("opstui-demo-redis")

    @property
    def url(self) -> str:
        return self.server.url

    def spawn(self) -> None:
        """Nothing to spawn: start() runs the stand-in in a loop thread of its own."""

    def start(self) -> None:
        self._thread.start(self.server.start, self.server.stop)

    def stop(self) -> None:
        self._thread.stop()


def planned_redis(workdir: Path, binary: str | None = None, *, find: bool = True) -> DemoRedis:
    """The demo's Redis, not started yet but with its port (and so its URL) chosen:
    `binary` (default: redis-server on PATH) or the stand-in."""
    if binary is None and find:
        binary = shutil.which("redis-server")
    if binary is not None:
        return RedisServerProcess(binary, workdir, port=_free_port())
    return StandinRedis(port=_free_port())


def start_redis(workdir: Path, binary: str | None = None, *, find: bool = True) -> DemoRedis:
    """A running Redis for the demo: `binary` (default: redis-server on PATH) or the stand-in."""
    if binary is None and find:
        binary = shutil.which("redis-server")
    if binary is not None:
        child = RedisServerProcess(binary, workdir)
        child.start()
        return child
    standin = StandinRedis()
    standin.start()
    return standin
