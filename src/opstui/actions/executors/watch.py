"""The `watch` step kind (and every action's `then`): poll a probe until a condition holds.

Each round asks the ProbeReader for a fresh snapshot (a poll that started after the request),
checks the `until` condition, then waits one probe interval. Progress says where the tracked
value started, where it is, the target and the time left: "waiting 12,408 -> 3,120 (target
< 1000), 2m10s left". Time is the context's clock, so tests drive it with a ManualClock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Progress,
    Verdict,
)
from opstui.actions.conditions import Condition, ConditionError, parse_condition, tracked_value
from opstui.actions.context import ExecutionContext
from opstui.config.types import format_duration
from opstui.engine.clock import Clock
from opstui.engine.snapshot import ProbeSnapshot

T = TypeVar("T")
MIN_PAUSE = 0.5


def format_value(value: Any) -> str:
    """12408 -> '12,408'; 0.25 -> '0.25'; text as is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?" if value is None else str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def progress_line(
    condition: Condition, first: Any, snapshot: ProbeSnapshot | None, left: float
) -> str:
    primary = condition.primary()
    tracked = tracked_value(condition, snapshot)
    remaining = f"{format_duration(max(0.0, left))} left"
    if primary is None or tracked is None:
        state = snapshot.state.value if snapshot is not None else "no reading"
        return f"{condition.source}: not yet (state {state}), {remaining}"
    name, now = tracked
    literal = primary.right.literal
    shown = f"{literal:g}" if isinstance(literal, float) else str(literal)
    target = f"{primary.op} {shown}"
    if first is None or first == now:
        return f"{name} {format_value(now)} (target {target}), {remaining}"
    return f"{name} {format_value(first)} -> {format_value(now)} (target {target}), {remaining}"


async def _race(
    aw: Awaitable[T], progress: Progress, clock: Clock, seconds: float
) -> tuple[str, T | None]:
    """('done', value), ('cancel', None) or ('timeout', None), whichever comes first."""
    task = asyncio.ensure_future(aw)
    cancel = asyncio.ensure_future(progress.cancel.wait())
    timer = asyncio.ensure_future(clock.sleep(max(0.0, seconds)))
    try:
        done, _ = await asyncio.wait({task, cancel, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, cancel, timer):
            if not pending.done():
                pending.cancel()
    if task in done:
        return "done", task.result()
    if cancel in done:
        return "cancel", None
    return "timeout", None


class WatchExecutor(Executor):
    kind: ClassVar[str] = "watch"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        return Verdict(Classification.READ_ONLY, "watching a probe only reads")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        probe_id = str(step.rendered["probe"])
        try:
            condition = parse_condition(str(step.rendered["until"]))
            probe = ctx.config.probe(probe_id)
        except (ConditionError, KeyError) as exc:
            return Outcome(ok=False, summary=f"cannot watch: {exc}", error=str(exc))
        timeout = float(step.rendered.get("timeout") or step.timeout)
        pause = max(MIN_PAUSE, ctx.config.interval_of(probe))
        clock = ctx.clock
        started = clock.monotonic()
        deadline = started + timeout
        first: Any = None
        snapshot: ProbeSnapshot | None = None
        lines: list[str] = []

        def say(line: str) -> None:
            lines.append(line)
            progress.message = line
            output(line)

        while True:
            left = deadline - clock.monotonic()
            try:
                how, fresh = await _race(ctx.probes.fresh(probe_id), progress, clock, left)
            except Exception as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                return Outcome(
                    ok=False,
                    summary=f"watch failed: {reason}",
                    error=reason,
                    output="\n".join(lines),
                )
            if how == "done" and fresh is not None:
                snapshot = fresh
                tracked = tracked_value(condition, snapshot)
                if first is None and tracked is not None:
                    first = tracked[1]
                elapsed = clock.monotonic() - started
                if condition.holds(snapshot):
                    now = format_value(tracked[1]) if tracked is not None else snapshot.state.value
                    say(f"{condition.source}: holds after {format_duration(elapsed)} ({now})")
                    progress.fraction = 1.0
                    return Outcome(
                        ok=True,
                        summary=f"{condition.source} after {format_duration(elapsed)}",
                        output="\n".join(lines),
                        data={"first": first, "last": tracked and tracked[1]},
                        duration=elapsed,
                    )
                missing = condition.missing(snapshot)
                line = progress_line(condition, first, snapshot, deadline - clock.monotonic())
                if snapshot.error:
                    line += f" [probe: {snapshot.error}]"
                elif missing:
                    line += f" [no field {', '.join(missing)}]"
                progress.fraction = min(1.0, elapsed / timeout) if timeout else None
                say(line)
                how, _ = await _race(
                    clock.sleep(pause), progress, clock, deadline - clock.monotonic()
                )
                if how == "done":
                    continue
            if how == "cancel":
                say("watch cancelled")
                return Outcome(
                    ok=False,
                    summary="cancelled",
                    error="cancelled",
                    cancelled=True,
                    output="\n".join(lines),
                )
            if how == "timeout" or clock.monotonic() >= deadline:
                tracked = tracked_value(condition, snapshot)
                last = format_value(tracked[1]) if tracked is not None else "no value"
                summary = (
                    f"timed out after {format_duration(timeout)}: {condition.source} "
                    f"not reached (last {last})"
                )
                say(summary)
                return Outcome(ok=False, summary=summary, error="timeout", output="\n".join(lines))
