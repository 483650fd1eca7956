"""Start-up bench (DESIGN.md section 10): `opstui check` on the demo config, first TUI frame.

Starts the demo stand-in service, then times (median of --runs):
- `opstui check` on the demo config, wall time of the whole command (budget 0.8 s);
- the TUI in a 160x50 pty: time to the first frame showing a panel title (budget 1.0 s), and
  to the first live reading drawn (`● OK`; the demo's acceptance says within 2 s).

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import PtyProcess

from opstui.demo.launcher import environment_for, start_backends


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    backends = start_backends()
    env = {**environment_for(backends), "TERM": "xterm-256color"}
    demo_config = str(backends.config_path)
    check_times, frame_times, live_times = [], [], []
    try:
        for _ in range(args.runs):
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "opstui", "check", "--config", demo_config],
                env=env, capture_output=True, timeout=30, check=False,
            )
            check_times.append(time.monotonic() - start)

            start = time.monotonic()
            tui = PtyProcess(
                [sys.executable, "-m", "opstui", "--config", demo_config], 160, 50, env
            )
            try:
                first = tui.wait_for(b"WhatsApp queue", timeout=15)
                live = tui.wait_for("● OK".encode(), timeout=15)
            finally:
                tui.close()
            if first is not None:
                frame_times.append(first)
            if live is not None and first is not None:
                live_times.append(first + live)
    finally:
        backends.stop()

    def show(name: str, values: list[float], budget: float) -> None:
        if not values:
            print(f"{name:44} not seen")
            return
        median = statistics.median(values)
        print(f"{name:44} median {median:.2f}s  (min {min(values):.2f}s, "
              f"max {max(values):.2f}s; budget {budget:g}s)")

    print(f"{args.runs} runs each, demo config, Python {sys.version.split()[0]}")
    show("opstui check (whole command, wall)", check_times, 0.8)
    show("TUI first frame with a panel title", frame_times, 1.0)
    show("TUI first live reading drawn (● OK)", live_times, 2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
