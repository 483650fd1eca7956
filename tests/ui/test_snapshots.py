"""SVG snapshots of every screen at 80x24 and 160x48, with polling off, a ManualClock and
fixed readings (tests/ui/conftest.py), stored under the repo's snapshots/ folder.

Update after a deliberate change with `pytest tests/ui/test_snapshots.py --snapshot-update`,
then look at the SVGs: nothing may be clipped at 80x24."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from opstui.engine.scheduler import Engine
from opstui.ui.app import OpstuiApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]

SnapCompare = Callable[..., bool]


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare: SnapCompare, scenario: Engine, size: tuple[int, int]) -> None:
    assert snap_compare(OpstuiApp(scenario, poll=False), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_second_view_read_only_paused(
    snap_compare: SnapCompare, scenario: Engine, size: tuple[int, int]
) -> None:
    app = OpstuiApp(scenario, poll=False, read_only=True)
    assert snap_compare(app, press=["2", "p"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_detail(snap_compare: SnapCompare, scenario: Engine, size: tuple[int, int]) -> None:
    async def open_payments(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, OpstuiApp)
        app.open_detail("payments")
        await pilot.pause()

    app = OpstuiApp(scenario, poll=False)
    assert snap_compare(app, run_before=open_payments, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_timeline(snap_compare: SnapCompare, scenario: Engine, size: tuple[int, int]) -> None:
    assert snap_compare(OpstuiApp(scenario, poll=False), press=["e"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: SnapCompare, scenario: Engine, size: tuple[int, int]) -> None:
    assert snap_compare(
        OpstuiApp(scenario, poll=False), press=["question_mark"], terminal_size=size
    )
