"""SVG snapshots of wall mode (the every-state scenario of conftest.py) at 80x24 and 160x48:
no footer, no focused panel, state words as blocks of colour, WALL flag, the opstui-wall theme.

Deterministic: a ManualClock, polling off, readings injected; the 30 s rotation never fires
during a snapshot. Update with `--snapshot-update`, then look at the SVGs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from opstui.engine.scheduler import Engine
from opstui.ui.app import OpstuiApp
from opstui.ui.wall import WallOptions

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.mark.parametrize("size", SIZES)
def test_wall(snap_compare: Callable[..., bool], scenario: Engine, size: tuple[int, int]) -> None:
    app = OpstuiApp(scenario, poll=False, wall=WallOptions())
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_wall_second_view(
    snap_compare: Callable[..., bool], scenario: Engine, size: tuple[int, int]
) -> None:
    app = OpstuiApp(scenario, poll=False, wall=WallOptions(rotate=60))

    async def rotate(pilot: object) -> None:
        app.rotate_view()

    assert snap_compare(app, run_before=rotate, terminal_size=size)
