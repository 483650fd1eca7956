"""The `prometheus` step kind: one instant PromQL query, shown as a table of series.

The HTTP query API only reads, so the step is always read-only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Progress,
    Verdict,
)
from opstui.actions.context import ExecutionContext, StepProblem, connection_of
from opstui.config.kinds.prometheus import PrometheusConnection
from opstui.sources.base import ProbeError
from opstui.sources.prometheus import format_number, get_prometheus_client, parse_vector

MAX_ROWS = 200


def _table(series: list[tuple[dict[str, str], float]]) -> list[str]:
    """Aligned rows: one column per label (name first), then the value."""
    names = sorted({k for labels, _ in series for k in labels}, key=lambda k: (k != "__name__", k))
    header = [*names, "value"]
    rows = [[labels.get(n, "") for n in names] + [format_number(v)] for labels, v in series]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _render(result: Any) -> tuple[list[str], str]:
    if (
        isinstance(result, list)
        and len(result) == 2
        and isinstance(result[0], int | float)
        and not isinstance(result[0], bool)
    ):
        return [str(result[1])], f"scalar {result[1]}"
    if not isinstance(result, list):
        raise ProbeError("bad response: no result list")
    series = parse_vector(result)
    if not series:
        return ["(no series)"], "0 series"
    shown = series[:MAX_ROWS]
    lines = _table(shown)
    if len(series) > MAX_ROWS:
        lines.append(f"… {len(series) - MAX_ROWS} more series")
    count = len(series)
    return lines, f"{count} series" if count != 1 else "1 series"


class PrometheusExecutor(Executor):
    kind: ClassVar[str] = "prometheus"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        return Verdict(Classification.READ_ONLY, "a PromQL query only reads")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        try:
            name, connection = connection_of(step, ctx, PrometheusConnection, "prometheus")
        except StepProblem as exc:
            return Outcome(ok=False, summary=str(exc), error="config")
        client = get_prometheus_client(ctx.pool, name, connection)
        try:
            result = await client.query(str(step.rendered["query"]), step.timeout)
            lines, summary = _render(result)
        except ProbeError as exc:
            reason = exc.reason if not exc.hint else f"{exc.reason} ({exc.hint})"
            return Outcome(ok=False, summary=f"query failed: {reason}", error=reason)
        for line in lines:
            output(line)
        return Outcome(ok=True, summary=summary, output="\n".join(lines), data=result)
