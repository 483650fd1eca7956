"""Steady-state TUI bench (DESIGN.md section 10): 24 panels with sparklines polling at 1 Hz.

Runs the real `opstui` in a pseudo-terminal of 160x50 (TERM=xterm-256color, so 256 colours)
against a local health server in another process, skips a warm-up, then counts for `--seconds`
the bytes written to the terminal and the CPU the opstui process used.

    python bench/tui_steady.py [--panels 24] [--seconds 30] [--warmup 5] [--truecolor]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import CountingServer, PtyProcess, proc_cpu_seconds, write_health_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--truecolor", action="store_true", help="COLORTERM=truecolor")
    parser.add_argument("--theme", default=None)
    args = parser.parse_args()

    server = CountingServer()
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "steady.yaml")
        write_health_config(config, server.url, args.panels, 1.0)
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
        env["TERM"] = "xterm-256color"
        if args.truecolor:
            env["COLORTERM"] = "truecolor"
        argv = [sys.executable, "-m", "opstui", "--config", config]
        if args.theme:
            argv += ["--theme", args.theme]
        tui = PtyProcess(argv, args.cols, args.rows, env)
        try:
            first = tui.wait_for(b"svc-000", timeout=15)
            tui.pump(args.warmup)
            cpu0, wall0 = proc_cpu_seconds(tui.proc.pid), time.monotonic()
            written = tui.pump(args.seconds)
            wall = time.monotonic() - wall0
            cpu = proc_cpu_seconds(tui.proc.pid) - cpu0
        finally:
            tui.close()
            server.close()
    colours = "truecolor" if args.truecolor else "256 colours"
    print(f"{args.panels} panels at 1 Hz, {args.cols}x{args.rows}, {colours}, "
          f"measured {wall:.1f}s after {args.warmup:g}s warm-up")
    print(f"first frame with a panel title: {first:.2f}s" if first else "first frame: not seen")
    print(f"written to the terminal: {written / wall / 1024:.2f} KiB/s ({written} bytes)")
    print(f"CPU: {100 * cpu / wall:.1f}% of one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
