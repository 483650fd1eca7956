"""The ecs executor against a real moto server process: classification by op, previews read
from the service or task, execution changes the server, `aws ecs ...` equivalents."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from opstui.actions.base import Classification, Outcome, PreparedStep, Progress
from opstui.actions.context import ExecutionContext
from opstui.actions.executors.ecs import EcsExecutor, aws_cli
from opstui.actions.runner import Refused
from opstui.config.kinds.aws import AwsConnection
from opstui.config.models import Config
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.registry import ClientPool
from tests.actions.support import make_runner
from tests.servers.moto import MotoServer, aws_test_env, create_services, run_tasks

CLUSTER = "anclora-production"


class NoProbes:
    def current(self, probe_id: str) -> ProbeSnapshot | None:
        return None

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        raise KeyError(probe_id)


def _seed(server: MotoServer) -> None:
    create_services(server, CLUSTER, {"web": 2, "worker": 2, "scaled": 2}, family="web")


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto-exec"), seed=_seed)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_test_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def ctx(moto: MotoServer) -> AsyncIterator[ExecutionContext]:
    config = Config.model_validate(
        {"connections": {"aws": {"kind": "aws", "region": "eu-west-1", "endpoint_url": moto.url}}}
    )
    pool = ClientPool()
    yield ExecutionContext(config, pool, NoProbes())
    await pool.aclose()


def step(op: str, **rendered: Any) -> PreparedStep:
    fields: dict[str, Any] = {
        "op": op,
        "cluster": CLUSTER,
        "service": None,
        "task": None,
        "reason": None,
        "count": None,
    }
    fields.update(rendered)
    return PreparedStep(
        kind="ecs",
        title=op,
        runbook_id=None,
        action_id=None,
        step_index=None,
        connection="aws",
        params={},
        rendered=fields,
        equivalent="",
        target=str(fields["service"] or fields["task"]),
        environment=None,
        timeout=20.0,
    )


async def run(ctx: ExecutionContext, prepared: PreparedStep, *, read_only: bool) -> Outcome:
    return await EcsExecutor().execute(
        prepared, ctx, read_only=read_only, output=lambda _: None, progress=Progress()
    )


def service(moto: MotoServer, name: str) -> dict[str, Any]:
    found: dict[str, Any] = moto.client("ecs").describe_services(cluster=CLUSTER, services=[name])[
        "services"
    ][0]
    return found


async def test_ops_are_classified(ctx: ExecutionContext) -> None:
    executor = EcsExecutor()
    for op in ("describe_services", "list_tasks"):
        verdict = await executor.classify(step(op, service="web"), ctx)
        assert verdict.classification is Classification.READ_ONLY
        assert verdict.reason == f"ECS {op} only reads"
    for op in ("force_new_deployment", "set_desired_count", "stop_task"):
        verdict = await executor.classify(step(op, service="web"), ctx)
        assert verdict.mutating and verdict.reason == f"ECS {op} changes the service"


async def test_describe_is_read_only_and_says_the_counts(
    ctx: ExecutionContext, moto: MotoServer
) -> None:
    before = service(moto, "web")
    outcome = await run(ctx, step("describe_services", service="web"), read_only=True)
    assert outcome.ok, outcome.error
    counts = f"running {before['runningCount']}/{before['desiredCount']}"
    assert outcome.summary == f"web: {counts}, pending {before['pendingCount']}"
    assert "task def    web:1" in outcome.output
    assert await EcsExecutor().preview(step("describe_services", service="web"), ctx) is None
    missing = await run(ctx, step("describe_services", service="nope"), read_only=True)
    assert not missing.ok and missing.error == "service not found"


async def test_set_desired_count_previews_then_changes_the_server(
    ctx: ExecutionContext, moto: MotoServer
) -> None:
    before = service(moto, "scaled")
    assert before["desiredCount"] == 2
    scale = step("set_desired_count", service="scaled", count=4)
    preview = await EcsExecutor().preview(scale, ctx)
    assert preview is not None and preview.error is None
    assert preview.lines == (
        f"desired 2 -> 4 (running {before['runningCount']}, pending {before['pendingCount']})",
    )
    assert service(moto, "scaled")["desiredCount"] == 2  # a preview changes nothing
    outcome = await run(ctx, scale, read_only=False)
    assert outcome.ok and outcome.summary == "desired 2 -> 4"
    assert service(moto, "scaled")["desiredCount"] == 4


async def test_force_new_deployment(ctx: ExecutionContext, moto: MotoServer) -> None:
    before = service(moto, "worker")
    redeploy = step("force_new_deployment", service="worker")
    preview = await EcsExecutor().preview(redeploy, ctx)
    assert preview is not None
    rollout = next(d for d in before["deployments"] if d["status"] == "PRIMARY")["rolloutState"]
    assert preview.lines == (
        f"new deployment of web:1; current rollout {rollout}, running {before['runningCount']}",
    )
    outcome = await run(ctx, redeploy, read_only=False)
    assert outcome.ok, outcome.error
    after = service(moto, "worker")
    new_id = next(d for d in after["deployments"] if d["status"] == "PRIMARY")["id"]
    assert outcome.summary == f"new deployment {new_id} of web:1"
    old_ids = {d["id"] for d in before["deployments"]}
    assert new_id not in old_ids


async def test_stop_task(ctx: ExecutionContext, moto: MotoServer) -> None:
    (arn,) = await asyncio.to_thread(run_tasks, moto, CLUSTER, "web", 1)
    task_id = arn.rsplit("/", 1)[-1]
    stop = step("stop_task", task=arn, reason="stuck worker")
    preview = await EcsExecutor().preview(stop, ctx)
    assert preview is not None and preview.error is None
    (line,) = preview.lines
    assert re.fullmatch(
        rf"task {task_id}: [A-Z_]+, group family:web, (started .+|not started)", line
    )
    listed = await run(ctx, step("list_tasks", service="web"), read_only=True)
    assert listed.ok
    outcome = await run(ctx, stop, read_only=False)
    assert outcome.ok and outcome.summary.startswith(f"task {task_id} stopping (")
    described = moto.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert described["desiredStatus"] == "STOPPED"
    assert described["stoppedReason"] == "stuck worker"
    gone = await EcsExecutor().preview(step("stop_task", task="no-such-task"), ctx)
    assert gone is not None and gone.error is not None


async def test_a_mutating_op_asked_to_run_read_only_is_refused(
    ctx: ExecutionContext, moto: MotoServer
) -> None:
    before = service(moto, "web")["desiredCount"]
    outcome = await run(ctx, step("set_desired_count", service="web", count=9), read_only=True)
    assert not outcome.ok and outcome.error == "refused: ECS set_desired_count is not read-only"
    assert service(moto, "web")["desiredCount"] == before


async def test_a_bad_count_is_an_error_not_a_call(ctx: ExecutionContext) -> None:
    outcome = await run(ctx, step("set_desired_count", service="web", count=-1), read_only=False)
    assert not outcome.ok and outcome.error == "set_desired_count needs a count >= 0, not -1"


def test_aws_cli_equivalents() -> None:
    connection = AwsConnection.model_validate(
        {"kind": "aws", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000"}
    )
    base = {"cluster": "X", "service": "Y", "task": None, "reason": None, "count": None}
    tail = "--region eu-west-1 --endpoint-url http://127.0.0.1:5000"
    assert aws_cli({**base, "op": "set_desired_count", "count": 8}, connection) == (
        f"aws ecs update-service --cluster X --service Y --desired-count 8 {tail}"
    )
    assert aws_cli({**base, "op": "force_new_deployment"}, connection) == (
        f"aws ecs update-service --cluster X --service Y --force-new-deployment {tail}"
    )
    stop = {**base, "op": "stop_task", "task": "T", "reason": "stuck worker"}
    assert EcsExecutor.equivalent(stop, connection) == (
        f"aws ecs stop-task --cluster X --task T --reason 'stuck worker' {tail}"
    )


# --- through the Runner (the one gate) ------------------------------------------------------


def runbook_config(url: str) -> Config:
    target = {"connection": "aws", "cluster": CLUSTER, "service": "gate"}
    return Config.model_validate(
        {
            "connections": {"aws": {"kind": "aws", "region": "eu-west-1", "endpoint_url": url}},
            "runbooks": [
                {
                    "id": "backlog",
                    "title": "Backlog",
                    "diagnose": [
                        {"title": "Service", "kind": "ecs", "op": "describe_services", **target}
                    ],
                    "actions": [
                        {
                            "id": "scale",
                            "key": "S",
                            "kind": "ecs",
                            "title": "Scale workers",
                            "op": "set_desired_count",
                            "count": "{{ params.count }}",
                            **target,
                            "params": {"count": {"type": "int", "min": 1, "max": 20, "default": 4}},
                            "verb": "Scale",
                            "danger": "high",
                        },
                    ],
                }
            ],
        }
    )


async def test_runner_scales_only_with_a_token_once(moto: MotoServer, tmp_path: Any) -> None:
    await asyncio.to_thread(
        moto.client("ecs").create_service,
        cluster=CLUSTER,
        serviceName="gate",
        taskDefinition="web",
        desiredCount=2,
    )
    parts = make_runner(runbook_config(moto.url), tmp_path)
    runner = parts.runner
    try:
        described = await runner.run(await runner.prepare_diagnose("backlog", 0))
        assert described.ok and described.summary.startswith("gate: running ")
        step_ = await runner.prepare_action("backlog", "scale", {"count": "4"})
        preview = await runner.preview(step_)
        assert preview is not None and preview.lines[0].startswith("desired 2 -> 4 (running ")
        with pytest.raises(Refused):
            await runner.run(step_)
        with pytest.raises(Refused):  # danger: high wants the target typed
            runner.confirm(step_, via="modal", typed_target="wrong")
        token = runner.confirm(step_, via="modal", typed_target=step_.target)
        outcome = await runner.run(step_, token=token)
        assert outcome.ok and outcome.summary == "desired 2 -> 4"
        assert service(moto, "gate")["desiredCount"] == 4
        with pytest.raises(Refused):
            await runner.run(step_, token=token)
        again = await runner.prepare_action("backlog", "scale", {"count": "8"})
        with pytest.raises(Refused):  # a token for count=4 cannot run count=8
            await runner.run(
                again, token=runner.confirm(step_, via="modal", typed_target=step_.target)
            )
        assert service(moto, "gate")["desiredCount"] == 4
    finally:
        await parts.close()

    read_only = make_runner(runbook_config(moto.url), tmp_path, read_only=True)
    try:
        step_ = await read_only.runner.prepare_action("backlog", "scale", {"count": "6"})
        token = read_only.runner.confirm(step_, via="--yes", typed_target=step_.target)
        with pytest.raises(Refused):
            await read_only.runner.run(step_, token=token)
        assert service(moto, "gate")["desiredCount"] == 4
    finally:
        await read_only.close()
