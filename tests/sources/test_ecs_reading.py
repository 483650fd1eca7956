"""What moto cannot produce (failed rollouts, events, exit codes, throttling) judged from
describe_* payloads shaped as ECS returns them, and botocore's own exception types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from botocore.exceptions import ClientError, NoCredentialsError

from opstui.sources.aws_client import aws_error, match_services
from opstui.sources.base import ProbeError
from opstui.sources.ecs import StoppedTask, newest_stopped, service_reading, stop_reason

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _service(**extra: object) -> dict[str, object]:
    service: dict[str, object] = {
        "serviceName": "web",
        "serviceArn": "arn:aws:ecs:eu-west-1:1:service/prod/web",
        "status": "ACTIVE",
        "runningCount": 3,
        "desiredCount": 4,
        "pendingCount": 1,
        "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:6",
        "deployments": [
            {
                "status": "PRIMARY",
                "rolloutState": "FAILED",
                "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
                "taskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:7",
                "failedTasks": 5,
            },
            {"status": "ACTIVE", "rolloutState": "COMPLETED"},
        ],
        "events": [
            {"createdAt": T0 + timedelta(minutes=i), "message": f"event {i}"} for i in range(7)
        ][::-1],
    }
    service.update(extra)
    return service


def test_failed_rollout_is_a_note_and_counts_are_left_to_thresholds() -> None:
    reading = service_reading(_service(), "running_ratio")
    assert reading.value == 0.75 and reading.verdict is None
    assert reading.fields["rollout"] == "FAILED"
    assert reading.fields["deployments"] == 2 and reading.fields["failed_tasks"] == 5
    assert reading.fields["task_definition"] == "web:7"  # the PRIMARY deployment's revision
    assert reading.notes == (
        "rollout FAILED: ECS deployment circuit breaker: tasks failed to start.",
    )
    assert reading.facts[:3] == (("running", "3/4"), ("pending", "1"), ("rollout", "FAILED"))
    assert ("deployments", "2") in reading.facts


def test_table_merges_latest_events_and_stopped_tasks_newest_first() -> None:
    stopped = [StoppedTask(T0 + timedelta(minutes=5, seconds=30), "OutOfMemory")]
    reading = service_reading(_service(), "running", stopped=stopped, stopped_total=3)
    table = reading.table
    assert table is not None
    assert [what for _, what in table.rows] == [
        "event 6",
        "task stopped: OutOfMemory",
        "event 5",
        "event 4",
        "event 3",
        "event 2",
    ]
    assert table.rows[0][0] == "03-01 12:06:00"
    assert table.total_rows == 7 + 3


def test_inactive_service_is_noted() -> None:
    reading = service_reading(_service(status="INACTIVE", deployments=[]), "desired")
    assert reading.fields["rollout"] == "UNKNOWN"
    assert ("status", "INACTIVE") in reading.facts
    assert reading.notes == ("service is INACTIVE (deleted)",)


def test_stop_reason_names_stop_code_and_the_container_that_failed() -> None:
    task = {
        "stoppedReason": "Essential container in task exited",
        "stopCode": "EssentialContainerExited",
        "containers": [
            {"name": "sidecar", "exitCode": 0},
            {"name": "app", "exitCode": 137, "reason": "OutOfMemoryError: Container killed"},
        ],
    }
    assert stop_reason(task) == (
        "Essential container in task exited [EssentialContainerExited] "
        "app: OutOfMemoryError: Container killed, exit 137"
    )
    assert stop_reason({}) == "no reason given"


def test_newest_stopped_sorts_by_stopped_at_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    tasks = [
        {"stoppedAt": datetime(2026, 3, 1, 12, 30, tzinfo=cet), "stoppedReason": "a"},  # 11:30Z
        {"stoppedReason": "undated"},
        {"stoppedAt": T0, "stoppedReason": "b"},
    ]
    assert [t.reason for t in newest_stopped(tasks)] == ["b", "a", "undated"]


def test_match_services_by_name_or_arn_and_failures() -> None:
    response = {
        "services": [_service()],
        "failures": [
            {"arn": "arn:aws:ecs:eu-west-1:1:service/prod/gone", "reason": "MISSING"},
            {"arn": "arn:aws:ecs:eu-west-1:1:service/prod/odd", "reason": "INTERNAL"},
        ],
    }
    outcomes = match_services(
        ["web", "arn:aws:ecs:eu-west-1:1:service/prod/web", "gone", "odd"], response
    )
    assert outcomes["web"] is outcomes["arn:aws:ecs:eu-west-1:1:service/prod/web"]
    gone, odd = outcomes["gone"], outcomes["odd"]
    assert isinstance(gone, ProbeError) and gone.reason == "service not found"
    assert isinstance(odd, ProbeError) and odd.reason == "describe failed: INTERNAL"


def _client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeServices")


def test_aws_errors_become_short_reasons() -> None:
    throttled = aws_error(_client_error("ThrottlingException", "Rate exceeded"), 10)
    assert throttled.reason == "ThrottlingException"
    assert throttled.hint == "raise the probe's interval"
    assert aws_error(_client_error("ExpiredTokenException"), 10).reason == (
        "InvalidSignature/expired token"
    )
    assert aws_error(_client_error("AccessDeniedException"), 10).reason == "AccessDenied"
    xml = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>"
    assert aws_error(_client_error("403", xml), 10).reason == "InvalidSignature/expired token"
    assert aws_error(_client_error("503"), 10).reason == "HTTP 503"
    assert aws_error(NoCredentialsError(), 10).reason == "no credentials"
    assert aws_error(TimeoutError(), 10).reason == "timeout after 10s"
