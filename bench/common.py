"""Shared bench plumbing: a counting health server in its own process, CPU accounting."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

SERVER_CODE = r"""
import asyncio, json, socket, sys
from aiohttp import web

count = 0
BODY = json.dumps({"status": "pass", "checks": {"db": [{"status": "pass", "observedValue": 3,
                   "observedUnit": "ms"}]}})

async def health(request):
    global count
    count += 1
    return web.Response(text=BODY, content_type="application/health+json")

async def stats(request):
    return web.json_response({"count": count})

async def main():
    app = web.Application()
    app.router.add_get("/health/{n}", health)
    app.router.add_get("/__stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class CountingServer:
    """An aiohttp health server in a child process, so its CPU is not counted as ours."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_CODE], stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip():
            raise RuntimeError("bench server did not start")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def count(self) -> int:
        with urllib.request.urlopen(f"{self.url}/__stats", timeout=5) as response:
            return int(json.load(response)["count"])

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=5)


@dataclass
class Usage:
    """CPU seconds (user + system) of this process and wall seconds since `start()`."""

    cpu0: float = 0.0
    wall0: float = 0.0

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.cpu0, self.wall0 = self._cpu(), time.monotonic()

    def percent_of_core(self) -> float:
        wall = time.monotonic() - self.wall0
        return 100.0 * (self._cpu() - self.cpu0) / wall if wall > 0 else 0.0


def rss_mib(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
