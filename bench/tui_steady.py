"""Steady-state TUI bench (DESIGN.md section 10): 24 panels with sparklines polling at 1 Hz:
CPU <= a naive Textual dashboard's, bytes to the terminal <= 0.5x its figure.

Runs, one after the other in the same run, each in a pseudo-terminal of 160x50
(TERM=xterm-256color, so 256 colours) against the same local counting health server in
another process:
- the real `opstui` with 24 health probes at 1 s;
- the anchor, bench/naive_dashboard.py: a naive Textual app of 24 panels in a grid (a Static
  title, a textual Sparkline and a Label each), one aiohttp task per panel polling the same
  server at 1 Hz and updating its widgets on every reading.
For each it skips a warm-up, then counts for `--seconds` the bytes written to the terminal,
the CPU the process used (from /proc) and the requests that reached the server. Prints both
and the ratios against the budgets. Exits 1 with one line when something measured did not
happen (no first frame, no bytes, no requests).

    python bench/tui_steady.py [--panels 24] [--seconds 30] [--warmup 5] [--truecolor]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(__file__))

from common import (
    BenchError,
    CountingServer,
    PtyProcess,
    first_frame,
    opstui_argv,
    proc_cpu_seconds,
    run_bench,
    tui_env,
    write_health_config,
)

NAIVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "naive_dashboard.py")
CPU_RATIO_BUDGET = 1.0
BYTES_RATIO_BUDGET = 0.5


@dataclass
class Steady:
    first: float
    wall: float
    written: int
    cpu: float
    requests: int

    @property
    def kib_per_s(self) -> float:
        return self.written / self.wall / 1024

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu / self.wall


def measure(name: str, argv: list[str], server: CountingServer, args: argparse.Namespace,
            env: dict[str, str]) -> Steady:
    tui = PtyProcess(argv, args.cols, args.rows, env)
    try:
        first = first_frame(tui, b"svc-000", timeout=20)
        tui.pump(args.warmup)
        count0 = server.count()
        cpu0, wall0 = proc_cpu_seconds(tui.proc.pid), time.monotonic()
        written = tui.pump(args.seconds)
        wall = time.monotonic() - wall0
        cpu = proc_cpu_seconds(tui.proc.pid) - cpu0
        requests = server.count() - count0
        if tui.proc.poll() is not None:
            raise BenchError(f"{name} exited during the measurement")
    finally:
        tui.close()
    if written == 0:
        raise BenchError(f"{name} wrote nothing to the terminal in {wall:.0f}s")
    if requests == 0:
        raise BenchError(f"{name}: no requests reached the server in {wall:.0f}s")
    return Steady(first, wall, written, cpu, requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--truecolor", action="store_true", help="COLORTERM=truecolor")
    parser.add_argument("--theme", default=None, help="opstui's --theme")
    args = parser.parse_args()

    env = tui_env(args.truecolor)
    server = CountingServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "steady.yaml")
            write_health_config(config, server.url, args.panels, 1.0)
            argv = opstui_argv(config)
            if args.theme:
                argv += ["--theme", args.theme]
            opstui = measure("opstui", argv, server, args, env)
        naive_argv = [sys.executable, NAIVE, "--url", server.url, "--panels", str(args.panels)]
        naive = measure("the naive dashboard", naive_argv, server, args, env)
    finally:
        server.close()

    colours = "truecolor" if args.truecolor else "256 colours"
    print(f"{args.panels} panels at 1 Hz, {args.cols}x{args.rows}, {colours}, each measured "
          f"{args.seconds:g}s after a {args.warmup:g}s warm-up, same server, one after the other")
    print(f"{'':22} {'first frame':>11} {'requests/s':>11} {'KiB/s written':>14} "
          f"{'CPU % core':>11}")
    for name, run in (("opstui", opstui), ("naive Textual (anchor)", naive)):
        print(f"{name:22} {run.first:>10.2f}s {run.requests / run.wall:>11.1f} "
              f"{run.kib_per_s:>14.2f} {run.cpu_percent:>10.1f}%")
    cpu_ratio = opstui.cpu_percent / naive.cpu_percent if naive.cpu_percent else float("inf")
    bytes_ratio = opstui.kib_per_s / naive.kib_per_s
    print(f"CPU: opstui {cpu_ratio:.2f}x naive (budget <= {CPU_RATIO_BUDGET:g}x: "
          f"{'ok' if cpu_ratio <= CPU_RATIO_BUDGET else 'OVER'})")
    print(f"bytes: opstui {bytes_ratio:.2f}x naive (budget <= {BYTES_RATIO_BUDGET:g}x: "
          f"{'ok' if bytes_ratio <= BYTES_RATIO_BUDGET else 'OVER'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_bench(main))
