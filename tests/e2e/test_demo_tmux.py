"""End to end: the real `opstui demo` in tmux, driven with send-keys, read with capture-pane."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support import require_binary

pytestmark = pytest.mark.e2e


class Tmux:
    def __init__(self, tmux: str, session: str) -> None:
        self.tmux = tmux
        self.session = session

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [self.tmux, *args], capture_output=True, text=True, timeout=10, check=False
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)
        # A key right after Escape would reach the app as alt+key: let Escape stand alone.
        time.sleep(0.3)

    def alive(self) -> bool:
        result = subprocess.run(
            [self.tmux, "has-session", "-t", self.session], capture_output=True, timeout=10,
            check=False,
        )
        return result.returncode == 0

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")


@pytest.fixture(params=[(120, 40), (80, 24)], ids=["120x40", "80x24"])
def demo(request: pytest.FixtureRequest) -> Iterator[Tmux]:
    tmux = require_binary("tmux")
    width, height = request.param
    session = f"opstui-e2e-{uuid.uuid4().hex[:8]}"
    command = f"TERM=xterm-256color {sys.executable} -m opstui demo"
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), command],
        check=True, timeout=10,
    )
    driver = Tmux(tmux, session)
    try:
        yield driver
    finally:
        if driver.alive():
            driver.run("kill-session", "-t", session)


def test_demo_shows_live_panels_and_answers_keys(demo: Tmux) -> None:
    screen = demo.wait_for(lambda s: "● OK" in s, "a panel in OK")
    assert "Traceback" not in screen
    assert "WhatsApp queue" in screen

    demo.keys("?")
    demo.wait_for(lambda s: "timeline" in s.lower() and "refresh" in s.lower(), "the help screen")
    demo.keys("Escape")
    # The next key only once Escape has landed: an Escape still pending when Enter arrives is
    # read as alt+enter (one escape sequence), and the screen never closes.
    demo.wait_for(lambda s: "move focus between panels" not in s, "the help to close")

    demo.keys("e")
    demo.wait_for(lambda s: "Event timeline ·" in s, "the event timeline")
    demo.keys("Escape")
    demo.wait_for(lambda s: "Event timeline ·" not in s, "the timeline to close")

    demo.keys("Enter")
    demo.wait_for(lambda s: "latency" in s.lower(), "the detail screen")
    demo.keys("Escape")
    demo.wait_for(lambda s: "latency" not in s.lower(), "the detail to close")

    demo.keys("p")
    demo.wait_for(lambda s: "PAUSED" in s, "the paused marker")
    demo.keys("p")

    demo.keys("q")
    deadline = time.monotonic() + 10
    while demo.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not demo.alive(), "opstui did not exit on q"
