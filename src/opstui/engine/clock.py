"""Time as the engine sees it, injectable so time-based behaviour is tested without sleeping."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for intervals, ages and `for` delays."""
        ...

    def wall(self) -> float:
        """Unix time: for timestamps shown to people and written to exports."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when a test says so; `sleep` waits until it has advanced.

    A test may advance it from another thread than the sleeper's (the TUI's engine polls on
    a thread of its own): each sleeper is woken on its own loop."""

    def __init__(self, start: float = 1000.0, wall_offset: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_offset
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
            due = [w for w in self._waiters if w[0] <= self._now]
            self._waiters = [w for w in self._waiters if w[0] > self._now]
        here = asyncio.events._get_running_loop()
        for _, future in due:
            loop = future.get_loop()
            if loop is here:
                _wake(future)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_wake, future)

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append((self._now + seconds, future))
        await future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@asynccontextmanager
async def clock_timeout(clock: Clock, seconds: float) -> AsyncIterator[asyncio.Timeout]:
    """Like asyncio.timeout, but measured on `clock`, so a ManualClock can expire it.

    Raises TimeoutError in the body when `seconds` pass on the clock; yields the underlying
    asyncio.Timeout, whose `expired()` tells this timeout from one raised inside the body.
    SystemClock callers should use asyncio.timeout directly (this costs one task per use).
    """
    async with asyncio.timeout(None) as scope:
        loop = asyncio.get_running_loop()
        active = True

        def expire(waiter: asyncio.Future[None]) -> None:
            if active and not waiter.cancelled():
                scope.reschedule(loop.time())

        waiter = asyncio.ensure_future(clock.sleep(seconds))
        waiter.add_done_callback(expire)
        try:
            yield scope
        finally:
            active = False
            waiter.cancel()
