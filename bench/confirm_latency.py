"""Interaction bench (DESIGN.md section 10): key press to drawn confirm modal, <= 50 ms while
200 probes poll.

Runs the real `opstui` in a pseudo-terminal (160x50 by default) against a local counting health
server in another process: 200 health probes at 1 s plus one runbook whose `S` action is a
mutating HTTP POST (never executed: every repetition is cancelled with Escape). After a
warm-up it opens the runbook (`r`, enter), then N times writes `S` to the pty and measures
until the modal's title ("Confirm:") appears in what opstui writes back, then closes it.
Prints the median and p95 in ms, and the poll rate the server saw meanwhile (so the figure is
taken under load).

    python bench/confirm_latency.py [--probes 200] [--repeat 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

from common import CountingServer, PtyProcess, write_health_config

MARKER = b"Confirm:"
BUDGET_MS = 50.0


def add_runbook(path: str, url: str, audit: str) -> None:
    """Append a runbook with one mutating action to the health config."""
    lines = [
        f"audit_log: '{audit}'",
        "runbooks:",
        "  - id: bench",
        "    title: Bench runbook",
        "    probes: [svc-000]",
        "    actions:",
        "      - {id: scale, key: S, title: Bench scale, kind: http, connection: svc,",
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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--cols", type=int, default=160)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--samples", action="store_true", help="print every sample")
    args = parser.parse_args()

    server = CountingServer()
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "confirm.yaml")
        write_health_config(config, server.url, args.probes, 1.0)
        add_runbook(config, server.url, os.path.join(tmp, "audit.jsonl"))
        env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "NO_COLOR")}
        env["TERM"] = "xterm-256color"
        tui = PtyProcess([sys.executable, "-m", "opstui", "--config", config],
                         args.cols, args.rows, env)
        try:
            if tui.wait_for(b"svc-000", timeout=20) is None:
                print("opstui did not draw its first frame", file=sys.stderr)
                return 1
            tui.pump(args.warmup)
            tui.send(b"r")
            if until_marker(tui, b"Runbooks", 10) is None:
                print("the runbook palette did not open", file=sys.stderr)
                return 1
            tui.pump(0.3)
            tui.send(b"\r")
            if until_marker(tui, b"Bench scale", 10) is None:
                print("the runbook screen did not open", file=sys.stderr)
                return 1
            tui.pump(1.0)
            count0, wall0 = server.count(), time.monotonic()
            for _ in range(args.repeat):
                tui.pump(0.2)  # drain whatever the polls drew meanwhile
                sent = time.monotonic()
                tui.send(b"S")
                seen = until_marker(tui, MARKER, 5)
                if seen is None:
                    print("the confirm modal did not appear within 5 s", file=sys.stderr)
                    return 1
                samples.append((seen - sent) * 1000)
                tui.pump(0.2)  # the preview worker finishes drawing
                tui.send(b"\x1b")  # Escape: Cancel, nothing runs
                tui.pump(0.4)
            polled = (server.count() - count0) / (time.monotonic() - wall0)
        finally:
            tui.close()
            server.close()
    if args.samples:
        print("samples (ms):", " ".join(f"{s:.0f}" for s in samples))
    median = statistics.median(samples)
    p95 = percentile(samples, 0.95)
    verdict = "within" if p95 <= BUDGET_MS else "OVER"
    print(f"key press to drawn confirm modal, {args.repeat} repetitions, {args.cols}x{args.rows},"
          f" {args.probes} probes polling at 1 s ({polled:.0f} polls/s reached the server)")
    print(f"median {median:.1f} ms · p95 {p95:.1f} ms · max {max(samples):.1f} ms "
          f"(budget {BUDGET_MS:g} ms: p95 {verdict} budget)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
