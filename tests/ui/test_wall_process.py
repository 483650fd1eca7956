"""The real `python -m opstui --wall` on a pseudo-terminal: SIGHUP, SIGTERM and the terminal
going away (its master side closed) end it promptly, with 128 + the signal and no traceback."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.http import HealthServer

CONFIG = """
title: Wall process
refresh: 1s
connections:
  svc: {{kind: http, base_url: "{url}", timeout: 2s}}
probes:
  - {{id: api, kind: health, connection: svc, path: /health}}
  - {{id: web, kind: health, connection: svc, path: /health}}
views:
  - {{name: Front, rows: [[api]]}}
  - {{name: Back, rows: [[web]]}}
"""


class Terminal:
    """A child process whose controlling terminal is a pty we hold the master side of."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

        def controlling_tty() -> None:  # runs in the child after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env,
            start_new_session=True, preexec_fn=controlling_tty, close_fds=True,
        )
        os.close(slave)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._holding = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            if self._holding.is_set():  # a terminal that stopped reading (a stuck ssh link)
                time.sleep(0.05)
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    def output(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"never saw {text!r}; output was:\n{self.output()[-2000:]}")

    def hold(self) -> None:
        """Stop reading: once the pty's buffer is full, every write the app makes blocks."""
        self._holding.set()

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.process.send_signal(signal.SIGWINCH)

    def hang_up(self) -> None:
        """Close our side, as a terminal emulator or sshd does when its window goes away."""
        if self.master >= 0:
            os.close(self.master)
            self.master = -1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.hang_up()


@pytest.fixture
def health_server(tmp_path: Path) -> Iterator[HealthServer]:
    server = HealthServer(tmp_path / "server")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def wall(tmp_path: Path, health_server: HealthServer) -> Iterator[Terminal]:
    config = tmp_path / "wall.yaml"
    config.write_text(CONFIG.format(url=health_server.url), encoding="utf-8")
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    argv = [sys.executable, "-m", "opstui", "--wall", "--rotate", "1s", "--config", str(config)]
    terminal = Terminal(argv, env)
    try:
        terminal.wait_for("WALL")
        terminal.wait_for("OK")
        yield terminal
    finally:
        terminal.stop()


def exit_code(terminal: Terminal, timeout: float = 15) -> int:
    try:
        return terminal.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"still running {timeout:g}s after the signal; output:\n{terminal.output()[-2000:]}"
        ) from None


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGHUP, 129), (signal.SIGTERM, 143)])
def test_signal_ends_the_wall_cleanly(wall: Terminal, sig: signal.Signals, code: int) -> None:
    wall.process.send_signal(sig)
    assert exit_code(wall) == code
    time.sleep(0.2)  # let the reader take the last bytes
    output = wall.output()
    assert "Traceback" not in output
    assert "\x1b[?1049l" in output, "the alternate screen was not left: terminal not restored"


def test_terminal_going_away_ends_the_wall(wall: Terminal) -> None:
    wall.hang_up()
    assert exit_code(wall) == 128 + signal.SIGHUP


def test_sigterm_ends_it_even_while_its_writes_to_the_terminal_block(wall: Terminal) -> None:
    """A terminal that stops reading (a stalled ssh link) blocks Textual's writer, then the
    app's own thread; the signal must still end the process (ui/run.py EXIT_DEADLINE)."""
    from opstui.ui.run import EXIT_DEADLINE

    wall.hold()
    for step in range(40):  # full redraws at growing sizes fill the pty's buffer quickly
        wall.resize(30 + step, 100 + 2 * step)
        time.sleep(0.05)
    time.sleep(1.0)
    wall.process.send_signal(signal.SIGTERM)
    assert exit_code(wall, timeout=EXIT_DEADLINE + 8) == 128 + signal.SIGTERM
