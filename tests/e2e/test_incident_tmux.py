"""End to end, the guided incident: the real `opstui demo` in tmux. The world (at 5x speed, so
the test takes about a minute) develops a backlog; the suggested runbook is opened from `r`,
its scale action confirmed in the modal, and the queue panel returns to OK."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.test_demo_tmux import Tmux
from tests.support import require_binary

pytestmark = pytest.mark.e2e


@pytest.fixture
def incident() -> Iterator[Tmux]:
    tmux = require_binary("tmux")
    pytest.importorskip("moto", reason="the scale action needs the demo's ECS (moto)")
    session = f"opstui-incident-{uuid.uuid4().hex[:8]}"
    command = f"TERM=xterm-256color OPSTUI_DEMO_SPEED=5 {sys.executable} -m opstui demo"
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True, timeout=10,
    )
    driver = Tmux(tmux, session)
    try:
        yield driver
    finally:
        if driver.alive():
            driver.run("kill-session", "-t", session)


def _queue_panel(screen: str) -> str:
    """The first lines of the queue panel (top left of the Overview)."""
    lines = screen.splitlines()
    start = next((i for i, line in enumerate(lines) if "WhatsApp queue" in line), None)
    return "\n".join(lines[start : start + 3]) if start is not None else ""


def test_backlog_runbook_scale_and_recovery(incident: Tmux) -> None:
    incident.wait_for(lambda s: "● OK" in _queue_panel(s), "a calm queue first", timeout=20)
    incident.wait_for(
        lambda s: "✖ CRIT" in _queue_panel(s), "the queue panel to go CRIT", timeout=120
    )

    incident.keys("r")
    palette = incident.wait_for(lambda s: "Runbooks" in s, "the runbook palette")
    suggested = [line for line in palette.splitlines() if "·" in line and "CRIT" in line]
    assert suggested and "High queue backlog" in suggested[0], palette

    incident.keys("Enter")
    incident.wait_for(
        lambda s: "Waiting jobs" in s and re.search(r"✔ Waiting jobs .*integer", s) is not None,
        "the diagnostics to finish",
    )

    incident.keys("S")
    modal = incident.wait_for(lambda s: "Confirm: Scale up workers" in s, "the confirm modal")
    assert "PRODUCTION" in modal
    assert "aws ecs update-service --cluster anclora-production" in modal
    assert "desired 2 -> 4" in modal

    incident.keys("Tab")  # focus starts on Cancel; Tab moves to Scale
    incident.keys("Enter")
    incident.wait_for(lambda s: "watch ok" in s, "the watch to see the backlog drain", 150)

    incident.keys("Escape")
    incident.wait_for(lambda s: "● OK" in _queue_panel(s), "the queue panel back to OK", 30)
