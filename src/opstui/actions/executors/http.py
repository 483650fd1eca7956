"""The `http` step kind: any method on an http connection, JSON body, expected status.

GET, HEAD and OPTIONS are read-only; every other method changes state (DESIGN.md section 6).
The request goes through the connection's shared HttpClient (its headers, TLS and timeout),
with the step's headers merged over the connection's.
"""

from __future__ import annotations

import json
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
from opstui.actions.context import ExecutionContext, StepProblem, connection_of
from opstui.config.kinds.http import HttpConnection
from opstui.config.types import reveal_json
from opstui.sources.base import ProbeError
from opstui.sources.http import get_http_client

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OUTPUT_LIMIT = 64 * 1024
"""Characters of a response body kept for the output pane."""


def _body_text(body: bytes, content_type: str | None) -> str:
    text = body.decode("utf-8", "replace")
    if "json" in (content_type or "") or text.lstrip()[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return text


class HttpExecutor(Executor):
    kind: ClassVar[str] = "http"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        method = str(step.rendered["method"]).upper()
        if method in SAFE_METHODS:
            return Verdict(Classification.READ_ONLY, f"{method} does not change state")
        return Verdict(Classification.MUTATING, f"{method} changes state")

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
            name, connection = connection_of(step, ctx, HttpConnection, "http")
        except StepProblem as exc:
            return Outcome(ok=False, summary=str(exc), error="config")
        method = str(step.rendered["method"]).upper()
        if read_only and method not in SAFE_METHODS:  # the runner never asks; refuse anyway
            return Outcome(ok=False, summary=f"{method} refused in read-only", error="read-only")
        client = get_http_client(ctx.pool, name, connection)
        headers = dict(step.rendered.get("headers") or {})
        body = step.rendered.get("json")
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, default=reveal_json).encode()  # a ${SECRET}: sent here
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        try:
            response = await client.request(
                method,
                str(step.rendered["path"]),
                headers=headers,
                time_limit=step.timeout,
                content=content,
            )
        except ProbeError as exc:
            reason = exc.reason if not exc.hint else f"{exc.reason} ({exc.hint})"
            return Outcome(ok=False, summary=f"{method} failed: {reason}", error=reason)
        expected = step.rendered.get("expect_status")
        code = response.status_code
        ok = code in expected if expected else 200 <= code < 300
        latency = f"{response.latency_ms:.0f} ms"
        head = f"HTTP {code} {response.reason}".rstrip()
        lines = [
            head,
            f"content-type: {response.content_type or '-'}",
            f"length: {len(response.body)} bytes{' (truncated)' if response.truncated else ''}",
            f"time: {latency}",
            "",
        ]
        text = _body_text(response.body, response.content_type)
        if len(text) > OUTPUT_LIMIT:
            text = text[:OUTPUT_LIMIT] + f"\n… ({len(text) - OUTPUT_LIMIT} more characters)"
        full = "\n".join([*lines, text])
        for line in full.splitlines():
            output(line)
        summary = f"HTTP {code} in {latency}"
        if not ok:
            wanted = ", ".join(map(str, expected)) if expected else "2xx"
            return Outcome(
                ok=False,
                summary=f"{summary} (expected {wanted})",
                output=full,
                error=f"HTTP {code}",
                data={"status": code},
            )
        return Outcome(ok=True, summary=summary, output=full, data={"status": code})
