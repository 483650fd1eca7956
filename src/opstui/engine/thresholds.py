"""Judging a number against a probe's Thresholds: bands, `for` delays and hysteresis.

Every limit (above.warn, above.crit, below.warn, below.crit) is tracked on its own, so
escalation (warn -> crit) and de-escalation (crit -> warn -> ok) each follow their own timer:

- entering: `above` breaches when value > limit, `below` when value < limit;
- leaving (hysteresis h): an `above` breach ends only when value < limit - |limit|*h, a
  `below` breach only when value > limit + |limit|*h (the same as limit*(1-h) and limit*(1+h)
  for positive limits, and still pointing the safe way for negative ones);
- firing: a breach fires once it has lasted `for` seconds, measured on the engine's monotonic
  clock from the first breaching reading; until then it is pending, with the time it fires.
  Recovery is immediate: the reading that leaves the band clears its timer.

The judge is a small pure state machine; time only comes in through arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from opstui.config.models import Thresholds
from opstui.config.types import format_duration
from opstui.states import Severity


@dataclass(frozen=True, slots=True)
class Judgement:
    """Where a value stands at `now`: the fired severity and any breach still pending."""

    fired: Severity
    pending: Severity | None = None
    """The severity a pending breach will fire as (only when worse than `fired`)."""
    fires_at: float | None = None


OK = Judgement(Severity.OK)


class _Limit:
    __slots__ = ("above", "enter", "leave", "limit", "severity", "since")

    def __init__(self, above: bool, severity: Severity, limit: float, hysteresis: float) -> None:
        self.above = above
        self.severity = severity
        self.limit = limit
        margin = abs(limit) * hysteresis
        self.enter = limit
        self.leave = limit - margin if above else limit + margin
        self.since: float | None = None

    def update(self, value: float, now: float) -> None:
        if self.since is None:
            breached = value > self.enter if self.above else value < self.enter
            if breached:
                self.since = now
        else:
            recovered = value < self.leave if self.above else value > self.leave
            if recovered:
                self.since = None


class ThresholdJudge:
    """Per-probe threshold state; `observe` each value, ask `judge(now)` at any time."""

    __slots__ = ("_for", "_limits", "last_value", "thresholds")

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._for = thresholds.for_
        h = thresholds.hysteresis
        limits: list[_Limit] = []
        for above, band in ((True, thresholds.above), (False, thresholds.below)):
            if band is None:
                continue
            if band.warn is not None:
                limits.append(_Limit(above, Severity.WARN, band.warn, h))
            if band.crit is not None:
                limits.append(_Limit(above, Severity.CRIT, band.crit, h))
        self._limits = tuple(limits)
        self.last_value: float | None = None

    @property
    def field(self) -> str | None:
        return self.thresholds.field

    def observe(self, value: float, now: float) -> Judgement:
        """Take a new reading's value (taken at `now`) and judge it."""
        self.last_value = value
        for limit in self._limits:
            limit.update(value, now)
        return self.judge(now)

    def reset(self) -> None:
        """Forget every breach (the value went missing: a breach cannot be said to last)."""
        self.last_value = None
        for limit in self._limits:
            limit.since = None

    def judge(self, now: float) -> Judgement:
        """The fired severity at `now`, and the worse breach that fires next if it lasts."""
        fired = Severity.OK
        for limit in self._limits:
            since = limit.since
            if since is not None and now >= since + self._for and limit.severity.rank > fired.rank:
                fired = limit.severity
        pending: Severity | None = None
        fires_at: float | None = None
        for limit in self._limits:
            if limit.since is None or limit.severity.rank <= fired.rank:
                continue
            due = limit.since + self._for
            if due <= now:
                continue
            if (
                fires_at is None
                or due < fires_at
                or (due == fires_at and pending is not None and limit.severity.rank > pending.rank)
            ):
                pending, fires_at = limit.severity, due
        if fired is Severity.OK and pending is None:
            return OK
        return Judgement(fired, pending, fires_at)

    def describe(self) -> str | None:
        """Which limit the last value breaks, for event messages: 'latency_ms 812 > 500'."""
        value = self.last_value
        if value is None:
            return None
        worst: _Limit | None = None
        for limit in self._limits:
            if limit.since is None:
                continue
            if worst is None or limit.severity.rank > worst.severity.rank:
                worst = limit
        if worst is None:
            return None
        name = self.thresholds.field or "value"
        op = ">" if worst.above else "<"
        text = f"{name} {_num(value)} {op} {_num(worst.limit)}"
        if self._for:
            text += f" for {format_duration(self._for)}"
        return text


def _num(value: float) -> str:
    return f"{value:g}"
