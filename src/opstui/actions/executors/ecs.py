"""The `ecs` step kind: describe and list (read-only); scale, redeploy, stop a task (mutating).

Classification is by op alone (DESIGN.md section 6): describe_services and list_tasks only
read; every other op changes the service. Calls go through the connection's shared AwsClient
(the one the ecs probes use), each under the step's timeout. Previews read the service or the
task first, so the confirm modal can say "desired 4 -> 8 (running 4, pending 0)".
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Preview,
    Progress,
    Verdict,
)
from opstui.actions.cancel import until_cancelled
from opstui.actions.context import ExecutionContext, StepProblem, connection_of
from opstui.config.kinds.aws import AwsConnection
from opstui.config.types import redact
from opstui.sources.aws_client import AwsClient, get_ecs_client, match_services
from opstui.sources.base import ProbeError

READ_OPS = frozenset({"describe_services", "list_tasks"})
MUTATING_OPS = frozenset({"force_new_deployment", "set_desired_count", "stop_task"})
MAX_TASKS = 100
"""describe_tasks' limit: list_tasks shows at most this many tasks."""
EVENTS_SHOWN = 5



class EcsExecutor(Executor):
    """Runs one ECS op of `rendered` (op, cluster, service, task, reason, count)."""

    kind: ClassVar[str] = "ecs"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        op = str(step.rendered.get("op"))
        if op in READ_OPS:
            return Verdict(Classification.READ_ONLY, f"ECS {op} only reads")
        if op in MUTATING_OPS:
            return Verdict(Classification.MUTATING, f"ECS {op} changes the service")
        return Verdict(Classification.MUTATING, f"unknown ECS op {op!r}: treated as mutating")

    async def preview(self, step: PreparedStep, ctx: ExecutionContext) -> Preview | None:
        r = step.rendered
        op = str(r.get("op"))
        if op not in MUTATING_OPS:
            return None
        try:
            client = client_of(step, ctx)
            if op == "stop_task":
                task = await describe_task(client, cluster_of(r), task_of(r), step.timeout)
                return Preview((task_line(task),))
            service = await describe_service(client, cluster_of(r), service_of(r), step.timeout)
            if op == "set_desired_count":
                desired = service.get("desiredCount", "?")
                return Preview(
                    (
                        f"desired {desired} -> {count_of(r)} (running "
                        f"{service.get('runningCount', '?')}, pending "
                        f"{service.get('pendingCount', '?')})",
                    )
                )
            rollout = primary(service).get("rolloutState") or "unknown"
            return Preview(
                (
                    f"new deployment of {short(str(service.get('taskDefinition', '?')))}; "
                    f"current rollout {rollout}, running {service.get('runningCount', '?')}",
                )
            )
        except StepProblem as exc:
            return Preview((), error=str(exc))
        except ProbeError as exc:
            return Preview((), error=f"preview failed: {exc.reason}")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        start = ctx.clock.monotonic()
        op = str(step.rendered.get("op"))
        try:
            if read_only and op not in READ_OPS:
                raise StepProblem(f"refused: ECS {op} is not read-only")
            client = client_of(step, ctx)
            done = await until_cancelled(self._run(op, client, step), progress)
        except (StepProblem, ProbeError) as exc:
            reason = exc.reason if isinstance(exc, ProbeError) else str(exc)
            return Outcome(False, reason, error=reason, duration=ctx.clock.monotonic() - start)
        duration = ctx.clock.monotonic() - start
        if done is None:
            return Outcome(False, "cancelled", cancelled=True, duration=duration)
        summary, text, data = done
        output(text)
        return Outcome(True, summary, output=text, duration=duration, data=data)

    async def _run(self, op: str, client: AwsClient, step: PreparedStep) -> tuple[str, str, Any]:
        r, limit = step.rendered, step.timeout
        cluster = cluster_of(r)
        if op == "describe_services":
            service = await describe_service(client, cluster, service_of(r), limit)
            return service_summary(service), service_text(service), service
        if op == "list_tasks":
            tasks = await list_tasks(client, cluster, service_of(r), limit)
            noun = "task" if len(tasks) == 1 else "tasks"
            return f"{len(tasks)} {noun}", tasks_text(tasks), tasks
        if op == "set_desired_count":
            name, count = service_of(r), count_of(r)
            before = await describe_service(client, cluster, name, limit)
            response = await client.call(
                "update_service",
                cluster=cluster,
                service=name,
                desiredCount=count,
                time_limit=limit,
            )
            after = response.get("service") or {}
            summary = f"desired {before.get('desiredCount', '?')} -> {after.get('desiredCount')}"
            return summary, service_text(after), after
        if op == "force_new_deployment":
            response = await client.call(
                "update_service",
                cluster=cluster,
                service=service_of(r),
                forceNewDeployment=True,
                time_limit=limit,
            )
            after = response.get("service") or {}
            deployment = primary(after)
            summary = (
                f"new deployment {deployment.get('id', '?')} of "
                f"{short(str(after.get('taskDefinition', '?')))}"
            )
            return summary, service_text(after), after
        if op == "stop_task":
            response = await client.call(
                "stop_task",
                cluster=cluster,
                task=task_of(r),
                reason=str(r.get("reason") or "stopped with opstui"),
                time_limit=limit,
            )
            task = response.get("task") or {}
            summary = (
                f"task {short(str(task.get('taskArn', task_of(r))))} stopping "
                f"({task.get('lastStatus', '?')} -> {task.get('desiredStatus', 'STOPPED')})"
            )
            return summary, task_line(task), task
        raise StepProblem(f"unknown ECS op {op!r}")

    @staticmethod
    def equivalent(rendered: Mapping[str, Any], connection: AwsConnection) -> str:
        """The `aws ecs ...` command line for the op, with --region (and --endpoint-url)."""
        return aws_cli(rendered, connection)


# --- calls ------------------------------------------------------------------------------------


def client_of(step: PreparedStep, ctx: ExecutionContext) -> AwsClient:
    name, connection = connection_of(step, ctx, AwsConnection, "aws")
    return get_ecs_client(ctx.pool, name, connection)


def cluster_of(r: Mapping[str, Any]) -> str:
    cluster = r.get("cluster")
    if not cluster:
        raise StepProblem("the step has no cluster")
    return str(cluster)


def service_of(r: Mapping[str, Any]) -> str:
    service = r.get("service")
    if not service:
        raise StepProblem(f"{r.get('op')} needs a service")
    return str(service)


def task_of(r: Mapping[str, Any]) -> str:
    task = r.get("task")
    if not task:
        raise StepProblem("stop_task needs a task")
    return str(task)


def count_of(r: Mapping[str, Any]) -> int:
    count = r.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise StepProblem(f"set_desired_count needs a count >= 0, not {count!r}")
    return count


async def describe_service(
    client: AwsClient, cluster: str, service: str, limit: float
) -> Mapping[str, Any]:
    """One service, fresh (an action must not act on a probe's half-second-old batch)."""
    response = await client.call(
        "describe_services", cluster=cluster, services=[service], time_limit=limit
    )
    outcome = match_services([service], response)[service]
    if isinstance(outcome, ProbeError):
        raise outcome
    return outcome


async def describe_task(
    client: AwsClient, cluster: str, task: str, limit: float
) -> Mapping[str, Any]:
    response = await client.call("describe_tasks", cluster=cluster, tasks=[task], time_limit=limit)
    tasks = response.get("tasks") or []
    if not tasks:
        failures = response.get("failures") or []
        reason = failures[0].get("reason", "MISSING") if failures else "MISSING"
        raise StepProblem(f"task {short(task)} not found ({reason})")
    found: Mapping[str, Any] = tasks[0]
    return found


async def list_tasks(
    client: AwsClient, cluster: str, service: str, limit: float
) -> list[Mapping[str, Any]]:
    response = await client.call(
        "list_tasks", cluster=cluster, serviceName=service, time_limit=limit
    )
    arns = list(response.get("taskArns") or [])[:MAX_TASKS]
    if not arns:
        return []
    described = await client.call("describe_tasks", cluster=cluster, tasks=arns, time_limit=limit)
    return list(described.get("tasks") or [])


# --- words ------------------------------------------------------------------------------------


def short(arn: str) -> str:
    """`web:3` of a task-definition ARN, the id of a task ARN: the part after the last '/'."""
    return arn.rsplit("/", 1)[-1]


def primary(service: Mapping[str, Any]) -> Mapping[str, Any]:
    for deployment in service.get("deployments") or ():
        if deployment.get("status") == "PRIMARY":
            found: Mapping[str, Any] = deployment
            return found
    return {}


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value) if value else "?"


def service_summary(service: Mapping[str, Any]) -> str:
    return (
        f"{service.get('serviceName', '?')}: running {service.get('runningCount', '?')}/"
        f"{service.get('desiredCount', '?')}, pending {service.get('pendingCount', '?')}"
    )


def service_text(service: Mapping[str, Any]) -> str:
    lines = [
        f"service     {service.get('serviceName', '?')} ({service.get('status', '?')})",
        f"task def    {short(str(service.get('taskDefinition', '?')))}",
        f"desired     {service.get('desiredCount', '?')}",
        f"running     {service.get('runningCount', '?')}",
        f"pending     {service.get('pendingCount', '?')}",
    ]
    for deployment in service.get("deployments") or ():
        lines.append(
            f"deployment  {deployment.get('status', '?')} {deployment.get('id', '?')} "
            f"{short(str(deployment.get('taskDefinition', '?')))} "
            f"rollout {deployment.get('rolloutState', '?')} "
            f"running {deployment.get('runningCount', '?')}/{deployment.get('desiredCount', '?')}"
        )
    for event in list(service.get("events") or ())[:EVENTS_SHOWN]:
        lines.append(f"event       {when(event.get('createdAt'))} {event.get('message', '')}")
    return "\n".join(lines)


def task_line(task: Mapping[str, Any]) -> str:
    started = task.get("startedAt")
    return (
        f"task {short(str(task.get('taskArn', '?')))}: {task.get('lastStatus', '?')}, "
        f"group {task.get('group', '?')}, "
        + (f"started {when(started)}" if started else "not started")
    )


def tasks_text(tasks: Sequence[Mapping[str, Any]]) -> str:
    if not tasks:
        return "(no tasks)"
    return "\n".join(task_line(t) for t in tasks)


def aws_cli(r: Mapping[str, Any], connection: AwsConnection) -> str:
    op = str(r.get("op"))
    cluster = str(r.get("cluster") or "")
    service = str(r.get("service") or "")
    words = ["aws", "ecs"]
    if op == "describe_services":
        words += ["describe-services", "--cluster", cluster, "--services", service]
    elif op == "list_tasks":
        words += ["list-tasks", "--cluster", cluster, "--service-name", service]
    elif op == "set_desired_count":
        words += ["update-service", "--cluster", cluster, "--service", service]
        words += ["--desired-count", str(r.get("count"))]
    elif op == "force_new_deployment":
        words += ["update-service", "--cluster", cluster, "--service", service]
        words.append("--force-new-deployment")
    else:
        words += ["stop-task", "--cluster", cluster, "--task", str(r.get("task") or "")]
        if r.get("reason"):
            words += ["--reason", str(r.get("reason"))]
    words += ["--region", connection.region]
    if connection.profile and connection.access_key_id is None:
        words += ["--profile", connection.profile]
    if connection.endpoint_url:
        words += ["--endpoint-url", redact(connection.endpoint_url)]
    return shlex.join(words)
