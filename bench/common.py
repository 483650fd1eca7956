"""Shared bench plumbing: a counting health server in its own process, CPU and memory of a
process, the real TUI in a pseudo-terminal, the confirm-modal latency machinery, and the bare
aiohttp loop used as an anchor."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

TERM = "xterm-256color"
CONFIRM_MARKER = b"Confirm:"
"""The confirm modal's title: it is drawn, the modal is up."""
PAUSED_MARKER = b"PAUSED"
"""What the header shows once `p` paused polling."""


class BenchError(Exception):
    """What a bench measures did not happen: the run is void (one line, non-zero exit)."""


def run_bench(main: Callable[[], int]) -> int:
    """Run `main`; a BenchError becomes one line on stderr and exit status 1."""
    try:
        return main()
    except BenchError as exc:
        name = os.path.basename(sys.argv[0])
        print(f"{name}: FAILED: {exc}", file=sys.stderr)
        return 1

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


def rss_mib(pid: int | None = None, field: str = "VmRSS") -> float:
    """A memory figure of /proc/<pid>/status in MiB: VmRSS (now) or VmHWM (peak RSS)."""
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(f"{field}:"):
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


def tui_env(truecolor: bool = False) -> dict[str, str]:
    """This environment with TERM=xterm-256color (256 colours) unless `truecolor`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
    env["TERM"] = TERM
    if truecolor:
        env["COLORTERM"] = "truecolor"
    return env


def opstui_argv(config: str) -> list[str]:
    return [sys.executable, "-m", "opstui", "--config", config]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """"80x24,160x50" -> [(80, 24), (160, 50)] (columns, rows)."""
    sizes = []
    for part in text.split(","):
        cols, _, rows = part.strip().lower().partition("x")
        sizes.append((int(cols), int(rows)))
    return sizes


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


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


# --- the confirm modal: key press to drawn modal, in the real TUI --------------------------


def add_runbook(path: str, audit: str, probe: str = "svc-000", connection: str = "svc") -> None:
    """Append a runbook with one mutating HTTP POST action on key S to a config file (its
    top level). Never executed: the benches cancel every confirm with Escape."""
    lines = [
        f"audit_log: '{audit}'",
        "runbooks:",
        "  - id: bench",
        "    title: Bench runbook",
        f"    probes: [{probe}]",
        "    actions:",
        f"      - {{id: scale, key: S, title: Bench scale, kind: http, connection: {connection},",
        "         method: POST, path: /scale, json: {count: 8}, verb: Scale}",
    ]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def until_marker(tui: PtyProcess, needle: bytes, timeout: float) -> float | None:
    """Monotonic time at which `needle` first shows in the output read from now, or None.

    Reads as soon as bytes arrive (no fixed polling step), so the figure has sub-ms
    resolution; the needle may straddle two reads, hence the small overlap kept.
    """
    deadline = time.monotonic() + timeout
    tail = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([tui.master], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(tui.master, 65536)
        except OSError:
            return None
        seen = time.monotonic()
        tui.total += len(chunk)
        if needle in tail + chunk:
            return seen
        tail = (tail + chunk)[-len(needle) :]


def expect(tui: PtyProcess, needle: bytes, timeout: float, what: str) -> float:
    """until_marker, or BenchError(`what`) when the needle does not show."""
    seen = until_marker(tui, needle, timeout)
    if seen is None:
        raise BenchError(f"{what} ({needle.decode(errors='replace')!r} not drawn "
                         f"within {timeout:g}s)")
    return seen


def first_frame(tui: PtyProcess, needle: bytes, timeout: float = 30.0) -> float:
    """Seconds from now to a frame showing `needle` (a probe title); BenchError if none."""
    seen = tui.wait_for(needle, timeout=timeout)
    if seen is None:
        code = tui.proc.poll()
        raise BenchError("no first frame: " + (f"the TUI exited with status {code}"
                         if code is not None else f"{needle.decode()!r} not drawn in {timeout:g}s"))
    return seen


def open_runbook(tui: PtyProcess) -> None:
    """From the dashboard: `r` opens the runbook palette, enter the (only) runbook."""
    tui.send(b"r")
    expect(tui, b"Runbooks", 10, "the runbook palette did not open on r")
    tui.pump(0.3)
    tui.send(b"\r")
    expect(tui, b"Bench scale", 10, "the runbook screen did not open on enter")
    tui.pump(1.0)


def close_runbook(tui: PtyProcess) -> None:
    """Escape from the runbook screen back to the dashboard."""
    tui.send(b"\x1b")
    tui.pump(1.0)


CONFIRM_TIMEOUT = 20.0
"""A modal later than this (400x the budget) counts as not drawn: the run fails."""


def confirm_samples(tui: PtyProcess, repeat: int) -> list[float]:
    """On the runbook screen: `repeat` times S (the mutating action) until the confirm modal
    is drawn, in ms; each modal is cancelled with Escape, so nothing runs."""
    samples: list[float] = []
    for _ in range(repeat):
        tui.pump(0.2)  # drain whatever the polls drew meanwhile
        sent = time.monotonic()
        tui.send(b"S")
        seen = expect(tui, CONFIRM_MARKER, CONFIRM_TIMEOUT,
                      "the confirm modal did not appear on S")
        samples.append((seen - sent) * 1000)
        tui.pump(0.2)  # the preview worker finishes drawing
        tui.send(b"\x1b")  # Escape: Cancel, nothing runs
        tui.pump(0.4)
    return samples


def pause_polling(tui: PtyProcess, count: Callable[[], int], settle: float,
                  watch: float = 2.0) -> None:
    """On the dashboard: `p`, until the header shows PAUSED; then, after `settle` seconds
    for the polls in flight to land, checks that `count` (requests at a server) stands
    still for `watch` seconds. BenchError if either does not happen."""
    tui.send(b"p")
    expect(tui, PAUSED_MARKER, 5, "the header did not show PAUSED after p")
    tui.pump(settle)
    before = count()
    tui.pump(watch)
    moved = count() - before
    if moved:
        raise BenchError(f"polling did not pause on p: {moved} requests in {watch:g}s after")


@dataclass
class ModalFigures:
    """Confirm-modal latency samples (ms) with polling on and paused, and the poll rate the
    server saw during each."""

    polling: list[float]
    paused: list[float]
    polling_rate: float
    paused_rate: float


def modal_polling_and_paused(tui: PtyProcess, count: Callable[[], int], repeat: int,
                             settle: float) -> ModalFigures:
    """From the dashboard: the confirm latency while polling, then (back on the dashboard,
    `p`) the same paused. Fails if no requests reached the server while polling."""

    def phase() -> tuple[list[float], float]:
        open_runbook(tui)
        count0, wall0 = count(), time.monotonic()
        samples = confirm_samples(tui, repeat)
        rate = (count() - count0) / (time.monotonic() - wall0)
        close_runbook(tui)
        return samples, rate

    polling, polling_rate = phase()
    if polling_rate <= 0:
        raise BenchError("no requests reached the server while measuring with polling on")
    pause_polling(tui, count, settle)
    paused, paused_rate = phase()
    return ModalFigures(polling, paused, polling_rate, paused_rate)


def modal_verdict(figures: ModalFigures, budget_ms: float, ratio_budget: float) -> str:
    """One line: p95 polling beside p95 paused, the ratio, and both budgets."""
    p95, anchor = percentile(figures.polling, 0.95), percentile(figures.paused, 0.95)
    ratio = p95 / anchor if anchor > 0 else float("inf")
    return (f"p95 polling {p95:.1f} ms vs paused {anchor:.1f} ms: {ratio:.2f}x "
            f"(budget p95 <= {budget_ms:g} ms: {'ok' if p95 <= budget_ms else 'OVER'}; "
            f"<= {ratio_budget:g}x paused: {'ok' if ratio <= ratio_budget else 'OVER'})")


# --- the bare aiohttp anchor -------------------------------------------------------------


async def ticking(
    one_round: Callable[[], Awaitable[None]], interval: float, seconds: float
) -> None:
    """Start a round every `interval` (fixed rate), skipping none; rounds may overlap."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: set[asyncio.Task[None]] = set()
    n = 0
    while loop.time() - start < seconds:
        task = asyncio.create_task(one_round())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
    if tasks:
        await asyncio.wait(tasks, timeout=5)


async def run_bare_aiohttp(url: str, probes: int, interval: float, seconds: float) -> int:
    """A bare aiohttp gather loop: GET /health/0..probes-1 every `interval` for `seconds`."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=2)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def get(i: int) -> None:
            try:
                async with session.get(f"{url}/health/{i}") as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                pass

        async def one_round() -> None:
            await asyncio.gather(*(get(i) for i in range(probes)))

        await ticking(one_round, interval, seconds)
    return 0
