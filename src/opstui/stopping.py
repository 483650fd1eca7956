"""How the long-running commands (`opstui export`, `opstui serve`) learn they should stop.

A service manager sends SIGTERM and a person presses Ctrl+C (SIGINT); both should end the
process the same clean way, with exit code 0, not a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An Event set by SIGTERM or SIGINT while the block runs (on the running loop); the
    handlers are removed on the way out. Where a loop cannot take signal handlers (not the
    main thread, another platform) the Event is simply never set by a signal."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        yield stop
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
