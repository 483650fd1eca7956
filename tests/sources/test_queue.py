"""Queue probes against a real redis-server, with keys laid out as each library writes them.

The library-driven checks (RQ, Celery, the bullmq package) are in test_queue_libs.py; here the
layouts are written by hand where the library is not available in Python (Sidekiq, BullMQ v5,
Bull v2/v3) and for the plain list and stream flavors, plus discovery, pipelining and rates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from opstui.config.kinds.redis import QueueProbe, RedisConnection
from opstui.sources.base import ProbeError, Reading
from opstui.sources.queue import QueueSource
from opstui.sources.redis_client import RedisClient
from tests.servers.redis import RedisServer, commands_between, commandstats
from tests.servers.started import redis_started
from tests.support import Tick


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("redis-queue")) as server:
        yield server


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.sync_client()
    client.flushall()
    yield client
    client.close()


def connection(server: RedisServer, **extra: Any) -> RedisConnection:
    return RedisConnection.model_validate({"kind": "redis", "url": server.url, **extra})


def probe(**extra: Any) -> QueueProbe:
    return QueueProbe.model_validate({"kind": "queue", "id": "q", "connection": "r", **extra})


async def poll(server: RedisServer, clock: Tick | None = None, **extra: Any) -> Reading:
    client = RedisClient(connection(server))
    try:
        source = QueueSource(probe(**extra), connection(server), client)
        if clock is not None:
            source.clock = clock
        return await source.poll()
    finally:
        await client.aclose()


def fill_zset(r: redis.Redis, key: str, n: int) -> None:
    if n:
        r.zadd(key, {f"{key}-{i}": i for i in range(n)})


def fill_list(r: redis.Redis, key: str, n: int) -> None:
    if n:
        r.rpush(key, *[f"{key}-{i}" for i in range(n)])


# --- BullMQ v5 / Bull v3 / Bull v2 layouts, written as those versions write them ------------


def bullmq_v5_paused(r: redis.Redis, prefix: str, name: str) -> None:
    """BullMQ v5 pause: RENAME wait -> paused, meta.paused=1; new jobs land in `paused`."""
    base = f"{prefix}:{name}"
    r.set(f"{base}:id", 12)
    r.hset(f"{base}:meta", mapping={"paused": 1, "opts.maxLenEvents": 10000})
    fill_list(r, f"{base}:paused", 7)
    fill_list(r, f"{base}:active", 2)
    fill_zset(r, f"{base}:delayed", 1)
    fill_zset(r, f"{base}:prioritized", 2)


async def test_bullmq_v5_paused_list(redis_server: RedisServer, r: redis.Redis) -> None:
    bullmq_v5_paused(r, "bull", "mail")
    reading = await poll(redis_server, flavor="bullmq", queue="mail", value="paused")
    assert reading.no_data is None
    assert reading.fields["paused"] == 7 and reading.value == 7
    assert reading.fields["waiting"] == 0
    assert reading.fields["is_paused"] is True
    assert reading.fields["active"] == 2 and reading.fields["delayed"] == 1
    assert reading.fields["prioritized"] == 2
    assert ("state", "PAUSED") in reading.facts


async def test_bullmq_v4_marker_is_not_a_job(redis_server: RedisServer, r: redis.Redis) -> None:
    r.set("bull:old:id", 3)
    r.rpush("bull:old:wait", "1", "2", "0:1700000000000")
    reading = await poll(redis_server, flavor="bullmq", queue="old")
    assert reading.fields["waiting"] == 2
    assert reading.fields["is_paused"] is False


def bull_v3(r: redis.Redis, name: str, *, paused: bool) -> None:
    base = f"bull:{name}"
    r.set(f"{base}:id", 30)
    fill_list(r, f"{base}:paused" if paused else f"{base}:wait", 5)
    fill_list(r, f"{base}:active", 1)
    fill_zset(r, f"{base}:delayed", 3)
    fill_zset(r, f"{base}:completed", 10)
    fill_zset(r, f"{base}:failed", 4)
    if paused:
        r.set(f"{base}:meta-paused", 1)


async def test_bull_v3_running_and_paused(redis_server: RedisServer, r: redis.Redis) -> None:
    bull_v3(r, "img", paused=False)
    bull_v3(r, "pdf", paused=True)
    running = await poll(redis_server, flavor="bull", queue="img", value="completed")
    assert {k: running.fields[k] for k in ("waiting", "active", "paused", "delayed")} == {
        "waiting": 5,
        "active": 1,
        "paused": 0,
        "delayed": 3,
    }
    assert running.value == 10 and running.fields["failed"] == 4
    assert running.fields["is_paused"] is False
    paused = await poll(redis_server, flavor="bull", queue="pdf")
    assert paused.fields["paused"] == 5 and paused.fields["waiting"] == 0
    assert paused.fields["is_paused"] is True


async def test_bull_v2_sets_counted_with_scard_in_one_round_trip(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    r.set("bull:legacy:id", 9)
    fill_list(r, "bull:legacy:wait", 2)
    r.sadd("bull:legacy:completed", *[f"c{i}" for i in range(6)])
    r.sadd("bull:legacy:failed", "f1")
    fill_zset(r, "bull:legacy:delayed", 1)
    conn = connection(redis_server)
    client = RedisClient(conn)
    source = QueueSource(probe(flavor="bull", queue="legacy"), conn, client)
    try:
        first = await source.poll()
        assert first.fields["completed"] == 6 and first.fields["failed"] == 1
        assert any("v2" in note for note in first.notes)
        before, trips = commandstats(r), client.round_trips
        second = await source.poll()
        ran = commands_between(before, commandstats(r))
    finally:
        await client.aclose()
    assert client.round_trips == trips + 1
    assert second.fields["completed"] == 6
    assert "type" not in ran and "zcard" in ran  # type known after the first poll; delayed
    assert ran["scard"] == 2


# --- Sidekiq, list, stream -------------------------------------------------------------------


def sidekiq_job(queue: str) -> str:
    return json.dumps({"class": "HardWorker", "queue": queue, "args": [1], "jid": "abc"})


@pytest.mark.parametrize("namespace", [None, "myapp"])
async def test_sidekiq(redis_server: RedisServer, r: redis.Redis, namespace: str | None) -> None:
    ns = f"{namespace}:" if namespace else ""
    r.sadd(f"{ns}queues", "default", "mailers")
    r.lpush(f"{ns}queue:default", *[sidekiq_job("default") for _ in range(4)])
    fill_zset(r, f"{ns}schedule", 2)
    fill_zset(r, f"{ns}retry", 3)
    fill_zset(r, f"{ns}dead", 1)
    extra = {"prefix": namespace} if namespace else {}
    reading = await poll(redis_server, flavor="sidekiq", queue="default", value="retry", **extra)
    assert dict(reading.fields) == {"waiting": 4, "scheduled": 2, "retry": 3, "dead": 1}
    assert reading.value == 3
    # an empty queue Sidekiq knows (in `queues`, its list gone) is 0, not "not found"
    mailers = await poll(redis_server, flavor="sidekiq", queue="mailers", **extra)
    assert mailers.no_data is None and mailers.value == 0
    table = await poll(redis_server, flavor="sidekiq", queue="*", **extra)
    assert table.table is not None
    assert [row[:2] for row in table.table.rows] == [("default", "4"), ("mailers", "0")]
    assert table.fields["queues"] == 2 and table.fields["waiting"] == 4
    assert table.fields["retry"] == 3  # shared by every queue: counted once, not per queue


async def test_list_flavor(redis_server: RedisServer, r: redis.Redis) -> None:
    fill_list(r, "jobs:pending", 42)
    reading = await poll(redis_server, flavor="list", queue="jobs:pending")
    assert reading.value == 42 and reading.fields["waiting"] == r.llen("jobs:pending")
    empty = await poll(redis_server, flavor="list", queue="jobs:drained")
    assert empty.value == 0 and "does not exist" in empty.notes[0]


async def test_wrong_flavor_is_a_wrongtype_error(redis_server: RedisServer, r: redis.Redis) -> None:
    r.hset("jobs:hash", "a", 1)
    with pytest.raises(ProbeError) as caught:
        await poll(redis_server, flavor="list", queue="jobs:hash")
    assert caught.value.reason == "WRONGTYPE at jobs:hash"
    assert caught.value.hint is not None and "flavor" in caught.value.hint


async def test_stream_length_lag_pending(redis_server: RedisServer, r: redis.Redis) -> None:
    for i in range(10):
        r.xadd("events", {"n": i})
    r.xgroup_create("events", "billing", id="0")
    r.xgroup_create("events", "audit", id="0")
    r.xreadgroup("billing", "worker-1", {"events": ">"}, count=4)  # 4 pending, lag 6
    r.xreadgroup("audit", "worker-1", {"events": ">"}, count=9)
    audit_entries = r.xreadgroup("audit", "worker-1", {"events": "0"})[0][1]
    r.xack("events", "audit", *[entry_id for entry_id, _ in audit_entries])  # 0 pending, lag 1
    groups = {g["name"]: g for g in r.xinfo_groups("events")}

    overall = await poll(redis_server, flavor="stream", queue="events")
    assert overall.value == 10 == r.xlen("events")
    assert overall.fields["pending"] == groups["billing"]["pending"] + groups["audit"]["pending"]
    assert overall.fields["lag"] == max(groups["billing"]["lag"], groups["audit"]["lag"]) == 6
    assert overall.table is not None and len(overall.table.rows) == 2

    billing = await poll(redis_server, flavor="stream", queue="events", group="audit", value="lag")
    assert billing.value == groups["audit"]["lag"] == 1
    assert billing.fields["pending"] == groups["audit"]["pending"] == 0

    missing = await poll(redis_server, flavor="stream", queue="events", group="nope")
    assert missing.no_data == "group 'nope' not found on stream 'events'"
    gone = await poll(redis_server, flavor="stream", queue="nothing")
    assert gone.no_data == "stream 'nothing' not found"


# --- missing queues, discovery, pipelining, rates -------------------------------------------


@pytest.mark.parametrize("flavor", ["bullmq", "bull", "rq", "celery", "sidekiq"])
async def test_missing_queue_is_nodata(
    redis_server: RedisServer, r: redis.Redis, flavor: str
) -> None:
    r.set("unrelated", 1)
    reading = await poll(redis_server, flavor=flavor, queue="ghost")
    assert reading.no_data == "queue 'ghost' not found"
    assert reading.value is None and not reading.fields


async def test_bullmq_discovery_table(redis_server: RedisServer, r: redis.Redis) -> None:
    for name, waiting in (("alpha", 3), ("beta", 9), ("ns:gamma", 0)):
        r.hset(f"bull:{name}:meta", "opts.maxLenEvents", 10000)
        fill_list(r, f"bull:{name}:wait", waiting)
    r.set("bull:delta:id", 5)  # a queue with an id counter but no meta yet
    fill_zset(r, "bull:delta:failed", 2)
    for i in range(50):  # job hashes must not look like queues
        r.hset(f"bull:alpha:{i}", "name", "job")
    reading = await poll(redis_server, flavor="bullmq", queue="*")
    assert reading.table is not None
    assert [row[0] for row in reading.table.rows] == ["beta", "alpha", "delta", "ns:gamma"]
    assert reading.value == 12 and reading.fields["queues"] == 4
    assert reading.fields["failed"] == 2
    assert reading.table.columns[:3] == ("queue", "waiting", "active")
    assert ("queues", "4") in reading.facts and ("waiting", "12") in reading.facts
    nothing = await poll(redis_server, flavor="bullmq", queue="*", prefix="other")
    assert nothing.no_data == "no bullmq queues found"


async def test_one_round_trip_per_poll(redis_server: RedisServer, r: redis.Redis) -> None:
    bullmq_v5_paused(r, "bull", "mail")
    conn = connection(redis_server)
    client = RedisClient(conn)
    source = QueueSource(probe(flavor="bullmq", queue="mail"), conn, client)
    try:
        await source.poll()  # connects (CLIENT SETNAME) once
        before, trips = commandstats(r), client.round_trips
        await source.poll()
        ran = commands_between(before, commandstats(r))
    finally:
        await client.aclose()
    assert client.round_trips == trips + 1
    assert ran == {"llen": 3, "lindex": 2, "zcard": 5, "hget": 1, "exists": 1}


async def test_rates_between_polls(redis_server: RedisServer, r: redis.Redis) -> None:
    bull_v3(r, "img", paused=False)
    clock = Tick()
    conn = connection(redis_server)
    client = RedisClient(conn)
    source = QueueSource(
        probe(flavor="bull", queue="img", value="completed_per_s"), conn, client, clock=clock
    )
    try:
        first = await source.poll()
        assert "completed_per_s" not in first.fields and first.value is None
        r.zadd("bull:img:completed", {f"new-{i}": 0 for i in range(20)})
        r.zadd("bull:img:failed", {"new-f": 0})
        clock.now += 10
        second = await source.poll()
        assert second.fields["completed_per_s"] == pytest.approx(2.0)
        assert second.fields["failed_per_s"] == pytest.approx(0.1)
        assert second.value == pytest.approx(2.0)
        assert ("done", "2.0/s") in second.facts
        r.delete("bull:img:completed")  # trimmed: the count drops
        clock.now += 10
        third = await source.poll()
        assert "completed_per_s" not in third.fields
        assert third.fields["failed_per_s"] == 0.0
        fill_zset(r, "bull:img:completed", 5)
        clock.now += 5
        fourth = await source.poll()
        assert fourth.fields["completed_per_s"] == pytest.approx(1.0)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"flavor": "rq", "value": "active"}, "a rq queue has no field 'active'"),
        ({"flavor": "celery", "queue": "*"}, 'queue "*" needs a flavor'),
        ({"flavor": "list", "group": "g"}, "group applies to the stream flavor only"),
        ({"flavor": "stream", "prefix": "x"}, "prefix does not apply to stream"),
        (
            {"flavor": "sidekiq", "thresholds": {"field": "waitin", "above": {"warn": 1}}},
            "no field 'waitin'",
        ),
    ],
)
def test_config_checks_value_per_flavor(extra: dict[str, Any], message: str) -> None:
    data = {"queue": "q", **extra}
    with pytest.raises(ValidationError) as caught:
        probe(**data)
    assert message in str(caught.value)


def test_stream_default_value_is_length() -> None:
    assert probe(flavor="stream", queue="s").value == "length"
    assert probe(flavor="bullmq", queue="q").value == "waiting"
