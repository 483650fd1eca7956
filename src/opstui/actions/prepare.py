"""Turns a step's config into the concrete request of a PreparedStep (rendered, equivalent,
target), one function per kind. Pure: no I/O, no executor imports.

`rendered` keys per kind (what the executors read):
  http:       method, path, url (shown), headers (step headers, Secrets kept), json, expect_status
  redis:      argv, readonly (the config's claim or None)
  sql:        text, args, mutating
  ecs:        op, cluster, service, task, reason, count (int or None)
  shell:      argv, shell, cwd, env, readonly
  prometheus: query
  watch:      probe, until, timeout
  manual:     text
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from opstui.actions.conditions import parse_condition
from opstui.actions.templates import RenderError, UnsafeRender, render_text, render_value
from opstui.config.base import is_sensitive_header
from opstui.config.kinds.http import HttpConnection, check_host_header
from opstui.config.models import Config
from opstui.config.types import Secret, format_duration, redact, shown_json
from opstui.sources.http import join_url

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Rendered:
    rendered: dict[str, Any]
    equivalent: str
    target: str
    timeout: float


def _timeout(config: Config, step: Any) -> float:
    own = getattr(step, "timeout", None)
    if isinstance(own, int | float):
        return float(own)
    name = getattr(step, "connection", None)
    connection = config.connections.get(name) if isinstance(name, str) else None
    conn_timeout = getattr(connection, "timeout", None)
    return float(conn_timeout) if isinstance(conn_timeout, int | float) else DEFAULT_TIMEOUT


def shown_headers(
    base: Mapping[str, str | Secret], extra: Mapping[str, str | Secret]
) -> dict[str, str]:
    """`extra` merged over `base` (names case-insensitive), credentials as ***."""
    merged: dict[str, str | Secret] = dict(base)
    for name, value in extra.items():
        for existing in [k for k in merged if k.lower() == name.lower()]:
            del merged[existing]
        merged[name] = value
    return {
        name: redact(value) if isinstance(value, Secret) or not is_sensitive_header(name) else "***"
        for name, value in merged.items()
    }


def _http(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    connection = config.connections[step.connection]
    if not isinstance(connection, HttpConnection):
        raise RenderError(f"connection {step.connection!r} is not an http connection")
    path = render_text(step.path, ctx, "path")
    headers = {
        name: render_value(value, ctx, f"headers.{name}") for name, value in step.headers.items()
    }
    body = None
    if step.json_body is not None:
        body = render_value(step.json_body, ctx, "json", native=True)
    base = connection.base_url
    if isinstance(base, Secret) and base.missing is not None:
        # Its host is not known here, and nothing can be sent from here: Runner.unavailable
        # refuses with the reason; the client checks the origin where the URL is known.
        url = redact(base).rstrip("/") + "/" + path.lstrip("/")
    else:
        try:  # a templated path is checked here, before anything is sent or confirmed
            url = join_url(httpx.URL(redact(base)), path)
        except ValueError as exc:
            raise UnsafeRender(f"path: {exc}") from None
        pairs = [(k, None if isinstance(v, Secret) else str(v)) for k, v in headers.items()]
        for name, value in pairs:  # a CR/LF would smuggle a header nobody classified
            if value is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise UnsafeRender(f"headers.{name}: control characters in a header; refused")
        try:
            check_host_header(redact(base), pairs)
        except ValueError as exc:
            raise UnsafeRender(f"headers: {exc}") from None
    parts = ["curl"]
    if step.method != "GET":
        parts += ["-X", step.method]
    parts.append(url)
    for name, value in shown_headers(connection.headers, headers).items():
        parts += ["-H", f"{name}: {value}"]
    if body is not None:
        parts += ["-d", json.dumps(shown_json(body))]
    rendered = {
        "method": step.method,
        "path": path,
        "url": url,
        "headers": headers,
        "json": body,
        "expect_status": list(step.expect_status) if step.expect_status else None,
    }
    return Rendered(rendered, shlex.join(parts), f"{step.method} {url}", _timeout(config, step))



def _item(value: str | Secret, ctx: Mapping[str, Any], where: str) -> str | Secret:
    """A step's text item rendered; a Secret is kept as is (it is never a template)."""
    return value if isinstance(value, Secret) else render_text(value, ctx, where)


def _redis(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    argv = [_item(arg, ctx, f"command[{i}]") for i, arg in enumerate(step.command)]
    shown = [redact(arg) for arg in argv]
    connection = config.connections[step.connection]
    url = redact(getattr(connection, "url", ""))
    equivalent = (
        shlex.join(["redis-cli", "-u", url, *shown]) if url else shlex.join(["redis-cli", *shown])
    )
    target = shown[1] if len(shown) > 1 else f"{shown[0]} on {step.connection}"
    rendered = {"argv": argv, "command": argv, "readonly": step.readonly}
    return Rendered(rendered, equivalent, target, _timeout(config, step))


def _sql(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    args = [render_value(arg, ctx, f"args[{i}]", native=True) for i, arg in enumerate(step.args)]
    text = step.sql  # never a template: values go in as bound args, not spliced into SQL
    equivalent = " ".join(text.split())
    if args:
        bound = (f"${i + 1} = {shown_json(a)!r}" for i, a in enumerate(args))
        equivalent += "  -- " + ", ".join(bound)
    rendered = {"text": text, "args": args, "mutating": step.mutating}
    return Rendered(rendered, equivalent, step.connection, _timeout(config, step))


def _ecs(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    cluster = render_text(step.cluster, ctx, "cluster")
    service = render_text(step.service, ctx, "service") if step.service else None
    task = render_text(step.task, ctx, "task") if step.task else None
    reason = render_text(step.reason, ctx, "reason") if step.reason else None
    count: int | None = None
    if step.count is not None:
        raw = render_text(str(step.count), ctx, "count")
        try:
            count = int(float(raw))
        except ValueError:
            raise RenderError(f"count: expected an integer, got {raw!r}") from None
        if count < 0:
            raise RenderError(f"count: must not be negative, got {count}")
    op = step.op
    aws = ["aws", "ecs"]
    if op == "describe_services":
        aws += ["describe-services", "--cluster", cluster, "--services", service or ""]
    elif op == "list_tasks":
        aws += ["list-tasks", "--cluster", cluster, "--service-name", service or ""]
    elif op == "force_new_deployment":
        aws += [
            "update-service",
            "--cluster",
            cluster,
            "--service",
            service or "",
            "--force-new-deployment",
        ]
    elif op == "set_desired_count":
        aws += [
            "update-service",
            "--cluster",
            cluster,
            "--service",
            service or "",
            "--desired-count",
            str(count),
        ]
    else:
        aws += ["stop-task", "--cluster", cluster, "--task", task or ""]
        if reason:
            aws += ["--reason", reason]
    target = f"{cluster}/{task}" if op == "stop_task" else f"{cluster}/{service}"
    rendered = {
        "op": op,
        "cluster": cluster,
        "service": service,
        "task": task,
        "reason": reason,
        "count": count,
    }
    return Rendered(rendered, shlex.join(aws), target, _timeout(config, step))


def _shell(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    argv = [_item(arg, ctx, f"argv[{i}]") for i, arg in enumerate(step.argv)]
    cwd = render_text(step.cwd, ctx, "cwd") if step.cwd else None
    env = {k: _item(v, ctx, f"env.{k}") for k, v in step.env.items()}
    shown = [redact(arg) for arg in argv]  # a secret item shows *** where its ${VAR} was
    equivalent = shlex.join(shown)
    if step.shell:
        equivalent = shlex.join(["/bin/sh", "-c", shown[0]])
    if env:  # values may carry credentials: names only
        equivalent = " ".join(f"{k}=***" for k in env) + " " + equivalent
    if cwd:
        equivalent = f"(cd {shlex.quote(cwd)} && {equivalent})"
    target = str(step.title) if step.shell else shown[0]
    rendered = {
        "argv": argv,
        "shell": step.shell,
        "cwd": cwd,
        "env": env,
        "readonly": step.readonly,
    }
    timeout = float(step.timeout) if step.timeout is not None else 60.0
    return Rendered(rendered, equivalent, target, timeout)


def _prometheus(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    query = render_text(step.query, ctx, "query")
    rendered = {"query": query}
    return Rendered(rendered, query, step.connection, _timeout(config, step))


def _watch(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    return watch_rendered(step.watch, step.until, float(step.timeout or 600.0))


def watch_rendered(probe: str, until: str, timeout: float) -> Rendered:
    try:
        parse_condition(until)
    except ValueError as exc:
        raise RenderError(str(exc)) from None
    equivalent = f"watch {probe} until {until} (timeout {format_duration(timeout)})"
    rendered = {"probe": probe, "until": until, "timeout": timeout}
    return Rendered(rendered, equivalent, probe, timeout)


def _manual(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    text = str(step.text or step.title)
    return Rendered({"text": text}, f"(manual) {text}", str(step.title), DEFAULT_TIMEOUT)


RENDERERS = {
    "http": _http,
    "redis": _redis,
    "sql": _sql,
    "ecs": _ecs,
    "shell": _shell,
    "prometheus": _prometheus,
    "watch": _watch,
    "manual": _manual,
}


def render_step(config: Config, step: Any, ctx: Mapping[str, Any]) -> Rendered:
    """The step's concrete request; RenderError (one line) when a template fails."""
    renderer = RENDERERS.get(str(step.kind))
    if renderer is None:
        raise RenderError(f"unknown step kind {step.kind!r}")
    return renderer(config, step, ctx)
