"""The `ecs` probe kind: one ECS service's task counts, rollout, events and stopped tasks.

Counts and the rollout come from describe_services, batched per cluster by the connection's
AwsClient. Stopped tasks come from list_tasks(desiredStatus=STOPPED) + describe_tasks; the
describe is the expensive part, so it runs again only when the set of stopped task ARNs
changed. A missing service is an error ("service not found"), not crit: the collector could
not tell how the service is doing. running < desired is left to thresholds (`value:
running_ratio`, `below: {warn: 1, crit: 0.5}`), never hard-coded here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.config.kinds.aws import AwsConnection, EcsProbe
from opstui.config.types import format_duration, redact
from opstui.sources.aws_client import AwsClient, get_ecs_client
from opstui.sources.base import FieldValue, ProbeError, Reading, Source, Table

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

EVENTS_SHOWN = 5
LIST_LIMIT = 100
"""Stopped task ARNs read per poll (list_tasks' page and describe_tasks' limit)."""
TIME_FORMAT = "%m-%d %H:%M:%S"


class EcsSource(Source):
    """One ecs probe over its connection's shared AwsClient."""

    kind: ClassVar[str] = "ecs"

    @classmethod
    def fields(cls, probe: ProbeConfig) -> frozenset[str] | None:
        return frozenset(
            {
                *("running", "desired", "pending", "running_ratio", "rollout", "deployments"),
                *("status", "failed_tasks", "stopped_tasks", "task_definition"),
            }
        )

    def __init__(self, probe: EcsProbe, connection: AwsConnection, client: AwsClient) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self._stopped_arns: tuple[str, ...] | None = None
        self._stopped_rows: tuple[StoppedTask, ...] = ()
        client.want(probe.cluster, probe.service)

    @classmethod
    def build(cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool) -> EcsSource:
        if not isinstance(probe, EcsProbe):
            raise TypeError(f"EcsSource needs an ecs probe, got {type(probe).__name__}")
        if not isinstance(connection, AwsConnection):
            raise TypeError(f"an ecs probe needs an aws connection, got {connection.kind}")
        return cls(probe, connection, get_ecs_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self.timeout):
                service = await self.client.describe_service(
                    self.probe.cluster, self.probe.service, time_limit=self.timeout
                )
                latency_ms = (asyncio.get_running_loop().time() - started) * 1000.0
                notes: tuple[str, ...] = ()
                try:
                    stopped, stopped_total = await self._stopped_tasks()
                except ProbeError as exc:  # the counts still stand (e.g. no ecs:ListTasks)
                    stopped, stopped_total = (), 0
                    notes = (f"stopped tasks unavailable: {exc.reason}",)
        except TimeoutError as exc:
            raise ProbeError(f"timeout after {format_duration(self.timeout)}") from exc
        reading = service_reading(
            service,
            self.probe.value,
            stopped=stopped,
            stopped_total=stopped_total,
            latency_ms=latency_ms,
        )
        return replace(reading, notes=reading.notes + notes) if notes else reading

    async def _stopped_tasks(self) -> tuple[tuple[StoppedTask, ...], int]:
        """The last `stopped_tasks` stopped tasks, newest first, and how many were listed."""
        if self.probe.stopped_tasks == 0:
            return (), 0
        listed = await self.client.call(
            "list_tasks",
            cluster=self.probe.cluster,
            serviceName=self.probe.service,
            desiredStatus="STOPPED",
            maxResults=LIST_LIMIT,
            time_limit=self.timeout,
        )
        arns = tuple(sorted(listed.get("taskArns") or ()))
        if arns != self._stopped_arns:
            rows: tuple[StoppedTask, ...] = ()
            if arns:
                described = await self.client.call(
                    "describe_tasks",
                    cluster=self.probe.cluster,
                    tasks=list(arns),
                    time_limit=self.timeout,
                )
                rows = newest_stopped(described.get("tasks") or ())
            self._stopped_arns, self._stopped_rows = arns, rows
        return self._stopped_rows[: self.probe.stopped_tasks], len(arns)

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "cluster": self.probe.cluster,
            "service": self.probe.service,
            "region": self.connection.region,
            "credentials": self.client.credentials_source,
            "timeout": format_duration(self.timeout),
            "value": self.probe.value,
        }
        if self.connection.endpoint_url is not None:
            facts["endpoint"] = redact(self.connection.endpoint_url)
        return facts


# --- reading a service ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoppedTask:
    """One stopped task as the table shows it: when, and why in one line."""

    stopped_at: datetime | None
    reason: str


def newest_stopped(tasks: Sequence[Mapping[str, Any]]) -> tuple[StoppedTask, ...]:
    """Described tasks as StoppedTasks, newest first (those without stoppedAt last)."""
    rows = [StoppedTask(_utc(task.get("stoppedAt")), stop_reason(task)) for task in tasks]
    epoch = datetime.min.replace(tzinfo=UTC)
    return tuple(sorted(rows, key=lambda r: r.stopped_at or epoch, reverse=True))


def stop_reason(task: Mapping[str, Any]) -> str:
    """stoppedReason, the stopCode, and the first container that says why it stopped."""
    parts: list[str] = []
    reason = str(task.get("stoppedReason") or "").strip()
    if reason:
        parts.append(reason)
    code = task.get("stopCode")
    if code and code not in reason:
        parts.append(f"[{code}]")
    for container in task.get("containers") or ():
        said: list[str] = []
        if container.get("reason"):
            said.append(str(container["reason"]))
        exit_code = container.get("exitCode")
        if isinstance(exit_code, int) and exit_code != 0:
            said.append(f"exit {exit_code}")
        if said:
            parts.append(f"{container.get('name') or 'container'}: {', '.join(said)}")
            break
    return " ".join(parts) or "no reason given"


def service_reading(
    service: Mapping[str, Any],
    value_key: str,
    *,
    stopped: Sequence[StoppedTask] = (),
    stopped_total: int = 0,
    latency_ms: float | None = None,
) -> Reading:
    """A Reading from one describe_services entry plus its stopped tasks."""
    running = int(service.get("runningCount") or 0)
    desired = int(service.get("desiredCount") or 0)
    pending = int(service.get("pendingCount") or 0)
    deployments = list(service.get("deployments") or ())
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    rollout = str(primary.get("rolloutState") or "UNKNOWN") if primary else "UNKNOWN"
    status = str(service.get("status") or "UNKNOWN")
    task_def = _task_definition(
        (primary or {}).get("taskDefinition") or service.get("taskDefinition")
    )
    ratio = running / desired if desired > 0 else 1.0
    fields: dict[str, FieldValue] = {
        "running": running,
        "desired": desired,
        "pending": pending,
        "running_ratio": ratio,
        "rollout": rollout,
        "deployments": len(deployments),
        "status": status,
        "failed_tasks": int((primary or {}).get("failedTasks") or 0),
        "stopped_tasks": stopped_total,
    }
    if task_def:
        fields["task_definition"] = task_def
    facts: list[tuple[str, str]] = [
        ("running", f"{running}/{desired}"),
        ("pending", str(pending)),
        ("rollout", rollout),
    ]
    if len(deployments) > 1:
        facts.append(("deployments", str(len(deployments))))
    if task_def:
        facts.append(("task def", task_def))
    if status != "ACTIVE":
        facts.append(("status", status))
    notes: list[str] = []
    if rollout == "FAILED":
        why = str((primary or {}).get("rolloutStateReason") or "").strip()
        notes.append(f"rollout FAILED: {why}" if why else "rollout FAILED")
    if status == "DRAINING":
        notes.append("service is DRAINING (being deleted)")
    elif status == "INACTIVE":
        notes.append("service is INACTIVE (deleted)")
    number = fields[value_key]
    return Reading(
        value=float(number) if isinstance(number, int | float) else None,
        fields=fields,
        latency_ms=latency_ms,
        facts=tuple(facts),
        notes=tuple(notes),
        table=_table(service.get("events") or (), stopped, stopped_total),
    )


def _table(
    events: Sequence[Mapping[str, Any]], stopped: Sequence[StoppedTask], stopped_total: int
) -> Table:
    """Latest events and stopped tasks in one compact time/what table, newest first."""
    rows: list[tuple[datetime | None, str]] = [
        (_utc(event.get("createdAt")), " ".join(str(event.get("message") or "").split()))
        for event in list(events)[:EVENTS_SHOWN]
    ]
    rows += [(task.stopped_at, f"task stopped: {task.reason}") for task in stopped]
    epoch = datetime.min.replace(tzinfo=UTC)
    rows.sort(key=lambda row: row[0] or epoch, reverse=True)
    shown = len(rows)
    total = len(events) + max(stopped_total, len(stopped))
    return Table(
        columns=("time (UTC)", "what"),
        rows=tuple((_when(when), what) for when, what in rows),
        title="events and stopped tasks",
        total_rows=total if total > shown else None,
    )


def _utc(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _when(value: datetime | None) -> str:
    return value.strftime(TIME_FORMAT) if value else "-"


def _task_definition(arn: object) -> str | None:
    """`family:revision` from a task definition ARN."""
    if not arn:
        return None
    return str(arn).rsplit("/", 1)[-1]
