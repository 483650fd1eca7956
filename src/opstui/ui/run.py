"""`opstui` with no sub-command: build the engine and the app, run it, return an exit code.

Whatever goes wrong, the terminal gets one line and the log file gets the details. When the
terminal goes away (SIGHUP: the ssh session dropped, the tmux pane closed) or the process is
asked to stop (SIGTERM), the app leaves as on `q`: the engine stops, the terminal is restored
as far as it still exists, and the exit code is 128 + the signal (129, 143), no traceback.
If the app has not left EXIT_DEADLINE seconds after the signal (its main thread blocked: a
write to a terminal that is gone can wait for good), the process ends there and then: a
poller left running after a dropped SSH session is worse than a skipped clean-up (audit
lines are fsync'd one by one, so none is lost).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from platformdirs import user_log_path

from opstui.config.kinds.prometheus import ViaPrometheus
from opstui.config.models import Config
from opstui.engine.scheduler import Engine
from opstui.redaction import RedactingFormatter, Redactor, redactor_for
from opstui.ui.themes import load_themes, resolve_theme_name
from opstui.ui.wall import WallOptions

if TYPE_CHECKING:
    from opstui.ui.app import OpstuiApp

log = logging.getLogger("opstui")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_SIGNALS = (signal.SIGHUP, signal.SIGTERM)
EXIT_DEADLINE = 4.0
"""Seconds after SIGHUP/SIGTERM before the process ends whatever the app is doing."""
TERMINAL_RESET = b"\x1b[?1049l\x1b[?25h"
"""Leave the alternate screen, show the cursor: what a terminal still there needs most."""

_WALL: ContextVar[WallOptions | None] = ContextVar("opstui_wall", default=None)


@contextlib.contextmanager
def wall_mode(options: WallOptions | None) -> Iterator[None]:
    """Run the TUI started inside this block in wall mode: for commands (`opstui demo
    --wall`) that reach run_tui through code that does not pass the options along."""
    token = _WALL.set(options)
    try:
        yield
    finally:
        _WALL.reset(token)


@contextlib.contextmanager
def exit_on_signals(app: OpstuiApp) -> Iterator[None]:
    """SIGHUP and SIGTERM make the app exit with 128 + the signal while it runs; the
    handlers that were there before (a caller's, the default) come back afterwards."""

    deadline: list[threading.Timer] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        app.exit_on_signal(128 + signum)
        if not deadline:
            timer = threading.Timer(EXIT_DEADLINE, _hard_exit, (128 + signum,))
            timer.daemon = True
            timer.start()
            deadline.append(timer)

    previous: dict[signal.Signals, object] = {}
    for sig in EXIT_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)  # type: ignore[arg-type]


def _hard_exit(code: int) -> None:
    """The app did not leave in time after a signal: end the process now."""
    log.error("did not exit within %.0fs of the signal: leaving at once", EXIT_DEADLINE)
    with contextlib.suppress(OSError, ValueError):
        fd = sys.__stdout__.fileno() if sys.__stdout__ else 1
        os.set_blocking(fd, False)  # a terminal that stopped reading must not hold us here
        os.write(fd, TERMINAL_RESET)
    os._exit(code)


def log_file() -> Path:
    """Where the TUI's log goes: the platform's user log folder (a temp folder if unusable)."""
    try:
        folder = user_log_path("opstui", ensure_exists=True)
    except OSError:
        folder = Path(tempfile.gettempdir())
    return folder / "opstui.log"


def _attach_log_file(redactor: Redactor) -> tuple[Path, logging.Handler | None]:
    path = log_file()
    try:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return path, None
    handler.setFormatter(
        RedactingFormatter(redactor, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return path, handler


def run_tui(
    config: Config,
    *,
    theme: str | None = None,
    read_only: bool = False,
    wall: WallOptions | None = None,
    via: ViaPrometheus | None = None,
    poll_after: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run the dashboard until the user quits; 0 on a clean exit, 1 on a failure, 2 on usage,
    129/143 when SIGHUP/SIGTERM ended it. `wall` (or an enclosing `wall_mode`) runs it as a
    read-only wall screen. `via` (or the config's via_prometheus) draws the panels from
    `opstui export` series in Prometheus instead of polling the backends. Polling starts
    after the first frame, and after `poll_after()` returns when one is given (the demo:
    once its servers answer); if it raises, the app ends with that as its failure."""
    wall = wall if wall is not None else _WALL.get()
    try:
        resolve_theme_name(theme or config.theme, load_themes())
    except ValueError as exc:
        print(f"opstui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    redactor = redactor_for(config)
    path, handler = _attach_log_file(redactor)
    try:
        from opstui.ui.app import OpstuiApp, build_runner

        via = via if via is not None else config.via_prometheus
        if via is None:
            engine = Engine(config)
        else:
            from opstui.engine.mirror import MirrorEngine  # its HTTP client: only when used

            engine = MirrorEngine(config, via)
        read_only = read_only or config.read_only or wall is not None
        runner = build_runner(engine, read_only=read_only)
        if not read_only:
            from opstui.actions.audit import AuditUnavailable

            try:  # before anything can run: one line, exit 2, not a failure after a confirm
                runner.audit.check_writable()
            except AuditUnavailable as exc:
                print(f"opstui: {exc}", file=sys.stderr)
                return EXIT_USAGE
        app = OpstuiApp(
            engine,
            theme=theme,
            read_only=read_only,
            runner=runner,
            wall=wall,
            auto_bastion=True,
            poll_after=poll_after,
        )
        with exit_on_signals(app):
            app.run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        log.exception("the TUI failed to run")
        print(
            f"opstui: {type(exc).__name__}: {redactor.scrub(str(exc))} (details in {path})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
    if app.failure is not None:
        print(f"opstui: {redactor.scrub(str(app.failure))} (details in {path})", file=sys.stderr)
        return EXIT_FAILED
    code = app.return_code
    if code in {128 + sig for sig in EXIT_SIGNALS}:
        assert code is not None
        return code
    return EXIT_OK if code in (None, 0) else EXIT_FAILED
