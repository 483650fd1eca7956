"""The event timeline: state changes, actions and results, for the incident log.

Both the engine's thread (state changes) and the UI's (actions) add to it; each listener is
called on the loop it subscribed from (engine/listeners.py).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from opstui.engine.listeners import Listeners
from opstui.states import State


class EventKind(Enum):
    STATE = "state"
    ERROR = "error"
    CONTROL = "control"  # pause, resume, refresh, start, stop
    NOTE = "note"
    DIAGNOSE = "diagnose"  # a read-only runbook step ran, with its result
    ACTION = "action"  # a mutation was confirmed and started (the audit intent)
    RESULT = "result"  # how a mutation ended (the audit result)
    CHECKLIST = "checklist"  # the operator ticked a manual step


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    """Monotonic seconds, for ordering and ages."""
    wall: float
    """Unix time, for timestamps shown and exported."""
    kind: EventKind
    message: str
    probe_id: str | None = None
    old: State | None = None
    new: State | None = None
    runbook_id: str | None = None
    action_id: str | None = None


Listener = Callable[[Event], None]


class Timeline:
    """A bounded, append-only list of events with listeners (the UI, exporters)."""

    def __init__(self, limit: int = 5000) -> None:
        self._events: deque[Event] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._listeners: Listeners[Event] = Listeners()

    def add(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
        self._listeners.notify(event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event added from now on, on the loop running here."""
        return self._listeners.add(listener)

    def events(self) -> tuple[Event, ...]:
        with self._lock:
            return tuple(self._events)

    def __len__(self) -> int:
        return len(self._events)
