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


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class PtyProcess:
    """A command in a pseudo-terminal of a given size; counts every byte it writes."""

    def __init__(self, argv: list[str], cols: int, rows: int, env: dict[str, str]) -> None:
        import fcntl
        import pty
        import struct
        import termios

        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.total = 0
        self.text = bytearray()
        os.set_blocking(master, False)

    def pump(self, seconds: float, keep_text: bool = False) -> int:
        """Read output for `seconds`; returns the bytes read in that time."""
        import select

        got = 0
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.master], [], [], min(left, 0.05))
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            got += len(chunk)
            if keep_text:
                self.text.extend(chunk)
        self.total += got
        return got

    def wait_for(self, needle: bytes, timeout: float) -> float | None:
        """Seconds until `needle` appears in the output, or None."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            self.pump(0.02, keep_text=True)
            if needle in self.text:
                return time.monotonic() - start
        return None

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send(b"q")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        os.close(self.master)


def write_health_config(path: str, url: str, probes: int, interval: float) -> None:
    lines = [
        "title: bench",
        f"refresh: {interval}s",
        "connections:",
        f"  svc: {{kind: http, base_url: '{url}', timeout: 2s, max_connections: 100}}",
        "probes:",
    ]
    for i in range(probes):
        lines.append(
            f"  - {{id: svc-{i:03d}, kind: health, connection: svc, path: /health/{i}, unit: ms}}"
        )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
