"""The per-probe state machine: poll outcomes and time in, ProbeSnapshot out. Pure: no asyncio.

`observe(outcome, now, wall)` takes one poll's Reading or ProbeError; `evaluate(now)` folds
everything known into the panel's state (DESIGN.md section 5, with the stale rule below):

- INIT until the first outcome.
- A ProbeError is ERROR at once; the last good reading stays (with its age), errors are
  counted, and the history gets a gap.
- A Reading with `no_data` (or, with thresholds, no usable number) is NODATA, never green.
- Otherwise the service's own verdict counts at once, thresholds count after `for`, and the
  worse wins: OK/WARN/CRIT, or PENDING while a breach waits out its `for`.
- STALE when the last reading is older than 2 x interval + that poll's latency. (DESIGN.md says
  max(2 x interval, interval + timeout), which cannot fire before a hung poll's own timeout
  error; this rule lets a hung poll go stale at ~2 x interval, then ERROR when its timeout
  passes, while a slow-but-answering endpoint never flashes stale.)
- The panel: a current error wins, then stale, then flapping, then the judged state.
"""

from __future__ import annotations

import math

from opstui.config.models import ProbeConfig
from opstui.engine.flapping import FlapDetector
from opstui.engine.history import History
from opstui.engine.snapshot import ProbeSnapshot
from opstui.engine.thresholds import OK as JUDGED_OK
from opstui.engine.thresholds import Judgement, ThresholdJudge
from opstui.sources.base import ProbeError, Reading
from opstui.states import Severity, State

_SEVERITY_STATE = {Severity.OK: State.OK, Severity.WARN: State.WARN, Severity.CRIT: State.CRIT}
_CAUSE_LIMIT = 120


class ProbeTracker:
    """Everything the engine knows about one probe, and the rules that turn it into a state."""

    __slots__ = (
        "_flap",
        "_judge",
        "_latency",
        "_missing",
        "consecutive_errors",
        "error",
        "history",
        "interval",
        "next_poll_at",
        "paused",
        "probe",
        "reading",
        "reading_at",
        "reading_wall",
    )

    def __init__(self, probe: ProbeConfig, *, interval: float) -> None:
        self.probe = probe
        self.interval = interval
        self.history = History(probe.history)
        thresholds = probe.thresholds
        self._judge = ThresholdJudge(thresholds) if thresholds is not None else None
        self._flap = (
            FlapDetector(thresholds.flap_low, thresholds.flap_high)
            if thresholds is not None
            else FlapDetector()
        )
        self.reading: Reading | None = None
        self.reading_at: float | None = None
        self.reading_wall: float | None = None
        self._latency = 0.0
        self._missing: str | None = None
        """Why the last reading has no judgeable value (nodata), None when it has one."""
        self.error: ProbeError | None = None
        self.consecutive_errors = 0
        self.next_poll_at: float | None = None
        self.paused = False

    # --- input ------------------------------------------------------------------------------

    def observe(
        self,
        outcome: Reading | ProbeError,
        now: float,
        wall: float,
        *,
        latency: float | None = None,
    ) -> None:
        """Take one poll's outcome, ended at `now`. `latency` (seconds) defaults to the
        reading's own latency_ms; it widens the stale limit for slow endpoints."""
        if isinstance(outcome, ProbeError):
            self.error = outcome
            self.consecutive_errors += 1
            self.history.append(now, wall, None)
            self._flap.record(State.ERROR)
            return
        self.error = None
        self.consecutive_errors = 0
        self.reading = outcome
        self.reading_at = now
        self.reading_wall = wall
        if latency is None:
            latency = outcome.latency_ms / 1000.0 if outcome.latency_ms is not None else 0.0
        self._latency = max(0.0, latency)
        value = outcome.value
        if outcome.backfill and self._history_is_blank():
            self._backfill(outcome.backfill, now, wall)
        self.history.append(now, wall, value)
        self._missing = outcome.no_data
        judge = self._judge
        if judge is not None:
            if self._missing is None:
                number, self._missing = _judged_number(outcome, judge.field)
                if number is not None:
                    judge.observe(number, now)
            if self._missing is not None:
                judge.reset()
        self._flap.record(self._judged_state(now)[0])

    def _history_is_blank(self) -> bool:
        return all(v is None for v in self.history.values())

    def _backfill(self, points: tuple[tuple[float, float], ...], now: float, wall: float) -> None:
        """Insert a backend's own earlier points before the first live one, oldest first.

        Points are placed on the monotonic axis by their distance from `wall`; points from the
        future or not older than the previous one are dropped, so history stays ordered. Gaps
        from polls that failed before are dropped too: they are newer than the points."""
        self.history.clear()
        previous = -math.inf
        for point_wall, point_value in points[-(self.history.capacity - 1) :]:
            if point_wall >= wall or point_wall <= previous:
                continue
            previous = point_wall
            self.history.append(now - (wall - point_wall), point_wall, point_value)

    # --- output -----------------------------------------------------------------------------

    def _judged_state(self, now: float) -> tuple[State, Severity | None, Judgement]:
        """The state the last reading earns by its content and `for` timers (no freshness)."""
        reading = self.reading
        if reading is None:
            return State.INIT, None, JUDGED_OK
        if self._missing is not None:
            return State.NODATA, None, JUDGED_OK
        judge = self._judge
        judgement = judge.judge(now) if judge is not None else JUDGED_OK
        severity = _worse(reading.verdict, judgement.fired)
        if severity is Severity.OK and judgement.pending is not None:
            return State.PENDING, severity, judgement
        return _SEVERITY_STATE[severity], severity, judgement

    def is_stale(self, now: float) -> bool:
        at = self.reading_at
        return at is not None and now - at > 2.0 * self.interval + self._latency

    @property
    def flapping(self) -> bool:
        return self._flap.flapping

    def evaluate(self, now: float) -> ProbeSnapshot:
        """The panel as of `now`."""
        judged, severity, judgement = self._judged_state(now)
        flapping = self._flap.flapping
        if self.error is not None:
            state = State.ERROR
        elif self.is_stale(now):
            state = State.STALE
        elif flapping and judged is not State.INIT:
            state = State.FLAPPING
        else:
            state = judged
        probe = self.probe
        error = self.error
        return ProbeSnapshot(
            probe_id=probe.id,
            kind=probe.kind,
            title=probe.display_title,
            unit=probe.unit,
            state=state,
            at=now,
            severity=severity,
            reading=self.reading,
            reading_at=self.reading_at,
            reading_wall=self.reading_wall,
            error=error.reason if error is not None else None,
            no_data=self._missing,
            error_hint=error.hint if error is not None else None,
            consecutive_errors=self.consecutive_errors,
            next_poll_at=self.next_poll_at,
            pending_fires_at=judgement.fires_at,
            breached=judgement.pending,
            flapping=flapping,
            paused=self.paused,
            runbook=probe.runbook,
            history=self.history,
        )

    def cause(self, snapshot: ProbeSnapshot) -> str | None:
        """A short why for `snapshot.state`, for the event timeline: 'HTTP 503, db: down'."""
        state = snapshot.state
        if state is State.ERROR:
            return self.error.reason if self.error is not None else None
        if state is State.NODATA:
            return self._missing
        if state is State.STALE:
            age = snapshot.age(snapshot.at)
            return f"no reading for {age:.0f}s" if age is not None else None
        if state is State.FLAPPING:
            return f"{self._flap.ratio:.0%} state change"
        if state not in (State.WARN, State.CRIT, State.PENDING):
            return None
        parts: list[str] = []
        reading = self.reading
        if reading is not None and reading.verdict not in (None, Severity.OK):
            parts.extend(reading.notes[:2])
            parts.extend(
                f"{c.name}: {c.status}"
                for c in reading.components
                if c.severity not in (None, Severity.OK)
            )
        judge = self._judge
        if judge is not None:
            described = judge.describe()
            if described is not None:
                parts.append(described)
        if not parts:
            return None
        text = ", ".join(parts)
        return text if len(text) <= _CAUSE_LIMIT else text[: _CAUSE_LIMIT - 1] + "…"


_RANK = {None: -1, Severity.OK: 0, Severity.WARN: 1, Severity.CRIT: 2}


def _worse(a: Severity | None, b: Severity | None) -> Severity:
    """Severity.worst(a, b) for two, without its list and key function: this runs for every
    probe on every poll and every tick."""
    if b is None or b is a:
        return a if a is not None else Severity.OK
    if a is None:
        return b
    return a if _RANK[a] >= _RANK[b] else b


def _judged_number(reading: Reading, field: str | None) -> tuple[float | None, str | None]:
    """The number thresholds judge, or why there is none (which makes the panel NODATA)."""
    if field is None:
        raw: object = reading.value
        if raw is None:
            return None, "no value"
    else:
        if field not in reading.fields:
            return None, f"no field {field!r}"
        raw = reading.fields[field]
    try:
        number = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, f"{field or 'value'} is not a number: {str(raw)[:30]}"
    if math.isnan(number):
        return None, f"{field or 'value'} is NaN"
    return number, None
