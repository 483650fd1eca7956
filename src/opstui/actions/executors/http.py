"""The `http` step kind: any method on an http connection, JSON body, expected status.

GET, HEAD and OPTIONS are read-only; every other method changes state, and so does a safe
method that names another through an override header or a `_method` parameter (DESIGN.md
section 6). The request goes through the connection's shared HttpClient (its headers, TLS and
timeout), with the step's headers merged over the connection's; it stays on the connection's
origin, and only same-origin redirects are followed (sources/http.py).
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
from opstui.config.kinds.http import HttpConnection, method_override
from opstui.config.types import Secret, reveal_json
from opstui.sources.base import ProbeError
from opstui.sources.http import get_http_client

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REDIRECTS = 5
"""Same-origin redirects a step follows; one to another origin is never followed."""
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


def _override(step: PreparedStep, ctx: ExecutionContext) -> str | None:
    """Why the request claims another method (override header in the step's or the
    connection's headers, `_method` in the query or body), else None. A secret header value
    is passed as unreadable, so it counts as an override when its name is one."""
    headers: list[tuple[str, str | None]] = []
    connection = ctx.config.connections.get(step.connection) if step.connection else None
    own = step.rendered.get("headers") or {}
    for source in (getattr(connection, "headers", None) or {}, own):
        for name, value in source.items():
            headers.append((str(name), None if isinstance(value, Secret) else str(value)))
    body = step.rendered.get("json")
    content = None if body is None else json.dumps(body, default=str).encode()
    return method_override(headers, str(step.rendered.get("path") or ""), content)


class HttpExecutor(Executor):
    kind: ClassVar[str] = "http"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        method = str(step.rendered["method"]).upper()
        if method not in SAFE_METHODS:
            return Verdict(Classification.MUTATING, f"{method} changes state")
        override = _override(step, ctx)
        if override is not None:
            return Verdict(Classification.MUTATING, override)
        return Verdict(Classification.READ_ONLY, f"{method} does not change state")

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
        if read_only:  # the runner never asks; refuse anyway
            why = f"{method} changes state" if method not in SAFE_METHODS else _override(step, ctx)
            if why is not None:
                return Outcome(ok=False, summary=f"refused in read-only: {why}", error="read-only")
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
                redirects=MAX_REDIRECTS,
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
