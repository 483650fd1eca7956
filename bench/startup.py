"""Start-up bench (DESIGN.md section 10): `opstui check`/`validate`, first TUI frame, `opstui demo`.

Every figure is printed beside an anchor measured in the same run (medians of --runs, the runs
interleaved so load on the machine hits both alike):

- `opstui check` and `opstui validate` on the demo config, wall time of the whole command
  (budget 0.8 s for check), beside `python -c pass` and the floor `check` cannot beat: one
  request to the demo's slowest endpoint (its /health/ready answers after 0.36 s, 1.4 s for
  12 s of every 45: a run that hits that spike is slow by design, so the bench waits it out);
- the TUI on the demo config in a 160x50 pty: time to the first frame showing a panel title,
  beside a minimal Textual app (one Static) in a pty of the same size and TERM (budget 1.5x);
  and to the first live reading drawn (`● OK`);
- `opstui demo` in an 80x24 pty, servers and all: time to the first state word on screen
  (● OK, ▲ WARN, ✖ CRIT, ⚠ ERR, ...; budget 2 s), beside the minimal app at 80x24. The word
  seen first is printed too: a red one there would be our start-up order's fault.

    python bench/startup.py [--runs 5] [--skip-demo]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))

from common import PtyProcess

from opstui.demo.launcher import environment_for, start_backends
from opstui.demo.server import Scenario

TERM = "xterm-256color"
MINIMAL_TEXT = "minimal-textual-anchor"
MINIMAL_APP = f"""
from textual.app import App, ComposeResult
from textual.widgets import Static


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Static({MINIMAL_TEXT!r})


Minimal().run()
"""
ANSI = re.compile(rb"\x1b(?:\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
STATE_WORDS = re.compile(
    "(● OK|△ WARN\\?|▲ WARN|✖ CRIT|∅ NO DATA|⚠ ERR|⏱ STALE|⇅ FLAP)".encode()
)


def screen_text(raw: bytes | bytearray) -> bytes:
    """The bytes a pty received without escape sequences (colours, cursor moves)."""
    return ANSI.sub(b"", bytes(raw))


def wait_for_text(tui: PtyProcess, pattern: re.Pattern[bytes], timeout: float
                  ) -> tuple[float, str] | None:
    """Seconds until `pattern` shows in the drawn text (escapes stripped), and the match."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        tui.pump(0.02, keep_text=True)
        found = pattern.search(screen_text(tui.text))
        if found is not None:
            return time.monotonic() - start, found.group(0).decode()
    return None


def timed_command(argv: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    return time.monotonic() - start


def minimal_frame(path: str, cols: int, rows: int, env: dict[str, str]) -> float | None:
    start = time.monotonic()
    app = PtyProcess([sys.executable, path], cols, rows, env)
    app_started = time.monotonic()
    try:
        seen = wait_for_text(app, re.compile(MINIMAL_TEXT.encode()), timeout=15)
    finally:
        app.close()
    return None if seen is None else seen[0] + (app_started - start)


def outside_spike(scenario: Scenario, need: float = 3.0) -> None:
    """Wait until the slow endpoint's spike is at least `need` seconds away."""
    while True:
        phase = scenario.elapsed() % scenario.slow_spike_every
        spike_at = scenario.slow_spike_every - scenario.slow_spike_for
        if phase < spike_at - need:
            return
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-demo", action="store_true", help="no `opstui demo` runs")
    args = parser.parse_args()

    backends = start_backends()
    env = {**environment_for(backends), "TERM": TERM}
    demo_env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTUI_DEMO_")}
    demo_env["TERM"] = TERM
    demo_config = str(backends.config_path)
    assert backends.server is not None
    scenario = backends.server.scenario
    ready_url = f"{backends.server.url}/health/ready"
    results: dict[str, list[float]] = {}
    first_words: list[str] = []

    def add(name: str, value: float | None) -> None:
        if value is not None:
            results.setdefault(name, []).append(value)

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(MINIMAL_APP)
        minimal = handle.name
    opstui = [sys.executable, "-m", "opstui"]
    try:
        for _ in range(args.runs):
            add("python -c pass", timed_command([sys.executable, "-c", "pass"], env))
            outside_spike(scenario)
            start = time.monotonic()
            with urllib.request.urlopen(ready_url, timeout=5) as response:
                response.read()
            add("floor: GET /health/ready", time.monotonic() - start)
            add("check", timed_command([*opstui, "check", "--config", demo_config], env))
            add("validate", timed_command([*opstui, "validate", "--config", demo_config], env))

            add("minimal 160x50", minimal_frame(minimal, 160, 50, env))
            start = time.monotonic()
            tui = PtyProcess([*opstui, "--config", demo_config], 160, 50, env)
            try:
                first = wait_for_text(tui, re.compile(b"WhatsApp queue"), timeout=15)
                if first is not None:
                    add("tui frame", time.monotonic() - start)
                live = wait_for_text(tui, re.compile("● OK".encode()), timeout=15)
                if live is not None:
                    add("tui live", time.monotonic() - start)
            finally:
                tui.close()

            if args.skip_demo:
                continue
            add("minimal 80x24", minimal_frame(minimal, 80, 24, demo_env))
            start = time.monotonic()
            demo = PtyProcess([*opstui, "demo"], 80, 24, demo_env)
            try:
                word = wait_for_text(demo, STATE_WORDS, timeout=20)
                if word is not None:
                    add("demo word", time.monotonic() - start)
                    first_words.append(word[1])
            finally:
                demo.close()
    finally:
        backends.stop()
        os.unlink(minimal)

    def median(name: str) -> float | None:
        values = results.get(name)
        return statistics.median(values) if values else None

    def show(label: str, name: str, anchor: str | None = None, budget: str = "") -> None:
        value = median(name)
        if value is None:
            print(f"{label:44} not seen")
            return
        values = results[name]
        line = f"{label:44} {value:6.3f}s (min {min(values):.3f}, max {max(values):.3f})"
        base = median(anchor) if anchor is not None else None
        if anchor is not None and base is not None:
            line += f"  anchor {anchor} {base:.3f}s, ratio {value / base:.2f}x"
        print(line + (f"  [{budget}]" if budget else ""))

    print(f"{args.runs} runs each, demo config, Python {sys.version.split()[0]}, TERM={TERM}, "
          f"bytecode cache {'off' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'on'}")
    show("anchor: python -c pass", "python -c pass")
    show("anchor: floor, GET /health/ready", "floor: GET /health/ready")
    show("opstui check (whole command, wall)", "check", budget="budget 0.8s")
    show("opstui validate (whole command, wall)", "validate")
    show("anchor: minimal Textual app, 160x50", "minimal 160x50")
    show("TUI first frame with a panel title, 160x50", "tui frame", "minimal 160x50",
         "budget 1.5x")
    show("TUI first live reading (● OK), 160x50", "tui live", "minimal 160x50")
    if not args.skip_demo:
        show("anchor: minimal Textual app, 80x24", "minimal 80x24")
        show("opstui demo: first state word, 80x24", "demo word", "minimal 80x24",
             "budget 2s")
        print(f"{'  first words seen':44} {', '.join(first_words) or '-'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
