"""Poll-engine bench (DESIGN.md section 10): N health probes at 1 s against a local server.

Prints, for the same server in the same run: the running opstui TUI (a child process in a
160x50 pseudo-terminal, measured from /proc), opstui's engine alone in this process (with the
real health source and its HTTP client), and bare gather loops making the same requests
(aiohttp; httpx with its default transport). For each: requests that reached the server out
of those due, missed cycles, and CPU % of one core. The server runs in a child process.

    python bench/poll_engine.py [--probes 200] [--seconds 30] [--interval 1]
    python bench/poll_engine.py --profile mixed   # health, redis, postgres, prometheus

The mixed profile starts redis-server, PostgreSQL and Prometheus (with an exporter) on random
loopback ports and splits the probes evenly over health, queue/redis_info, sql and prometheus
kinds; it prints, per kind, the readings that arrived out of those due and the errors, and the
engine's CPU (warm-up excluded; the CPU figure includes the 3 s warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.dirname(__file__))

from common import (
    CountingServer,
    PtyProcess,
    Usage,
    proc_cpu_seconds,
    run_bare_aiohttp,
    ticking,
    write_health_config,
)


def engine_config(url: str, probes: int, interval: float) -> object:
    from opstui.config.models import Config

    return Config.model_validate(
        {
            "title": "bench",
            "refresh": interval,
            "connections": {
                "svc": {"kind": "http", "base_url": url, "timeout": 2.0, "max_connections": 100}
            },
            "probes": [
                {"id": f"p{i}", "kind": "health", "connection": "svc", "path": f"/health/{i}"}
                for i in range(probes)
            ],
        }
    )


async def run_engine(url: str, probes: int, interval: float, seconds: float) -> int:
    """opstui's engine; returns the number of polls that completed successfully."""
    from opstui.config.models import Config
    from opstui.engine.scheduler import Engine

    config = engine_config(url, probes, interval)
    assert isinstance(config, Config)
    engine = Engine(config)
    await engine.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await engine.stop()
    return sum(1 for s in engine.snapshots() if s.reading is not None)


async def run_bare_httpx(url: str, probes: int, interval: float, seconds: float) -> int:
    import httpx

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(timeout=2.0, limits=limits) as client:

        async def get(i: int) -> None:
            try:
                response = await client.get(f"{url}/health/{i}")
                await response.aread()
            except httpx.HTTPError:
                pass

        async def one_round() -> None:
            await asyncio.gather(*(get(i) for i in range(probes)))

        await ticking(one_round, interval, seconds)
    return 0


def run_tui(
    server: CountingServer, probes: int, interval: float, seconds: float
) -> tuple[int, float]:
    """The real `opstui` in a 160x50 pty, measured after a warm-up of 3 s (start-up and the
    first spread-out round excluded): requests that reached the server in the window, and
    its CPU % of one core."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "poll.yaml")
        write_health_config(config, server.url, probes, interval)
        env = {**os.environ, "TERM": "xterm-256color"}
        tui = PtyProcess([sys.executable, "-m", "opstui", "--config", config], 160, 50, env)
        try:
            tui.wait_for(b"svc-000", timeout=15)
            tui.pump(3.0)
            before = server.count()
            cpu0, wall0 = proc_cpu_seconds(tui.proc.pid), time.monotonic()
            tui.pump(seconds)
            wall = time.monotonic() - wall0
            cpu = 100 * (proc_cpu_seconds(tui.proc.pid) - cpu0) / wall
            return server.count() - before, cpu
        finally:
            tui.close()


PHASES: dict[str, Callable[[str, int, float, float], Awaitable[int]]] = {
    "opstui engine": run_engine,
    "bare aiohttp gather": run_bare_aiohttp,
    "bare httpx gather (default transport)": run_bare_httpx,
}


TUI_PHASE = "opstui TUI (pty, 160x50)"


def main_mixed(probes: int, seconds: float, interval: float) -> int:
    from mixed import kinds_due, mixed_config, mixed_servers, run_mixed, timed

    server = CountingServer()
    try:
        with mixed_servers() as servers:
            config = mixed_config(server.url, servers, probes, interval)
            (readings, errors, total), cpu = timed(run_mixed(config, seconds))
    finally:
        server.close()
    due = kinds_due(config, seconds, interval)
    print(f"mixed profile: {total} probes every {interval:g}s for {seconds:g}s "
          "(real redis-server, PostgreSQL, Prometheus, HTTP; servers in child processes)")
    print(f"{'kind':12} {'readings':>9} {'of due':>8} {'errors':>7}")
    for kind in sorted(due):
        print(f"{kind:12} {readings[kind]:>9} {100 * readings[kind] / due[kind]:>7.1f}% "
              f"{errors[kind]:>7}")
    all_due = sum(due.values())
    print(f"{'all':12} {sum(readings.values()):>9} "
          f"{100 * sum(readings.values()) / all_due:>7.1f}% {sum(errors.values()):>7}")
    print(f"engine CPU: {100 * cpu:.1f}% of one core (this process)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--only", choices=[TUI_PHASE, *PHASES], action="append")
    parser.add_argument("--profile", choices=["health", "mixed"], default="health")
    args = parser.parse_args()
    if args.profile == "mixed":
        return main_mixed(args.probes, args.seconds, args.interval)

    server = CountingServer()
    due = int(args.probes * args.seconds / args.interval)
    print(f"{args.probes} health probes every {args.interval:g}s for {args.seconds:g}s "
          f"against {server.url} (server in a child process); {due} requests due per phase")
    print(f"{'phase':40} {'reached':>9} {'of due':>8} {'missed':>8} {'CPU % core':>11}")
    try:
        if not args.only or TUI_PHASE in args.only:
            reached, cpu = run_tui(server, args.probes, args.interval, args.seconds)
            print(f"{TUI_PHASE:40} {reached:>9} {100 * reached / due:>7.1f}% "
                  f"{max(0, due - reached):>8} {cpu:>10.1f}%")
        for name, phase in PHASES.items():
            if args.only and name not in args.only:
                continue
            before = server.count()
            usage = Usage()
            usage.start()
            asyncio.run(phase(server.url, args.probes, args.interval, args.seconds))
            cpu = usage.percent_of_core()
            time.sleep(0.5)
            reached = server.count() - before
            missed = max(0, due - reached)
            print(f"{name:40} {reached:>9} {100 * reached / due:>7.1f}% {missed:>8} {cpu:>10.1f}%")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
