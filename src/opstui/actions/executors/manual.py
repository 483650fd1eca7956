"""The `manual` step kind: something only a person can do; the operator ticks it."""

from __future__ import annotations

from typing import ClassVar

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Progress,
    Verdict,
)
from opstui.actions.context import ExecutionContext


class ManualExecutor(Executor):
    kind: ClassVar[str] = "manual"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        return Verdict(
            Classification.READ_ONLY, "a person does it; ticking it is recorded (checklist)"
        )

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        text = str(step.rendered.get("text") or step.title)
        output(text)
        return Outcome(
            ok=False,
            summary="needs a person: do it, then tick it on the checklist",
            output=text,
            data={"manual": True},
        )
