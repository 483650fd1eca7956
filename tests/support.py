"""Helpers shared by tests: the server-binary policy and free loopback ports.

A test that needs a server binary (redis-server, tmux, prometheus...) calls `require_binary`:
missing, it skips with the binary's name locally, and fails under OPSTUI_REQUIRE_SERVERS=1
(CI), so a green CI always means the real server ran.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager

import pytest
from aiohttp import web

REQUIRE_SERVERS = os.environ.get("OPSTUI_REQUIRE_SERVERS") == "1"


def require_binary(name: str) -> str:
    """The binary's path; skip (locally) or fail (CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed"
        if REQUIRE_SERVERS:
            pytest.fail(f"{message} (OPSTUI_REQUIRE_SERVERS=1)")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A loopback port nothing listens on (bound then closed): connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


ServeApp = Callable[[web.Application], Awaitable[str]]


class Tick:
    """A monotonic clock a test moves by hand (`tick.now += 2`), for rate fields."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_on_pty(args: list[str], answer: str, timeout: float = 60.0) -> tuple[int, str]:
    """`opstui run ARGS` on a pseudo-terminal (its prompt wants a terminal), answering the
    prompt with `answer`: (exit code, everything the terminal showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "opstui", "run", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(follower)
    screen = b""
    deadline = time.monotonic() + timeout
    answered = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if not answered and b"to " in screen and screen.rstrip().endswith(b":"):
                os.write(leader, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, screen.decode(errors="replace")


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (module fixtures cannot use monkeypatch)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
