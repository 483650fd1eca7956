"""Runbooks in the config: symptoms, read-only diagnose steps, keybound actions.

A step is one executable thing of a `kind` (http, redis, sql, ecs, shell, prometheus, watch)
or a `manual` checklist item a person ticks. Actions are steps with a key, typed params and a
danger level. Whether a step mutates is NOT declared here and trusted: the actions runner
classifies every step from the step itself (and, for Redis, from the server's COMMAND INFO);
`readonly`/`mutating` keys below are claims the runner may overrule, never weaken.

Strings marked "template" are rendered by a sandboxed Jinja2 environment with the current
readings (`probes.<id>.value`, `probes.<id>.fields.<name>`, `probes.<id>.state`) and the
action's `params`; the rendered text is type-checked against the param or field it fills.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from opstui.config.base import IDENT, Headers, Model, ReferenceProblem, raise_all
from opstui.config.types import (
    Duration,
    PositiveDuration,
    Secret,
    StepJson,
    StepText,
    StepValue,
    Text,
)

Danger = Literal["low", "medium", "high"]
Severity = Literal["info", "warning", "critical"]
ParamType = Literal["int", "float", "str", "bool", "choice"]


class ParamSpec(Model):
    """One typed parameter of an action, editable in the confirm modal."""

    type: ParamType = Field(description="int, float, str, bool or choice")
    title: str | None = Field(None, description="label in the confirm modal; default: the name")
    default: Any = Field(
        None, description="a literal, or a template like '{{ probes.ecs.fields.desired * 2 }}'"
    )
    min: float | None = Field(None, description="int/float: smallest value allowed")
    max: float | None = Field(None, description="int/float: largest value allowed")
    pattern: str | None = Field(None, description="str: a regular expression the value must match")
    choices: list[str] | None = Field(None, description="choice: the values allowed")
    required: bool = Field(True, description="a value must be given (or defaulted)")

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice param needs `choices`")
        if self.type != "choice" and self.choices is not None:
            raise ValueError("`choices` is only for type choice")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must not exceed max ({self.max:g})")
        if self.pattern is not None:
            import re

            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from None
        return self


class Then(Model):
    """After an action: watch a probe until a condition holds, or give up after `timeout`."""

    watch: str = Field(description="probe id to watch")
    until: str = Field(description="condition on that probe: 'waiting < 1000', 'state == ok'")
    timeout: PositiveDuration = Field(600.0, description="give up (and say so) after this long")


class StepCommon(Model):
    """What every step has, diagnose or action."""

    title: Text = Field(description="what the step does, in the runbook's words")
    timeout: PositiveDuration | None = Field(None, description="default: the connection's")


class HttpStep(StepCommon):
    kind: Literal["http"]
    connection: str
    method: Literal["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: Text = Field(description="template; joined to the connection's base_url")
    headers: Headers = Field(default_factory=dict)
    json_body: StepJson = Field(
        None, alias="json", description="JSON body; strings are templates or hold a ${SECRET}"
    )
    expect_status: list[int] | None = Field(None, description="default: any 2xx")


class RedisStep(StepCommon):
    kind: Literal["redis"]
    connection: str
    command: list[StepText] = Field(
        min_length=1,
        description="argv, each item a template or holding a ${SECRET} (sent as is, shown ***); "
        "the command name (first item) must be literal",
    )
    readonly: bool | None = Field(
        None, description="a claim only: the server's COMMAND INFO flags decide"
    )

    @model_validator(mode="after")
    def _literal_name(self) -> RedisStep:
        if isinstance(self.command[0], Secret):
            raise ValueError(
                "the command name (first item of `command`) must be literal text, not a "
                "${ENV} secret: its classification must stay visible"
            )
        return self


class SqlStep(StepCommon):
    kind: Literal["sql"]
    connection: str
    sql: str = Field(description="exactly one SQL statement; $1, $2 ... bound from `args`")
    args: list[StepValue] = Field(
        default_factory=list,
        description="bind values; strings are templates or hold a ${SECRET} (sent, shown ***)",
    )
    mutating: bool = Field(
        False,
        description="a claim only: the statement and the server's catalog decide; true keeps "
        "even a provable read behind a confirmation",
    )

    @field_validator("sql")
    @classmethod
    def _one_statement(cls, value: str) -> str:
        from opstui.sqlcheck import parse_statement

        parse_statement(value)  # SqlProblem is a ValueError: FILE:LINE: ...sql: why
        return value


EcsOp = Literal[
    "describe_services", "list_tasks", "force_new_deployment", "set_desired_count", "stop_task"
]


class EcsStep(StepCommon):
    kind: Literal["ecs"]
    connection: str
    op: EcsOp
    cluster: Text
    service: Text | None = Field(None, description="all ops but stop_task")
    task: Text | None = Field(None, description="stop_task: task ARN or id (template)")
    reason: Text | None = Field(None, description="stop_task: reason recorded by ECS")
    count: str | int | None = Field(
        None, description="set_desired_count: a number or a template (usually '{{ params.count }}')"
    )

    @model_validator(mode="after")
    def _op_fields(self) -> EcsStep:
        if self.op == "stop_task" and not self.task:
            raise ValueError("stop_task needs `task`")
        if self.op != "stop_task" and not self.service:
            raise ValueError(f"{self.op} needs `service`")
        if self.op == "set_desired_count" and self.count is None:
            raise ValueError("set_desired_count needs `count`")
        return self


class ShellStep(StepCommon):
    kind: Literal["shell"]
    argv: list[StepText] = Field(
        min_length=1,
        description="program and arguments, each a template; a ${SECRET} (no default) reaches "
        "the process and is shown and audited as ***; ${VAR:-default} is plain text",
    )
    shell: bool = Field(False, description="run through /bin/sh -c (argv must be one string)")
    readonly: bool = Field(False, description="declared read-only (shown as such)")
    cwd: Text | None = None
    env: dict[str, StepText] = Field(
        default_factory=dict, description="extra environment; ${SECRET} values shown as ***"
    )

    @model_validator(mode="after")
    def _shell_argv(self) -> ShellStep:
        if self.shell and len(self.argv) != 1:
            raise ValueError("with shell: true, argv must be a single command string")
        return self


class PrometheusStep(StepCommon):
    kind: Literal["prometheus"]
    connection: str
    query: str = Field(description="PromQL (template)")


class WatchStep(StepCommon):
    kind: Literal["watch"]
    watch: str = Field(description="probe id")
    until: str = Field(description="condition, e.g. 'waiting < 1000'")
    timeout: PositiveDuration | None = Field(600.0, description="give up after this long")


class ManualStep(StepCommon):
    """A step no machine can do (open Sentry, call the lead): ticked by the operator, recorded."""

    kind: Literal["manual"]
    text: Text | None = Field(None, description="what to do, in full")


StepConfig = Annotated[
    HttpStep | RedisStep | SqlStep | EcsStep | ShellStep | PrometheusStep | WatchStep | ManualStep,
    Field(discriminator="kind"),
]


class ActionExtras(Model):
    """The keys an action adds to its step."""

    id: str = Field(pattern=IDENT, description="`opstui run RUNBOOK ACTION` names it")
    key: str | None = Field(
        None, min_length=1, max_length=1, description="one key; mutating actions upper-case"
    )
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    danger: Danger = Field("low", description="high: the operator types the target's name")
    verb: str | None = Field(None, description="the confirm button's word: Scale, Restart...")
    then: Then | None = None


class HttpAction(HttpStep, ActionExtras):
    pass


class RedisAction(RedisStep, ActionExtras):
    pass


class SqlAction(SqlStep, ActionExtras):
    pass


class EcsAction(EcsStep, ActionExtras):
    pass


class ShellAction(ShellStep, ActionExtras):
    pass


class PrometheusAction(PrometheusStep, ActionExtras):
    pass


class WatchAction(WatchStep, ActionExtras):
    pass


class ManualAction(ManualStep, ActionExtras):
    pass


ActionConfig = Annotated[
    HttpAction
    | RedisAction
    | SqlAction
    | EcsAction
    | ShellAction
    | PrometheusAction
    | WatchAction
    | ManualAction,
    Field(discriminator="kind"),
]


class Runbook(Model):
    """A titled procedure for one symptom: the seeds' "Issue: ..." sections."""

    id: str = Field(pattern=IDENT)
    title: Text
    severity: Severity = "warning"
    symptoms: Text = Field("", description="what the operator sees; shown first")
    probes: list[str] = Field(
        default_factory=list, description="panels this runbook is for (plus probes' `runbook:`)"
    )
    diagnose: list[StepConfig] = Field(
        default_factory=list, description="read-only steps, run by themselves when opened"
    )
    actions: list[ActionConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids_and_keys(self) -> Runbook:
        problems: list[ReferenceProblem] = []
        ids: set[str] = set()
        keys: set[str] = set()
        for index, action in enumerate(self.actions):
            if action.id in ids:
                problems.append(
                    ReferenceProblem(("actions", index, "id"), f"duplicate action id {action.id!r}")
                )
            ids.add(action.id)
            if action.key is not None:
                if action.key in keys:
                    problems.append(
                        ReferenceProblem(
                            ("actions", index, "key"), f"key {action.key!r} is used twice"
                        )
                    )
                keys.add(action.key)
        raise_all(problems)
        return self


def step_connection(step: Any) -> str | None:
    """The connection a step names, if its kind has one."""
    connection = getattr(step, "connection", None)
    return connection if isinstance(connection, str) else None


RUNBOOK_KIND_CONNECTIONS: dict[str, str] = {
    "http": "http",
    "redis": "redis",
    "sql": "postgres",
    "ecs": "aws",
    "prometheus": "prometheus",
}
"""Which connection kind each step kind needs."""


__all__ = [
    "ActionConfig",
    "Danger",
    "Duration",
    "ParamSpec",
    "Runbook",
    "StepConfig",
    "Then",
]
