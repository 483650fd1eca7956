"""Fan-out bench: V viewers of one config, polling directly versus reading via Prometheus.

Issue 6's acceptance figure. One counting health server (a child process) and a config of N
health probes at 1 s against it (/health/0, /health/1, ...). Two phases, each measured over
the same window after every process is up and polling (plus a 3 s settle):

- direct: V `opstui --config F` viewers, each in its own 160x50 pty; every viewer polls
  the server itself, so about V x N requests a second reach it.
- via prometheus: one `opstui export`, Debian's `prometheus` scraping it every 1 s, and V
  `opstui --config F --via-prometheus URL` viewers; only the exporter polls (about N a second)
  and the viewers query Prometheus.

Prints the requests that reached the health server in each phase and their ratio, each
process's CPU (% of one core, psutil cpu_times over the window), and the API requests that
reached Prometheus (its own prometheus_http_requests_total, before and after the window).

    python bench/fanout.py [--viewers 5] [--probes 10] [--seconds 30] [--phase direct|via]

Exits 2 with one line when `prometheus` is not installed (apt-get install prometheus).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psutil

sys.path.insert(0, os.path.dirname(__file__))

from common import CountingServer, PtyProcess, write_health_config

COLS, ROWS = 160, 50
INTERVAL = 1.0
SETTLE = 3.0
"""Seconds between "everyone is up and polling" and the start of the window."""
START_TIMEOUT = 60.0


class BenchError(Exception):
    """A one-line reason the bench could not measure (a process did not come up)."""


def wait_until(what: str, predicate: Callable[[], bool], timeout: float,
               pump: Callable[[float], None] | None = None) -> None:
    """Poll `predicate` (pumping viewer output meanwhile) until true; BenchError after timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
        if pump is not None:
            pump(0.2)
        else:
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it has gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class Viewers:
    """V opstui processes, each in its own pty; their output is drained so none blocks."""

    def __init__(self, argv: list[str], count: int, env: dict[str, str]) -> None:
        self.ptys: list[PtyProcess] = []
        try:
            for _ in range(count):
                self.ptys.append(PtyProcess(argv, COLS, ROWS, env))
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.ptys]

    def pump(self, seconds: float, keep_text: bool = False) -> None:
        """Read every viewer's output for `seconds` (a full pty would stall its writer)."""
        deadline = time.monotonic() + seconds
        by_fd = {p.master: p for p in self.ptys if p.master >= 0}
        while by_fd:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select(list(by_fd), [], [], min(left, 0.05))
            for fd in ready:
                viewer = by_fd[fd]
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    del by_fd[fd]
                    continue
                viewer.total += len(chunk)
                if keep_text:
                    viewer.text.extend(chunk)

    def wait_drawn(self, needle: bytes, timeout: float) -> None:
        """Until every viewer has drawn `needle`; BenchError naming a viewer that exited."""

        def drawn() -> bool:
            for i, viewer in enumerate(self.ptys):
                if viewer.proc.poll() is not None:
                    tail = viewer.text[-400:].decode("utf-8", "replace")
                    tail = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", tail).strip()
                    raise BenchError(f"viewer {i} exited with {viewer.proc.returncode}: {tail}")
            return all(needle in v.text for v in self.ptys)

        wait_until(f"{len(self.ptys)} viewers to draw their panels", drawn, timeout,
                   lambda s: self.pump(s, keep_text=True))
        for viewer in self.ptys:
            viewer.text.clear()

    def close(self) -> None:
        """q to all at once, then wait; SIGKILL any that did not go within 5 s."""
        for viewer in self.ptys:
            if viewer.proc.poll() is None:
                with contextlib.suppress(OSError):
                    viewer.send(b"q")
        deadline = time.monotonic() + 5
        for viewer in self.ptys:
            try:
                viewer.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(viewer.proc.pid, signal.SIGKILL)
                viewer.proc.wait(timeout=5)
            if viewer.master >= 0:
                with contextlib.suppress(OSError):
                    os.close(viewer.master)
                viewer.master = -1


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM its session, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def exporter(config: Path, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`opstui export` on a free port; yields the process and its port once it announced it."""
    log = workdir / "exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opstui", "export", "--config", str(config),
             "--listen", "127.0.0.1:0"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        found: list[int] = []

        def announced() -> bool:
            if proc.poll() is not None:
                raise BenchError(f"opstui export exited: {log.read_text().strip()[-300:]}")
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/metrics", log.read_text())
            if match:
                found.append(int(match.group(1)))
            return bool(found)

        wait_until("opstui export to listen", announced, START_TIMEOUT)
        yield proc, found[0]
    finally:
        stop_process(proc)


@dataclass
class Prometheus:
    """Debian's prometheus scraping the exporter every second (as tests/servers/prometheus.py)."""

    binary: str
    workdir: Path
    target_port: int
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: opstui\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.target_port}']}}]\n"
        )
        with open(self.workdir / "prometheus.log", "wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True,
            )
        wait_until("prometheus to be ready", self._ready, START_TIMEOUT)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            log = (self.workdir / "prometheus.log").read_text().strip()[-300:]
            raise BenchError(f"prometheus exited: {log}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def query(self, promql: str) -> list[dict[str, object]]:
        """An instant query's result vector (for waiting only: never inside the window)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                result: list[dict[str, object]] = json.load(response)["data"]["result"]
                return result
        except (OSError, ValueError, KeyError):
            return []

    def requests_by_handler(self) -> dict[str, float]:
        """prometheus_http_requests_total summed over codes, from its own /metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        counts: dict[str, float] = {}
        for line in text.splitlines():
            if not line.startswith("prometheus_http_requests_total{"):
                continue
            match = re.search(r'handler="([^"]*)"', line)
            if match:
                handler = match.group(1)
                counts[handler] = counts.get(handler, 0.0) + float(line.rsplit(" ", 1)[1])
        return counts

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def api_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Requests per /api/ handler between two readings (handlers with none left out)."""
    delta = {h: int(after[h] - before.get(h, 0.0)) for h in after if h.startswith("/api/")}
    return {h: n for h, n in sorted(delta.items()) if n > 0}


@dataclass
class Result:
    """One phase's figures over its window."""

    name: str
    seconds: float = 0.0
    health_requests: int = 0
    viewer_cpu: list[float] = field(default_factory=list)
    others_cpu: dict[str, float] = field(default_factory=dict)
    api_requests: dict[str, int] = field(default_factory=dict)


def measure(server: CountingServer, pids: dict[str, int], seconds: float,
            pump: Callable[[float], None]) -> tuple[int, dict[str, float], float]:
    """Health requests and CPU % of one core per named pid over a window of `seconds`."""
    before = server.count()
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    wall0 = time.monotonic()
    pump(seconds)
    wall = time.monotonic() - wall0
    reached = server.count() - before
    cpu = {name: 100 * (cpu_seconds(pid) - cpu0[name]) / wall for name, pid in pids.items()}
    return reached, cpu, wall


def wait_polling(server: CountingServer, per_second: float, what: str,
                 pump: Callable[[float], None]) -> None:
    """Until the health server sees at least 80 % of `per_second` requests over 2 s."""

    def polling() -> bool:
        before = server.count()
        pump(2.0)
        return server.count() - before >= 0.8 * per_second * 2

    wait_until(what, polling, START_TIMEOUT)


def viewer_env(home: Path) -> dict[str, str]:
    """A terminal env; state (history, audit) under the temp dir, not the user's."""
    return {**os.environ, "TERM": "xterm-256color", "XDG_STATE_HOME": str(home / "state"),
            "XDG_CACHE_HOME": str(home / "cache")}


def run_direct(server: CountingServer, config: Path, tmp: Path, viewers: int, probes: int,
               seconds: float) -> Result:
    group = Viewers([sys.executable, "-m", "opstui", "--config", str(config)], viewers,
                    viewer_env(tmp))
    try:
        group.wait_drawn(b"svc-000", START_TIMEOUT)
        wait_polling(server, viewers * probes / INTERVAL,
                     f"{viewers} direct viewers to poll the health server", group.pump)
        group.pump(SETTLE)
        pids = {f"viewer {i}": pid for i, pid in enumerate(group.pids)}
        reached, cpu, wall = measure(server, pids, seconds, group.pump)
    finally:
        group.close()
    return Result("direct", wall, reached, [cpu[name] for name in pids])


def run_via(server: CountingServer, config: Path, tmp: Path, binary: str, viewers: int,
            probes: int, seconds: float) -> Result:
    with exporter(config, tmp) as (export_proc, export_port):
        prom = Prometheus(binary, tmp, export_port)
        try:
            prom.start()
            wait_until(
                f"prometheus to hold opstui_probe_state for {probes} probes",
                lambda: _probe_count(prom) >= probes, START_TIMEOUT,
            )
            group = Viewers(
                [sys.executable, "-m", "opstui", "--config", str(config),
                 "--via-prometheus", prom.url],
                viewers, viewer_env(tmp),
            )
            try:
                group.wait_drawn(b"svc-000", START_TIMEOUT)
                wait_viewers_querying(prom, viewers, group.pump)
                group.pump(SETTLE)
                pids = {f"viewer {i}": pid for i, pid in enumerate(group.pids)}
                pids["exporter"] = export_proc.pid
                assert prom.proc is not None
                pids["prometheus"] = prom.proc.pid
                api0 = prom.requests_by_handler()
                reached, cpu, wall = measure(server, pids, seconds, group.pump)
                api = api_delta(api0, prom.requests_by_handler())
            finally:
                group.close()
        finally:
            prom.close()
    others = {name: cpu[name] for name in ("exporter", "prometheus")}
    viewer_cpu = [cpu[name] for name in pids if name.startswith("viewer")]
    return Result("via prometheus", wall, reached, viewer_cpu, others, api)


def _probe_count(prom: Prometheus) -> int:
    result = prom.query("count(count by (probe) (opstui_probe_state))")
    if not result:
        return 0
    value = result[0].get("value")
    return int(float(value[1])) if isinstance(value, list) else 0


def wait_viewers_querying(prom: Prometheus, viewers: int, pump: Callable[[float], None]) -> None:
    """Until the viewers' queries reach Prometheus: over a quiet 3 s (no query of ours), at
    least one API request per viewer per refresh interval."""

    def querying() -> bool:
        before = prom.requests_by_handler()
        pump(3.0)
        delta = api_delta(before, prom.requests_by_handler())
        return sum(delta.values()) >= viewers * 3 / INTERVAL * 0.8

    wait_until(f"{viewers} viewers to query prometheus", querying, START_TIMEOUT)


def print_results(results: list[Result], viewers: int, probes: int) -> None:
    def cpu_list(values: list[float]) -> str:
        return " ".join(f"{v:.1f}" for v in values)

    print(f"{'phase':16} {'window':>7} {'health reqs':>12} {'per s':>7} "
          f"{'viewer CPU % core (each)':>32} {'sum':>6}")
    for r in results:
        rate = r.health_requests / r.seconds if r.seconds else 0.0
        print(f"{r.name:16} {r.seconds:>6.1f}s {r.health_requests:>12} {rate:>7.1f} "
              f"{cpu_list(r.viewer_cpu):>32} {sum(r.viewer_cpu):>6.1f}")
    for r in results:
        for name, cpu in r.others_cpu.items():
            print(f"{r.name}: {name} CPU {cpu:.1f}% of one core")
        if r.others_cpu:
            total = sum(r.viewer_cpu) + sum(r.others_cpu.values())
            print(f"{r.name}: all processes {total:.1f}% of one core")
            queries = sum(r.api_requests.values())
            rate = queries / r.seconds if r.seconds else 0.0
            detail = ", ".join(f"{h} {n}" for h, n in r.api_requests.items()) or "none"
            print(f"{r.name}: API requests that reached prometheus: {queries} "
                  f"({rate:.1f}/s; {detail})")
            expected = probes * r.seconds / INTERVAL
            if r.health_requests > 1.5 * expected:
                print(f"{r.name}: NOTE the health server saw {r.health_requests / expected:.1f}x "
                      "one poller's requests: the viewers polled directly (is --via-prometheus "
                      "implemented in this build?)")
    by_name = {r.name: r for r in results}
    direct, via = by_name.get("direct"), by_name.get("via prometheus")
    if direct and via and via.health_requests:
        ratio = (direct.health_requests / direct.seconds) / (via.health_requests / via.seconds)
        print(f"health requests per second, direct / via prometheus: {ratio:.2f}x "
              f"(expected about {viewers}x)")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=5)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--phase", choices=["direct", "via"], action="append",
                        help="run only this phase (repeatable; default both)")
    args = parser.parse_args()
    phases = args.phase or ["direct", "via"]
    binary = shutil.which("prometheus")
    if binary is None and "via" in phases:
        print("fanout: `prometheus` not found on PATH (apt-get install prometheus)",
              file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: it may arrive ignored
        signal.signal(sig, _raise_interrupt)

    results: list[Result] = []
    server = CountingServer()
    try:
        with tempfile.TemporaryDirectory(prefix="opstui-fanout-") as tmp_name:
            tmp = Path(tmp_name)
            config = tmp / "fanout.yaml"
            write_health_config(str(config), server.url, args.probes, INTERVAL)
            print(f"{args.viewers} viewers, {args.probes} health probes every {INTERVAL:g}s, "
                  f"{args.seconds:g}s window after all are up and polling (+{SETTLE:g}s settle); "
                  f"viewers in {COLS}x{ROWS} ptys; {os.cpu_count()} CPUs; "
                  f"health server {server.url}", flush=True)
            if "direct" in phases:
                results.append(run_direct(server, config, tmp, args.viewers, args.probes,
                                          args.seconds))
            if "via" in phases:
                assert binary is not None
                results.append(run_via(server, config, tmp, binary, args.viewers, args.probes,
                                       args.seconds))
    except BenchError as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fanout: interrupted", file=sys.stderr)
        return 130
    finally:
        server.close()
    print_results(results, args.viewers, args.probes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
