"""run_tui and the app's failure path: one line on the terminal, the details in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.ui import run as run_module
from opstui.ui.app import OpstuiApp
from opstui.ui.run import EXIT_FAILED, EXIT_USAGE, run_tui
from tests.ui.conftest import scenario_config


def test_unknown_theme_is_one_line_listing_the_known_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_tui(scenario_config(), theme="neon", read_only=False)
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown theme 'neon'" in err and "opstui-dark" in err


def test_a_failure_to_start_is_one_line_and_a_logged_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    def broken_run(self: OpstuiApp) -> None:
        raise OSError("not a terminal")

    monkeypatch.setattr(run_module, "log_file", lambda: tmp_path / "opstui.log")
    monkeypatch.setattr(OpstuiApp, "run", broken_run)
    code = run_tui(scenario_config(), theme=None, read_only=True)
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "OSError: not a terminal" in err and str(tmp_path / "opstui.log") in err
    logged = (tmp_path / "opstui.log").read_text()
    assert "Traceback" in logged and "broken_run" in logged


class CrashingApp(OpstuiApp):
    def action_toggle_pause(self) -> None:
        raise RuntimeError("boom in an action")


async def test_a_crash_inside_the_app_goes_to_the_log_not_the_terminal(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(scenario_config(), clock=ManualClock())
    app = CrashingApp(engine, poll=False)

    async def press_p(pilot: Pilot[int]) -> None:
        await pilot.press("p")

    with caplog.at_level(logging.ERROR, logger="opstui.ui"):
        await app.run_async(headless=True, size=(80, 24), auto_pilot=press_p)
    assert app.failure == "RuntimeError: boom in an action"
    assert app.return_code == 1
    assert "boom in an action" in caplog.text and "Traceback" in caplog.text
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
