"""A probe's bounded history: a fixed-size ring buffer of (monotonic, wall, value) samples.

Appending is O(1) and never allocates once the buffer is full, so a wall screen polling for
weeks keeps a flat memory line. Samples are kept in three `array('d')` columns (24 bytes per
sample instead of ~100 for Python objects); a gap (failed poll, no data) is stored as NaN and
read back as None. Snapshots hold the live buffer as a read-only HistoryView instead of a copy,
so publishing a snapshot costs nothing however long the history is; a reader therefore always
sees the newest samples, which is what a sparkline wants. The engine appends on its thread
while the UI reads on its own, so both hold a lock (uncontended, a fraction of a microsecond).
"""

from __future__ import annotations

import math
import threading
from array import array

from opstui.engine.snapshot import Sample


class History:
    """Ring buffer implementing HistoryView (samples, values, len)."""

    __slots__ = ("_at", "_capacity", "_len", "_lock", "_next", "_value", "_wall")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("history capacity must be at least 1")
        self._capacity = capacity
        self._at = array("d", bytes(8 * capacity))
        self._wall = array("d", bytes(8 * capacity))
        self._value = array("d", bytes(8 * capacity))
        self._next = 0
        self._len = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    def append(self, at: float, wall: float, value: float | None) -> None:
        """Record one poll outcome; None (or NaN) is a gap."""
        with self._lock:
            index = self._next
            self._at[index] = at
            self._wall[index] = wall
            self._value[index] = math.nan if value is None else value
            self._next = index + 1 if index + 1 < self._capacity else 0
            if self._len < self._capacity:
                self._len += 1

    def __len__(self) -> int:
        return self._len

    def clear(self) -> None:
        """Forget every sample (keeps the buffer, so nothing is reallocated)."""
        with self._lock:
            self._next = 0
            self._len = 0

    def _indices(self, last: int | None) -> range | list[int]:
        """Buffer positions of the newest `last` samples, oldest first."""
        count = self._len if last is None else max(0, min(last, self._len))
        start = (self._next - count) % self._capacity
        end = start + count
        if end <= self._capacity:
            return range(start, end)
        return [*range(start, self._capacity), *range(0, end - self._capacity)]

    def values(self, last: int | None = None) -> list[float | None]:
        """The newest `last` values (all when None), oldest first; None marks a gap."""
        column = self._value
        with self._lock:
            return [None if (v := column[i]) != v else v for i in self._indices(last)]

    def samples(self, last: int | None = None) -> list[Sample]:
        """The newest `last` samples (all when None), oldest first."""
        at, wall, column = self._at, self._wall, self._value
        with self._lock:
            return [
                Sample(at[i], wall[i], None if (v := column[i]) != v else v)
                for i in self._indices(last)
            ]

    def __repr__(self) -> str:
        return f"History({self._len}/{self._capacity})"
