"""Keep the garbage collector out of the operator's way in a long-running dashboard.

Two costs, both measured with bench/confirm_latency.py (200 probes):

- **Full passes over the layout.** A dashboard of 200 panels holds hundreds of thousands of
  long-lived objects, and CPython's full collections walked all of them every few seconds
  (150-280 ms each: a frozen frame). Once the widgets are built they live as long as the
  layout, so `settle()` moves them out of the collector's sight with `gc.freeze()`; when the
  layout is rebuilt (resize, view change) it unfreezes, collects the old layout's garbage and
  freezes the new one.
- **Collections in the middle of a key press.** Opening the confirm modal allocates tens of
  thousands of objects; with CPython's default thresholds that ran dozens of young and middle
  collections and, every few opens, a full one over the closed screens' garbage: about 10 ms
  of the median and a 150-200 ms tail (p95 48 ms with the collector off, 148-215 ms on).
  `IdleCollector` raises the young threshold, leaves full passes to us, and runs them when
  nobody has pressed a key for a moment (at most every FULL_EVERY seconds, and at the latest
  after FULL_AT_LATEST, so a screen never idle still collects). A key press also holds every
  automatic collection until the keys stop for IDLE_AFTER (at most DEFER_AT_MOST): what a key
  opens is drawn first, its garbage collected a second later.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

YOUNG_THRESHOLD = 20_000
"""Allocations between young collections (CPython's default is 700)."""
MIDDLE_THRESHOLD = 20
NO_AUTOMATIC_FULL = 1_000_000
"""Middle collections before CPython would run a full one by itself: never, in practice."""
FULL_EVERY = 30.0
"""Seconds between our full collections, when the operator is idle."""
FULL_AT_LATEST = 120.0
"""Seconds after which a full collection runs even while keys keep coming."""
IDLE_AFTER = 1.0
"""Seconds without a key press that count as idle."""
DEFER_AT_MOST = 5.0
"""Seconds automatic collections may stay held while keys keep coming."""


def settle() -> None:
    """Collect everything that is garbage now, then freeze what is left as permanent."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def release() -> None:
    """Give frozen objects back to the collector (on exit, or in tests)."""
    gc.unfreeze()


class IdleCollector:
    """`start()` tunes the collector for the app's lifetime, `stop()` restores it; the app
    calls `input_seen()` on each key and `tick()` once a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._saved: tuple[int, int, int] | None = None
        now = clock()
        self._last_full = now
        self._last_input = now
        self._held_since: float | None = None
        self.full_collections = 0

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, NO_AUTOMATIC_FULL)

    def stop(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            gc.set_threshold(*saved)
        self._release()

    def input_seen(self) -> None:
        """A key: hold automatic collections until the keys stop (see the module docstring)."""
        now = self._last_input = self._clock()
        if self._saved is not None and self._held_since is None and gc.isenabled():
            gc.disable()
            self._held_since = now

    def _release(self) -> None:
        if self._held_since is not None:
            self._held_since = None
            gc.enable()

    @property
    def holding(self) -> bool:
        """True while automatic collections are held after a key press."""
        return self._held_since is not None

    def tick(self) -> bool:
        """Run a full collection if one is due; True when it ran."""
        now = self._clock()
        since_full = now - self._last_full
        idle = now - self._last_input >= IDLE_AFTER
        held = self._held_since
        if held is not None and (idle or now - held >= DEFER_AT_MOST):
            self._release()
        if (since_full >= FULL_EVERY and idle) or since_full >= FULL_AT_LATEST:
            gc.collect()  # frozen layout excluded: what it walks is the rest
            self._last_full = now
            self.full_collections += 1
            return True
        return False
