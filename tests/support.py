"""Helpers shared by tests: the server-binary policy and free loopback ports.

A test that needs a server binary (redis-server, tmux, prometheus...) calls `require_binary`:
missing, it skips with the binary's name locally, and fails under OPSTUI_REQUIRE_SERVERS=1
(CI), so a green CI always means the real server ran.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Awaitable, Callable

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
