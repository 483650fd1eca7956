"""Interaction bench (DESIGN.md section 10): key press to drawn confirm modal with 200 probes
polling: p95 <= 50 ms, and <= 1.5x the same with polling paused (the same-run anchor).

Runs the real `opstui` in a pseudo-terminal (80x24 and 160x50 by default, one after the
other; TERM=xterm-256color) against a local counting health server in another process: 200
health probes at 1 s plus one runbook whose `S` action is a mutating HTTP POST (never
executed: every repetition is cancelled with Escape). For each size, after a warm-up:

1. polling: opens the runbook (`r`, enter), then N times writes `S` to the pty and measures
   until the modal's title ("Confirm:") appears in what opstui writes back, then closes it;
2. paused: back on the dashboard, `p` (the header shows PAUSED; the bench checks that no
   request reaches the server any more), then the same N repetitions.

Prints per size and phase the median, p95 and max in ms and the poll rate the server saw
meanwhile, then p95 polling beside p95 paused, their ratio and the budgets. Exits 1 with one
line when something measured did not happen (no frame, no modal, no requests, no pause).

    python bench/confirm_latency.py [--sizes 80x24,160x50] [--probes 200] [--repeat 30]
                                    [--warmup 5] [--samples]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from common import (
    CountingServer,
    ModalFigures,
    PtyProcess,
    add_runbook,
    first_frame,
    modal_polling_and_paused,
    modal_verdict,
    opstui_argv,
    parse_sizes,
    percentile,
    run_bench,
    tui_env,
    write_health_config,
)

BUDGET_MS = 50.0
RATIO_BUDGET = 1.5


def measure_size(server: CountingServer, config: str, cols: int, rows: int,
                 warmup: float, repeat: int) -> ModalFigures:
    tui = PtyProcess(opstui_argv(config), cols, rows, tui_env())
    try:
        first_frame(tui, b"svc-000", timeout=20)
        tui.pump(warmup)
        # settle: a health poll has a 2 s timeout, so after 2.5 s none is still in flight
        return modal_polling_and_paused(tui, server.count, repeat, settle=2.5)
    finally:
        tui.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("80x24,160x50"),
                        help="terminal sizes, COLSxROWS,... (default 80x24,160x50)")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30, help="repetitions per phase")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--samples", action="store_true", help="print every sample")
    args = parser.parse_args()

    results: list[tuple[str, ModalFigures]] = []
    server = CountingServer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "confirm.yaml")
            write_health_config(config, server.url, args.probes, 1.0)
            add_runbook(config, os.path.join(tmp, "audit.jsonl"))
            for cols, rows in args.sizes:
                figures = measure_size(server, config, cols, rows, args.warmup, args.repeat)
                results.append((f"{cols}x{rows}", figures))
    finally:
        server.close()

    print(f"key press to drawn confirm modal, {args.repeat} repetitions per phase, "
          f"{args.probes} health probes at 1 s, TERM=xterm-256color")
    print(f"{'size':8} {'phase':8} {'polls/s':>8} {'median':>10} {'p95':>10} {'max':>10}")
    for size, figures in results:
        for phase, samples, rate in (("polling", figures.polling, figures.polling_rate),
                                     ("paused", figures.paused, figures.paused_rate)):
            print(f"{size:8} {phase:8} {rate:>8.0f} {statistics.median(samples):>7.1f} ms "
                  f"{percentile(samples, 0.95):>7.1f} ms {max(samples):>7.1f} ms")
            if args.samples:
                print(f"{'':17} samples (ms): " + " ".join(f"{s:.0f}" for s in samples))
    for size, figures in results:
        print(f"{size:8} {modal_verdict(figures, BUDGET_MS, RATIO_BUDGET)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_bench(main))
