"""Listeners called on the event loop they subscribed from, whichever thread notifies.

The engine polls on a thread of its own (engine/thread.py) while the TUI draws on the main
thread, and both add to the timeline. A listener must run where its owner lives: a panel's
callback on the UI's loop, the exporter's on the engine's. So each subscription remembers the
loop that was running when it subscribed (none: called on whichever thread notifies), and an
item for a loop other than the notifier's is handed over in batches: what a listener's loop
receives in one wake-up is everything published in the last HANDOFF seconds, so 200 polls a
second wake the UI about 20 times, not 200, and never make it wait on the engine's thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

HANDOFF = 0.05
"""Seconds a notifier's loop gathers items for another loop before handing them over."""

ErrorHandler = Callable[[Callable[[T], None], Exception], None]

log = logging.getLogger("opstui.engine")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None."""
    return asyncio.events._get_running_loop()


class _Subscription(Generic[T]):
    __slots__ = ("active", "callback", "loop")

    def __init__(
        self, callback: Callable[[T], None], loop: asyncio.AbstractEventLoop | None
    ) -> None:
        self.callback = callback
        self.loop = loop
        self.active = True


class _Outbox(Generic[T]):
    """Items waiting to be delivered on one loop; drained there in order, in one call."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[
        [_Subscription[T], T], None
    ]) -> None:
        self.loop = loop
        self._deliver = deliver
        self._items: list[tuple[_Subscription[T], T]] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, subscription: _Subscription[T], item: T) -> None:
        with self._lock:
            self._items.append((subscription, item))
            if self._scheduled:
                return
            self._scheduled = True
        here = running_loop()
        try:
            if here is not None and here is not self.loop:
                here.call_later(HANDOFF, self._send)
            else:
                self.loop.call_soon_threadsafe(self.drain)
        except RuntimeError:  # a loop closed (the app is leaving): nothing to deliver to
            self._discard()

    def _send(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.drain)
        except RuntimeError:
            self._discard()

    def _discard(self) -> None:
        with self._lock:
            self._items.clear()
            self._scheduled = False

    def drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for subscription, item in items:
            if subscription.active:  # unsubscribed meanwhile: a closed screen gets nothing
                self._deliver(subscription, item)


class Listeners(Generic[T]):
    """A list of callbacks; see the module docstring. `on_error` hears a callback's exception
    (a listener's bug never reaches the notifier)."""

    def __init__(self, on_error: ErrorHandler[T] | None = None) -> None:
        self._subscriptions: list[_Subscription[T]] = []
        self._outboxes: dict[asyncio.AbstractEventLoop, _Outbox[T]] = {}
        self._lock = threading.Lock()
        self._on_error = on_error

    def add(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Subscribe `callback`; returns the unsubscribe function (after which nothing more
        is delivered to it, not even items already handed over)."""
        subscription = _Subscription(callback, running_loop())
        with self._lock:
            self._subscriptions = [*self._subscriptions, subscription]

        def unsubscribe() -> None:
            subscription.active = False
            with self._lock:
                self._subscriptions = [s for s in self._subscriptions if s is not subscription]

        return unsubscribe

    def __len__(self) -> int:
        return len(self._subscriptions)

    def notify(self, item: T) -> None:
        """Call every callback with `item`: at once where it subscribed from this loop (or
        from none), else in the next hand-over to its loop."""
        subscriptions = self._subscriptions  # replaced, never mutated: safe to iterate
        if not subscriptions:
            return
        here = running_loop()
        for subscription in subscriptions:
            loop = subscription.loop
            if loop is None or loop is here:
                self._deliver(subscription, item)
            elif not loop.is_closed():
                self._outbox(loop).put(subscription, item)

    def _outbox(self, loop: asyncio.AbstractEventLoop) -> _Outbox[T]:
        outbox = self._outboxes.get(loop)
        if outbox is None:
            with self._lock:
                for gone in [old for old in self._outboxes if old.is_closed()]:
                    del self._outboxes[gone]  # tests run many apps, one loop each
                outbox = self._outboxes.setdefault(loop, _Outbox(loop, self._deliver))
        return outbox

    def _deliver(self, subscription: _Subscription[T], item: T) -> None:
        try:
            subscription.callback(item)
        except Exception as exc:
            if self._on_error is not None:
                self._on_error(subscription.callback, exc)
            else:
                log.exception("listener %r failed", subscription.callback)
