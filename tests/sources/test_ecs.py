"""The ecs source against a real moto server process (counts, rollout, stopped tasks,
failures, describe_services batching, the long-lived client) and `opstui check --json`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.config.kinds.aws import AwsConnection, EcsProbe
from opstui.sources.aws_client import AwsClient, get_ecs_client
from opstui.sources.base import ProbeError, Reading
from opstui.sources.ecs import EcsSource
from opstui.sources.registry import ClientPool
from tests.servers.moto import (
    MotoServer,
    aws_test_env,
    create_services,
    run_tasks,
    stop_task,
)
from tests.support import free_port

BATCH_SERVICES = [f"svc-{i:02d}" for i in range(12)]


def _seed(server: MotoServer) -> None:
    create_services(server, "prod", {"web": 2, "idle": 0, "shop": 2})
    create_services(server, "batch", dict.fromkeys(BATCH_SERVICES, 1))
    create_services(server, "jobs", {"worker": 1}, family="worker")


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"), seed=_seed)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy keys in the environment (the default chain finds them), nothing of the machine's."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_test_env().items():
        monkeypatch.setenv(name, value)


def _connection(url: str, **extra: Any) -> AwsConnection:
    data: dict[str, Any] = {"kind": "aws", "region": "eu-west-1", "endpoint_url": url}
    data.update(extra)
    return AwsConnection.model_validate(data)


def _probe(cluster: str = "prod", service: str = "web", **extra: Any) -> EcsProbe:
    data: dict[str, Any] = {
        "kind": "ecs",
        "id": f"{cluster}-{service}",
        "connection": "aws",
        "cluster": cluster,
        "service": service,
    }
    data.update(extra)
    return EcsProbe.model_validate(data)


def _source(
    pool: ClientPool, connection: AwsConnection, probe: EcsProbe, window: float | None = None
) -> EcsSource:
    if window is not None:  # a client that never reuses a fetch, for before/after tests
        pool.get("aws", lambda: AwsClient(connection, batch_window=window))
    source = EcsSource.build(probe, connection, pool)
    assert isinstance(source, EcsSource)
    return source


async def _count(client: AwsClient, operation: str) -> list[int]:
    """Count real requests of one operation, through botocore's own event hooks."""
    calls = [0]

    def seen(**_: Any) -> None:
        calls[0] += 1

    ecs = await client.ecs()
    ecs.meta.events.register(f"before-call.ecs.{operation}", seen)
    return calls


async def _error(source: EcsSource) -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        await source.poll()
    return caught.value


async def test_counts_rollout_and_facts_follow_update_service(moto: MotoServer) -> None:
    pool = ClientPool()
    connection = _connection(moto.url)
    source = _source(pool, connection, _probe(value="running_ratio"), window=0.0)
    try:
        first = await source.poll()
        assert {k: first.fields[k] for k in ("running", "desired", "pending")} == {
            "running": 0,
            "desired": 2,
            "pending": 2,
        }
        assert first.fields["rollout"] == "IN_PROGRESS"
        assert first.fields["status"] == "ACTIVE"
        assert first.fields["deployments"] == 1
        assert first.value == 0.0 and first.fields["running_ratio"] == 0.0
        assert ("running", "0/2") in first.facts and ("rollout", "IN_PROGRESS") in first.facts
        assert ("task def", "web:1") in first.facts
        assert first.table is not None and first.table.rows == ()  # moto records no events
        assert first.notes == ()

        await asyncio.to_thread(
            moto.client("ecs").update_service, cluster="prod", service="web", desiredCount=4
        )
        second = await source.poll()
        assert (second.fields["running"], second.fields["desired"]) == (4, 4)
        assert second.fields["pending"] == 0 and second.value == 1.0
        assert ("running", "4/4") in second.facts and ("pending", "0") in second.facts
        assert second.latency_ms is not None and second.latency_ms > 0
    finally:
        await pool.aclose()


async def test_completed_rollout_and_value_key(moto: MotoServer) -> None:
    pool = ClientPool()
    connection = _connection(moto.url)
    source = _source(pool, connection, _probe(service="idle", value="desired"))
    try:
        reading = await source.poll()
        assert reading.fields["rollout"] == "COMPLETED"
        assert reading.fields["running_ratio"] == 1.0  # nothing desired, nothing missing
        assert reading.value == 0.0
        assert source.describe()["credentials"] == "default chain"
    finally:
        await pool.aclose()


async def test_stopped_tasks_show_their_reason_and_are_described_only_on_change(
    moto: MotoServer,
) -> None:
    arns = await asyncio.to_thread(run_tasks, moto, "jobs", "worker", 2)
    await asyncio.to_thread(stop_task, moto, "jobs", arns[0], "Essential container in task exited")
    pool = ClientPool()
    connection = _connection(moto.url)
    source = _source(pool, connection, _probe("jobs", "worker", stopped_tasks=5))
    try:
        described = await _count(source.client, "DescribeTasks")
        listed = await _count(source.client, "ListTasks")
        first = await source.poll()
        assert first.table is not None
        assert [row[1] for row in first.table.rows] == [
            "task stopped: Essential container in task exited"
        ]
        assert first.fields["stopped_tasks"] == 1
        assert described[0] == 1

        again = await source.poll()
        assert again.table == first.table
        assert (listed[0], described[0]) == (2, 1)  # same ARNs: listed again, not described

        await asyncio.to_thread(stop_task, moto, "jobs", arns[1], "Scaling activity initiated")
        third = await source.poll()
        assert third.table is not None
        assert sorted(row[1] for row in third.table.rows) == [
            "task stopped: Essential container in task exited",
            "task stopped: Scaling activity initiated",
        ]
        assert described[0] == 2
    finally:
        await pool.aclose()


async def test_stopped_tasks_zero_skips_the_task_calls(moto: MotoServer) -> None:
    pool = ClientPool()
    source = _source(pool, _connection(moto.url), _probe("jobs", "worker", stopped_tasks=0))
    try:
        listed = await _count(source.client, "ListTasks")
        reading = await source.poll()
        assert listed[0] == 0 and reading.table is not None and reading.table.rows == ()
    finally:
        await pool.aclose()


async def test_missing_service_and_missing_cluster_are_errors(moto: MotoServer) -> None:
    pool = ClientPool()
    connection = _connection(moto.url)
    try:
        missing = await _error(_source(pool, connection, _probe(service="nope")))
        assert missing.reason == "service not found"
        assert missing.hint is not None and "service names" in missing.hint
        no_cluster = await _error(_source(pool, connection, _probe(cluster="ghost")))
        assert no_cluster.reason == "ClusterNotFoundException"
        assert no_cluster.hint is not None and "cluster" in no_cluster.hint
    finally:
        await pool.aclose()


async def test_describe_services_is_batched_per_cluster_and_cycle(moto: MotoServer) -> None:
    pool = ClientPool()
    connection = _connection(moto.url)
    # a window no loaded CI box can outlast, so the count below cannot depend on timing
    client = pool.get("aws", lambda: AwsClient(connection, batch_window=60.0))
    sources = [_source(pool, connection, _probe("batch", name)) for name in BATCH_SERVICES]
    assert all(s.client is client for s in sources)
    calls = await _count(sources[0].client, "DescribeServices")

    async def staggered(index: int, source: EcsSource) -> Reading:
        await asyncio.sleep(index * 0.005)  # as the engine spreads first polls
        return await source.poll()

    try:
        readings = await asyncio.gather(*(staggered(i, s) for i, s in enumerate(sources)))
        assert calls[0] == 2  # 12 services: one call of 10 and one of 2
        assert [r.fields["desired"] for r in readings] == [1] * 12
        await asyncio.gather(*(s.poll() for s in sources))
        assert calls[0] == 2  # the same cycle: served from that fetch

        sources[0].client.batch_window = 0.0  # the next cycle: the fetch is over
        await asyncio.gather(*(s.poll() for s in sources))
        assert calls[0] == 4  # polls that ask while a fetch is in flight share it
    finally:
        await pool.aclose()


async def test_no_credentials(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    pool = ClientPool()
    try:
        failure = await _error(_source(pool, _connection(moto.url), _probe()))
        assert failure.reason == "no credentials"
        assert failure.hint is not None and "access_key_id" in failure.hint
    finally:
        await pool.aclose()


async def test_explicit_keys_from_env_references(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("OPSTUI_TEST_AWS_KEY", "AKIAOPSTUITEST")
    monkeypatch.setenv("OPSTUI_TEST_AWS_SECRET", "not-shown-anywhere")
    connection = _connection(
        moto.url,
        access_key_id="${OPSTUI_TEST_AWS_KEY}",
        secret_access_key="${OPSTUI_TEST_AWS_SECRET}",
    )
    pool = ClientPool()
    try:
        source = _source(pool, connection, _probe())
        reading = await source.poll()
        assert reading.fields["desired"] in (2, 4)
        shown = json.dumps(dict(source.describe()))
        assert "keys from the config" in shown and "not-shown-anywhere" not in shown
    finally:
        await pool.aclose()


async def test_refused_and_one_client_kept_open_across_polls(moto: MotoServer) -> None:
    pool = ClientPool()
    refused = _source(pool, _connection(f"http://127.0.0.1:{free_port()}", timeout="2s"), _probe())
    try:
        assert (await _error(refused)).reason == "refused"
    finally:
        await pool.aclose()

    pool = ClientPool()
    source = _source(pool, _connection(moto.url), _probe(), window=0.0)
    try:
        for _ in range(3):
            await source.poll()
        opened = await source.client.ecs()
        assert source.client.sessions_opened == 1
        assert await source.client.ecs() is opened
        assert get_ecs_client(pool, "aws", source.connection) is source.client
    finally:
        await pool.aclose()
    assert source.client.sessions_opened == 1


async def test_check_json_reports_the_ecs_fields(moto: MotoServer, tmp_path: Path) -> None:
    config = tmp_path / "ecs.yaml"
    config.write_text(
        f"""
title: ECS check
refresh: 1s
connections:
  aws: {{kind: aws, region: eu-west-1, endpoint_url: "{moto.url}", timeout: 5s}}
probes:
  - {{id: shop, kind: ecs, connection: aws, cluster: prod, service: shop, value: desired}}
  - {{id: gone, kind: ecs, connection: aws, cluster: prod, service: nope}}
"""
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "opstui",
        "check",
        "--json",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=aws_test_env(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    document = json.loads(out)
    by_id = {p["id"]: p for p in document["probes"]}
    shop = by_id["shop"]
    assert shop["kind"] == "ecs" and shop["state"] == "ok", err.decode()
    assert shop["value"] == 2
    assert {k: shop["fields"][k] for k in ("running", "desired", "pending", "rollout")} == {
        "running": 0,
        "desired": 2,
        "pending": 2,
        "rollout": "IN_PROGRESS",
    }
    assert by_id["gone"]["state"] == "error" and by_id["gone"]["error"] == "service not found"
    assert document["worst"] == "error" and proc.returncode != 0


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
async def test_a_first_call_cut_short_leaves_its_client_to_the_next(moto: MotoServer) -> None:
    """A poll timing out while the client is still being built (botocore's import and set-up
    run in a thread) must not drop that build: the next call takes it over (one session in
    all), and a build nobody took is closed with the pool, never left un-awaited."""
    import gc

    for second_call in (True, False):
        client = AwsClient(_connection(moto.url))
        try:
            with pytest.raises(ProbeError, match="timeout"):
                await client.call("list_clusters", time_limit=1e-6)
            assert client._opening is not None  # the build outlived the call that asked
            if second_call:
                response = await client.call("list_clusters")
                assert any(arn.endswith("/prod") for arn in response["clusterArns"])
                assert client.sessions_opened == 1
                assert client._opening is None
        finally:
            await client.aclose()
        assert client._opening is None
        gc.collect()  # an un-awaited creation coroutine would warn here
