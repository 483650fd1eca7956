"""An Engine polling on a thread of its own, with its own event loop.

Why (bench/confirm_latency.py, docs/architecture.md): on the UI's loop every key press and
every frame queued behind poll callbacks (200 probes a second), so the confirm modal took 4x
its budget. On its own loop the engine's work never sits in the UI's queue; listeners get
snapshots on their own loop in batches (engine/listeners.py). A poll that blocks its loop (a
wedged client library) stalls polling, never the screen or the keys.

The thread is a daemon: a loop wedged for good cannot keep the process alive after the UI
leaves (stop() waits a bounded time, then lets it go).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from typing import Any

from opstui.engine.scheduler import STOP_TIMEOUT, Engine

log = logging.getLogger("opstui.engine")

START_TIMEOUT = 10.0
"""Seconds start() waits for the engine's loop to run its start()."""
STOP_GRACE = STOP_TIMEOUT + 1.0
"""Seconds stop() waits for the engine to stop (its own bound is STOP_TIMEOUT) and the
thread to end."""


class EngineThread:
    """`EngineThread(engine)`: `await start()` runs engine.start() on a new thread's loop;
    `await stop()` stops it there and ends the thread. Both are awaited from the caller's
    loop without blocking it."""

    def __init__(self, engine: Engine, *, name: str = "opstui-engine") -> None:
        self.engine = engine
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The engine's loop while the thread runs."""
        return self._loop

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def start(self) -> None:
        if self._thread is not None:
            return
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=self._name, daemon=True
        )
        self._thread.start()
        await asyncio.wait_for(asyncio.wrap_future(ready), START_TIMEOUT)

    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_error)
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.engine.start())
        except BaseException as exc:
            ready.set_exception(exc)
            _close(loop)
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            _close(loop)

    async def stop(self) -> None:
        """engine.stop() on its loop (bounded), then the loop and the thread end."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        try:
            stopped = asyncio.run_coroutine_threadsafe(self.engine.stop(), loop)
        except RuntimeError:  # the loop closed meanwhile
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(stopped), STOP_GRACE)
        except Exception as exc:  # TimeoutError included: a wedged loop is let go
            log.warning("the engine did not stop cleanly: %s", str(exc) or type(exc).__name__)
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            await asyncio.get_running_loop().run_in_executor(None, thread.join, STOP_GRACE)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on `loop`, let it finish, and close the loop."""
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=STOP_TIMEOUT))
        loop.run_until_complete(loop.shutdown_asyncgens())
        # A thread wedged in a sync client (to_thread) must not hold the loop's close.
        loop.run_until_complete(
            asyncio.wait([loop.create_task(loop.shutdown_default_executor())], timeout=2.0)
        )
    except Exception as exc:
        log.warning("closing the engine's loop: %s", exc)
    finally:
        loop.close()


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The engine loop's unhandled errors go to the log, never onto the terminal."""
    exc = context.get("exception")
    log.error("engine loop: %s", context.get("message", ""), exc_info=exc)
