"""Soak: the demo config polled fast for 100,000 poll cycles while its backends flap.

The demo's backends run in a child process (so their memory is not ours): the simulated
Anclora world with its guided incident, Redis (redis-server, or the in-process stand-in when
it is not installed) stopped for 2 s of every 15, the stand-in HTTP service answering 500 for
2 s of every 11 and hanging past the probes' timeout for 1.5 s of every 17, and moto's ECS
when moto is installed. This process runs opstui's Engine (no TUI) on the demo's effective
config with every interval cut to 10-25 ms (scaled up with --probes so the poll rate stays
near the demo's), counts every poll outcome, and prints RSS, asyncio tasks and open file
descriptors after the warm-up and at the end (DESIGN.md section 10: RSS <= 120 MB with 200
probes; growth <= 5 MB over 100,000 poll cycles).

    python bench/soak.py [--cycles 100000] [--probes 200] [--max-seconds 300] [--export]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SEED = 7
REDIS_DOWN_EVERY, REDIS_DOWN_FOR = 15.0, 2.0
HTTP_ERROR_EVERY, HTTP_ERROR_FOR = 11.0, 2.0
HTTP_HANG_EVERY, HTTP_HANG_FOR, HANG = 17.0, 1.5, 5.0
PROBE_TIMEOUT = 0.5
LOW, HIGH = 0.010, 0.025
"""Poll intervals (s) of the demo's 10 probes, spread between these."""
DEMO_PROBES = 10


# --- the backends' side (child process) ---------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FlappingRedis:
    """A Redis on one fixed port that can be stopped and started again: redis-server if
    installed, else the demo's in-process stand-in."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.binary = shutil.which("redis-server")
        self.description = "redis-server" if self.binary else "the in-process Redis stand-in"
        self._process: subprocess.Popen[bytes] | None = None
        self._standin: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.binary is not None:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--maxmemory",
                    "64mb",
                    "--maxmemory-policy",
                    "noeviction",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait_for_port(self.port)
            return
        from opstui.demo.loopthread import LoopThread
        from opstui.demo.redis_standin import RedisStandin

        server = RedisStandin(port=self.port)
        thread = LoopThread("soak-redis")
        thread.start(server.start, server.stop)
        self._standin = thread

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=5)
        standin, self._standin = self._standin, None
        if standin is not None:
            standin.stop()


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def _phase(started: float, every: float, length: float) -> bool:
    """True for the last `length` seconds of every `every` since `started`."""
    return (time.monotonic() - started) % every >= every - length


def serve() -> None:
    """The child: start the backends, print the config and environment as one JSON line,
    flap until SIGTERM or stdin closes, then stop everything."""
    from aiohttp import web

    from opstui.demo.aws import DemoEcs, demo_aws_env, moto_available
    from opstui.demo.launcher import TEMPLATE, effective_config_text
    from opstui.demo.loopthread import LoopThread
    from opstui.demo.runner import demo_runner
    from opstui.demo.server import Scenario, build_app

    workdir = Path(tempfile.mkdtemp(prefix="opstui-soak-"))
    redis = FlappingRedis(workdir)
    redis.start()
    ecs = DemoEcs() if moto_available() else None
    if ecs is not None:
        ecs.start()
    runner = demo_runner(
        SEED, redis_url=redis.url, ecs_tasks=ecs.desired_count if ecs is not None else None
    )
    started = time.monotonic()

    @web.middleware
    async def chaos(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        if _phase(started, HTTP_HANG_EVERY, HTTP_HANG_FOR):
            await asyncio.sleep(HANG)
        if _phase(started, HTTP_ERROR_EVERY, HTTP_ERROR_FOR):
            return web.Response(status=500, text="soak: injected error")
        return await handler(request)

    site: dict[str, Any] = {}

    async def open_http() -> None:
        app = build_app(Scenario(), runner)
        app.middlewares.append(chaos)
        site_runner = web.AppRunner(app, access_log=None)
        await site_runner.setup()
        tcp = web.TCPSite(site_runner, "127.0.0.1", 0)
        await tcp.start()
        site["runner"] = site_runner
        site["port"] = site_runner.addresses[0][1]
        runner.start()

    async def close_http() -> None:
        await runner.stop()
        await site["runner"].cleanup()

    http = LoopThread("soak-http")
    http.start(open_http, close_http)
    env = {
        "OPSTUI_DEMO_URL": f"http://127.0.0.1:{site['port']}",
        "OPSTUI_DEMO_REDIS_URL": redis.url,
    }
    if ecs is not None:
        env["OPSTUI_DEMO_AWS_URL"] = ecs.url
        env.update(demo_aws_env(workdir))
    config = workdir / "demo.yaml"
    config.write_text(effective_config_text(TEMPLATE.read_text("utf-8"), with_ecs=ecs is not None))
    print(
        json.dumps(
            {"config": str(config), "env": env, "redis": redis.description, "ecs": ecs is not None}
        ),
        flush=True,
    )

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def stop_at_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    redis_up = True
    flaps = 0
    try:
        while not stop.wait(0.1):
            down = _phase(started, REDIS_DOWN_EVERY, REDIS_DOWN_FOR)
            if down and redis_up:
                redis.stop()
                flaps += 1
            elif not down and not redis_up:
                redis.start()
            redis_up = not down
    finally:
        http.stop()
        if ecs is not None:
            ecs.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(BrokenPipeError):
            print(json.dumps({"redis_flaps": flaps}), flush=True)


# --- the engine's side (this process) ---------------------------------------------------


def replicate(data: dict[str, Any], probes: int) -> dict[str, Any]:
    """The demo config with `probes` probes (copies of the demo's, renamed) at 10-25 ms,
    scaled by probes/10, and short timeouts so hangs cost little."""
    originals = list(data["probes"])
    scale = max(1.0, probes / DEMO_PROBES)
    out = []
    for i in range(probes):
        probe = dict(originals[i % len(originals)])
        if i >= len(originals):
            probe["id"] = f"{probe['id']}-{i // len(originals)}"
            probe.pop("runbook", None)
        probe["interval"] = round((LOW + (HIGH - LOW) * ((i * 7) % 11) / 10) * scale, 4)
        probe["timeout"] = PROBE_TIMEOUT
        out.append(probe)
    data = {**data, "probes": out, "views": [], "runbooks": []}
    for connection in data["connections"].values():
        connection["timeout"] = PROBE_TIMEOUT
    return data


@dataclass
class Counts:
    ok: int = 0
    errors: int = 0
    timeouts: int = 0
    by_probe: dict[str, int] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.ok + self.errors + self.timeouts


def counted(source: Any, probe_id: str, counts: Counts) -> Any:
    """The source with its poll() counted: readings, errors and the engine's timeouts."""
    from opstui.sources.base import Reading, Source

    class Counted(Source):
        kind = source.kind

        @classmethod
        def build(cls, probe: Any, connection: Any, pool: Any) -> Source:
            raise NotImplementedError("built by the soak")

        async def poll(self) -> Reading:
            try:
                reading = await source.poll()
            except asyncio.CancelledError:
                counts.timeouts += 1
                raise
            except BaseException:
                counts.errors += 1
                raise
            counts.ok += 1
            counts.by_probe[probe_id] = counts.by_probe.get(probe_id, 0) + 1
            assert isinstance(reading, Reading)
            return reading

        def describe(self) -> Any:
            return source.describe()

    return Counted()


def usage() -> tuple[float, int, int]:
    """RSS in MiB, asyncio tasks, open file descriptors (after a full collection)."""
    gc.collect()
    rss_kib = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd"))


async def scrape_forever(registry: Any, scrapes: list[int]) -> None:
    """`opstui export`'s /metrics body, rendered every 50 ms as a busy Prometheus would."""
    from prometheus_client import generate_latest

    while True:
        body = generate_latest(registry)
        scrapes[0] += 1
        scrapes[1] = len(body)
        await asyncio.sleep(0.05)


async def soak(
    config: Any, cycles: int, warmup: int, max_seconds: float, export: bool = False
) -> int:
    from opstui.engine.scheduler import Engine
    from opstui.sources.registry import ClientPool, build_source

    pool = ClientPool()
    counts = Counts()
    sources = {
        probe.id: counted(
            build_source(config.effective_probe(probe), config.connections[probe.connection], pool),
            probe.id,
            counts,
        )
        for probe in config.probes
    }
    engine = Engine(config, sources=sources)
    started = time.monotonic()
    await engine.start()
    scrapes = [0, 0]
    scraper: asyncio.Task[None] | None = None
    if export:
        from opstui.export.server import Exporter

        exporter = Exporter(config, engine=engine)
        scraper = asyncio.create_task(scrape_forever(exporter.registry, scrapes))
    try:
        while True:  # warm-up: start-up, first connections, first flaps
            await asyncio.sleep(0.05)
            if counts.cycles >= warmup or time.monotonic() - started > max_seconds / 2:
                break
        rss0, tasks0, fds0 = usage()
        t0, c0, e0 = time.monotonic(), counts.cycles, counts.errors + counts.timeouts
        print(
            f"after warm-up ({c0:,} cycles): RSS {rss0:.1f} MiB, {tasks0} asyncio tasks, "
            f"{fds0} open fds",
            flush=True,
        )
        mark = (c0 // 10_000 + 1) * 10_000
        timed_out = False
        while counts.cycles < cycles:
            await asyncio.sleep(0.05)
            if counts.cycles >= mark:
                rss, tasks, fds = usage()
                rate = (counts.cycles - c0) / (time.monotonic() - t0)
                print(
                    f"  {counts.cycles:>7,} cycles  {rate:6.0f}/s  errors {counts.errors:,}  "
                    f"timeouts {counts.timeouts:,}  RSS {rss:.1f} MiB  tasks {tasks}  fds {fds}",
                    flush=True,
                )
                mark += 10_000
            if time.monotonic() - started > max_seconds:
                timed_out = True
                break
        elapsed = time.monotonic() - t0
        done = counts.cycles - c0
        rss1, tasks1, fds1 = usage()
    finally:
        if scraper is not None:
            scraper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scraper
        async with asyncio.timeout(15):
            await engine.stop()
            await pool.aclose()
    if export:
        print(f"exporter: {scrapes[0]:,} scrapes rendered, the last {scrapes[1]:,} bytes")
    states: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for snapshot in engine.snapshots():
        states[snapshot.state.name] = states.get(snapshot.state.name, 0) + 1
        if snapshot.error:
            reasons[snapshot.error] = reasons.get(snapshot.error, 0) + 1
    never = sorted(pid for pid in sources if counts.by_probe.get(pid, 0) == 0)
    print(
        f"after {counts.cycles:,} cycles: RSS {rss1:.1f} MiB, {tasks1} asyncio tasks, "
        f"{fds1} open fds"
    )
    print(
        f"growth: RSS {rss1 - rss0:+.1f} MiB, tasks {tasks1 - tasks0:+d}, fds {fds1 - fds0:+d} "
        f"over {done:,} measured cycles"
    )
    print(
        f"rate: {done / elapsed:.0f} cycles/s over {elapsed:.0f} s; errors "
        f"{counts.errors:,} and timeouts {counts.timeouts:,} in all "
        f"({counts.errors + counts.timeouts - e0:,} after warm-up); final states {states}"
    )
    for reason, n in sorted(reasons.items(), key=lambda item: -item[1])[:5]:
        print(f"  last error of {n} probe{'s' if n != 1 else ''}: {reason}")
    if never:
        print(f"probes with no good reading at all: {', '.join(never)}")
    if timed_out:
        print(f"stopped at the {max_seconds:g} s limit before {cycles:,} cycles")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100_000, help="poll cycles in all")
    parser.add_argument(
        "--probes", type=int, default=DEMO_PROBES, help="replicate the demo's probes to this many"
    )
    parser.add_argument("--warmup", type=int, default=5_000, help="cycles before 'before'")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument(
        "--export", action="store_true",
        help="also render `opstui export`'s /metrics every 50 ms (its collector and error "
        "counter under the same flapping)",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return 0

    # Bounded whatever happens: a hang anywhere dumps every thread's stack and exits.
    faulthandler.dump_traceback_later(args.max_seconds + 90, exit=True)
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip():
            print("soak: the backends did not start", file=sys.stderr)
            return 2
        info = json.loads(line)
        os.environ.update(info["env"])
        from opstui.config.loader import ConfigError, load_config

        raw = yaml.safe_load(Path(info["config"]).read_text("utf-8"))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "soak.yaml"
            path.write_text(yaml.safe_dump(replicate(raw, args.probes), sort_keys=False))
            try:
                config = load_config(path)
            except ConfigError as exc:
                print("\n".join(exc.lines()), file=sys.stderr)
                return 2
        print(
            f"backends: stand-in HTTP with errors/hangs, {info['redis']} flapping, "
            f"ECS {'via moto' if info['ecs'] else 'absent (moto not installed)'}; "
            f"{args.probes} probes",
            flush=True,
        )
        code = asyncio.run(soak(config, args.cycles, args.warmup, args.max_seconds, args.export))
    finally:
        try:
            out, _ = child.communicate(input="", timeout=20)  # EOF on stdin: the child stops
        except subprocess.TimeoutExpired:
            child.kill()
            out, _ = child.communicate()
        for tail in (out or "").splitlines():
            with contextlib.suppress(ValueError):
                flaps = json.loads(tail).get("redis_flaps")
                if flaps is not None:
                    print(f"redis was stopped and started {flaps} times")
    return code


if __name__ == "__main__":
    sys.exit(main())
