"""An asyncio event loop in a daemon thread of its own, for the demo's local servers.

The dashboard's loop must never wait on the stand-ins (nor they on it), so each demo server
runs its coroutines here; `start()` returns once its setup ran (or raises what it raised),
`stop()` runs the teardown, cancels what is left and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

Setup = Callable[[], Awaitable[None]]


class LoopThread:
    """One loop, one thread; start/stop are called from any other thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._teardown: Setup | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, setup: Setup, teardown: Setup | None = None, timeout: float = 10.0) -> None:
        """Run `setup()` in the new loop; raise RuntimeError if it fails or hangs."""
        self._teardown = teardown
        self._thread = threading.Thread(
            target=self._main, args=(setup,), name=self.name, daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.name} did not start within {timeout:g} s")
        if self._error is not None:
            self._thread.join(timeout=5)
            raise RuntimeError(f"{self.name} could not start: {self._error}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (teardown first) and join the thread; safe to call twice."""
        loop, thread = self.loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:  # the loop closed meanwhile
            return
        thread.join(timeout)

    def _main(self, setup: Setup) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(setup())
        except BaseException as exc:  # reported to start() in the caller's thread
            self._error = exc
            self._finish(loop)
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._finish(loop)

    def _finish(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if self._teardown is not None:
                loop.run_until_complete(_quietly(self._teardown()))
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


async def _quietly(work: Awaitable[None]) -> None:
    """A teardown that fails must not keep the rest of the shutdown from running."""
    try:
        async with asyncio.timeout(5):
            await work
    except Exception:  # shutting down: nothing useful to do with it
        return
