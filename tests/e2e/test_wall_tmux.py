"""End to end: the real `opstui demo --wall --rotate 3s` in tmux. Views rotate (the header's
`N/M:View` marker changes), runbook and action keys change nothing, and both a SIGHUP and
`tmux kill-session` end it with every child (the demo's redis-server) gone."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_demo_tmux import Tmux
from tests.support import require_binary

pytestmark = pytest.mark.e2e

MARKER = re.compile(r"(\d+)/(\d+):(\S+)")


def children(pid: int) -> dict[int, int]:
    """Every process's parent, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return parents


def descendants(pid: int) -> set[int]:
    parents = children(pid)
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_gone(pids: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if alive(pid)}
        time.sleep(0.2)
    return left


class Wall(Tmux):
    rc_file: Path

    def opstui_pid(self) -> int:
        """The python process in the pane (the pane runs `sh -c '<python ...>; echo $?'`)."""
        shell = int(self.run("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for pid in sorted(descendants(shell)):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"opstui" in cmdline and b"demo" in cmdline:
                    return pid
            time.sleep(0.1)
        raise AssertionError("no opstui process in the pane")


@pytest.fixture
def wall(tmp_path: Path) -> Iterator[Wall]:
    tmux = require_binary("tmux")
    require_binary("redis-server")
    session = f"opstui-wall-{uuid.uuid4().hex[:8]}"
    rc_file = tmp_path / "rc"
    env = (
        f"TERM=xterm-256color HOME={shlex.quote(str(tmp_path))} "
        f"XDG_STATE_HOME={shlex.quote(str(tmp_path / 'state'))}"
    )
    command = (
        f"{env} {shlex.quote(sys.executable)} -m opstui demo --wall --rotate 3s; "
        f"echo $? > {shlex.quote(str(rc_file))}; sleep 30"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", "sh", "-c", command],
        check=True, timeout=10, cwd=os.getcwd(),
    )
    driver = Wall(tmux, session)
    driver.rc_file = rc_file
    try:
        yield driver
    finally:
        if driver.alive():
            driver.run("kill-session", "-t", session)


def marker(screen: str) -> tuple[int, str] | None:
    for line in screen.splitlines()[:4]:
        found = MARKER.search(line)
        if found:
            return int(found.group(1)), found.group(3)
    return None


def test_wall_rotates_refuses_actions_and_dies_with_its_session(wall: Wall) -> None:
    screen = wall.wait_for(lambda s: "WALL ⟳3s" in s and "● OK" in s, "the wall", timeout=40)
    assert "Traceback" not in screen and "[RO]" in screen
    first = marker(screen)
    assert first is not None, screen
    wall.wait_for(lambda s: marker(s) not in (None, first), "the next view", timeout=20)

    pid = wall.opstui_pid()
    family = descendants(pid) | {pid}
    assert len(family) > 1, "the demo should have started its redis-server child"

    for key in ("r", "S", "D", "enter", "x"):
        wall.keys(key)
    screen = wall.wait_for(lambda s: "read-only" in s, "the read-only notice")
    assert "Confirm" not in screen and "filter runbooks" not in screen
    assert "Runbook:" not in screen

    wall.run("kill-session", "-t", wall.session)
    left = wait_gone(family)
    assert not left, f"processes left after kill-session: {sorted(left)}"


def test_sighup_ends_the_wall_with_129_and_no_orphans(wall: Wall) -> None:
    wall.wait_for(lambda s: "WALL ⟳3s" in s and "● OK" in s, "the wall", timeout=40)
    pid = wall.opstui_pid()
    family = descendants(pid) | {pid}
    os.kill(pid, signal.SIGHUP)
    left = wait_gone(family)
    assert not left, f"processes left after SIGHUP: {sorted(left)}"
    deadline = time.monotonic() + 10
    while not wall.rc_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert wall.rc_file.read_text().strip() == "129"
    screen = wall.screen()
    assert "Traceback" not in screen
