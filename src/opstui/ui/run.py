"""`opstui` with no sub-command: build the engine and the app, run it, return an exit code.

Whatever goes wrong, the terminal gets one line and the log file gets the details.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from platformdirs import user_log_path

from opstui.config.models import Config
from opstui.engine.scheduler import Engine
from opstui.ui.themes import load_themes, resolve_theme_name

log = logging.getLogger("opstui")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def log_file() -> Path:
    """Where the TUI's log goes: the platform's user log folder (a temp folder if unusable)."""
    try:
        folder = user_log_path("opstui", ensure_exists=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    return folder / "opstui.log"


def _attach_log_file() -> tuple[Path, logging.Handler | None]:
    path = log_file()
    try:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return path, None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return path, handler


def run_tui(config: Config, *, theme: str | None = None, read_only: bool = False) -> int:
    """Run the dashboard until the user quits; 0 on a clean exit, 1 on a failure, 2 on usage."""
    try:
        resolve_theme_name(theme or config.theme, load_themes())
    except ValueError as exc:
        print(f"opstui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path, handler = _attach_log_file()
    try:
        from opstui.ui.app import OpstuiApp, build_runner

        engine = Engine(config)
        read_only = read_only or config.read_only
        runner = build_runner(engine, read_only=read_only)
        app = OpstuiApp(engine, theme=theme, read_only=read_only, runner=runner)
        app.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.exception("the TUI failed to run")
        print(f"opstui: {type(exc).__name__}: {exc} (details in {path})", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
    if app.failure is not None:
        print(f"opstui: {app.failure} (details in {path})", file=sys.stderr)
        return EXIT_FAILED
    code = app.return_code
    return EXIT_OK if code in (None, 0) else EXIT_FAILED
