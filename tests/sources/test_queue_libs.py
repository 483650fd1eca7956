"""Queue probes against queues the job libraries themselves filled, on a real redis-server.

Each test compares the probe with the library's own view, read without side effects: RQ's
`len(queue)` and `get_job_count(cleanup=False)` (plain `count` cleans up, i.e. writes),
kombu's queue_declare(passive=True) for Celery, and BullMQ's Queue.getJobCounts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from opstui.config.kinds.redis import QueueProbe, RedisConnection
from opstui.sources.base import Reading
from opstui.sources.queue import QueueSource
from opstui.sources.redis_client import RedisClient
from tests.servers.redis import RedisServer
from tests.servers.started import redis_started
from tests.support import Tick


def ok_job(n: int) -> int:
    """An RQ job that succeeds (imported by the worker by its dotted path)."""
    return n * 2


def bad_job(n: int) -> int:
    """An RQ job that fails."""
    raise RuntimeError(f"job {n} fails on purpose")




@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("redis-libs")) as server:
        yield server


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.sync_client()
    client.flushall()
    yield client
    client.close()


def make_source(server: RedisServer, clock: Tick | None = None, **extra: Any) -> QueueSource:
    conn = RedisConnection.model_validate({"kind": "redis", "url": server.url})
    probe = QueueProbe.model_validate({"kind": "queue", "id": "q", "connection": "r", **extra})
    source = QueueSource(probe, conn, RedisClient(conn))
    if clock is not None:
        source.clock = clock
    return source


async def poll(server: RedisServer, **extra: Any) -> Reading:
    source = make_source(server, **extra)
    try:
        return await source.poll()
    finally:
        await source.client.aclose()


# --- RQ -------------------------------------------------------------------------------------


def rq_counts(queue: Any) -> dict[str, int]:
    """RQ's own counts, read-only: len(queue) is LLEN; get_job_count(cleanup=False) is ZCARD."""
    from rq.registry import (
        CanceledJobRegistry,
        DeferredJobRegistry,
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    registries = {
        "started": StartedJobRegistry,
        "finished": FinishedJobRegistry,
        "failed": FailedJobRegistry,
        "deferred": DeferredJobRegistry,
        "scheduled": ScheduledJobRegistry,
        "canceled": CanceledJobRegistry,
    }
    counts = {"waiting": len(queue)}
    for name, registry in registries.items():
        counts[name] = registry(queue=queue).get_job_count(cleanup=False)
    return counts


def run_burst(queue: Any, connection: redis.Redis) -> None:
    from rq import SimpleWorker

    SimpleWorker([queue], connection=connection).work(burst=True)


async def test_rq_counts_match_rq(redis_server: RedisServer) -> None:
    from rq import Queue
    from rq.executions import Execution
    from rq.job import Job
    from rq.registry import StartedJobRegistry

    connection = redis.Redis(host="127.0.0.1", port=redis_server.port)
    r = redis_server.sync_client()
    r.flushall()
    emails = Queue("emails", connection=connection)
    for n in range(3):
        emails.enqueue(ok_job, n)
    for n in range(2):
        emails.enqueue(bad_job, n)
    run_burst(emails, connection)  # 3 finished, 2 failed
    blocker = emails.enqueue(ok_job, 10)
    for n in range(3):
        emails.enqueue(ok_job, n)
    emails.enqueue(ok_job, 99, depends_on=blocker)  # deferred until blocker finishes
    for n in range(2):
        emails.enqueue_in(timedelta(minutes=10), ok_job, n)
    emails.enqueue(ok_job, 7).cancel()
    running = Job.create(ok_job, args=(5,), connection=connection, origin="emails")
    running.save()
    with connection.pipeline() as pipe:  # as a worker marks a job it runs: one execution
        execution = Execution(id="exec-1", job_id=running.id, connection=connection)
        StartedJobRegistry(queue=emails).add_execution(execution, pipeline=pipe, ttl=600)
        pipe.execute()
    Queue("reports", connection=connection).enqueue(ok_job, 1)
    expected = rq_counts(emails)
    assert expected == {
        "waiting": 4,
        "started": 1,
        "finished": 3,
        "failed": 2,
        "deferred": 1,
        "scheduled": 2,
        "canceled": 1,
    }

    clock = Tick()
    source = make_source(redis_server, clock=clock, flavor="rq", queue="emails")
    try:
        first = await source.poll()
        assert {k: first.fields[k] for k in expected} == expected
        assert first.value == 4
        assert "completed_per_s" not in first.fields
        assert rq_counts(emails) == expected  # our poll wrote nothing
        run_burst(emails, connection)  # 4 more finished (+ the deferred one once unblocked)
        clock.now += 10
        second = await source.poll()
    finally:
        await source.client.aclose()
    after = rq_counts(emails)
    assert {k: second.fields[k] for k in after} == after
    finished_delta = after["finished"] - expected["finished"]
    assert finished_delta >= 4
    assert second.fields["completed_per_s"] == pytest.approx(finished_delta / 10)
    assert second.fields["failed_per_s"] == 0.0

    everything = await poll(redis_server, flavor="rq", queue="*", value="finished")
    assert everything.table is not None
    names = [row[0] for row in everything.table.rows]
    assert sorted(names) == sorted(q.name for q in Queue.all(connection=connection))
    assert names[0] == "emails"  # most finished first
    assert everything.fields["queues"] == 2
    assert everything.value == after["finished"]
    connection.close()
    r.close()


# --- Celery (kombu's Redis transport) ---------------------------------------------------------


async def test_celery_priority_lists_and_unacked(redis_server: RedisServer, r: redis.Redis) -> None:
    from celery import Celery

    app = Celery("opstui-test", broker=redis_server.url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    priorities = [0, 0, 1, 4, 5, 8, 9, 9]
    for p in priorities:
        app.send_task("tasks.send_mail", args=(p,), queue="mail", priority=p)
    with app.connection_for_read() as conn:
        library = conn.default_channel.queue_declare("mail", passive=True).message_count
        broker_lists = {
            key: r.llen(key) for key in r.scan_iter(match="mail*") if r.type(key) == "list"
        }
        assert len(broker_lists) > 1, "priorities should spread over several lists"
        assert library == sum(broker_lists.values()) == len(priorities)
        reading = await poll(redis_server, flavor="celery", queue="mail")
        assert reading.fields["waiting"] == library
        assert reading.fields["unacked"] == 0
        assert any(label == "by priority" for label, _ in reading.facts)

        consumer = conn.SimpleQueue("mail")
        message = consumer.get(timeout=5)  # taken, not acked: kombu parks it in `unacked`
        held = await poll(redis_server, flavor="celery", queue="mail", value="unacked")
        assert held.fields["unacked"] == r.hlen("unacked") == 1
        assert held.fields["waiting"] == len(priorities) - 1
        assert held.value == 1
        message.ack()
        consumer.close()


# --- BullMQ (the bullmq package: the v6 layout, paused jobs stay in `wait`) ------------------

BULLMQ_TYPES = (
    "wait",
    "paused",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "waiting-children",
)


async def bullmq_counts(queue: Any) -> dict[str, int]:
    counts: dict[str, int] = await queue.getJobCounts(*BULLMQ_TYPES)
    return counts


async def test_bullmq_counts_match_getjobcounts(redis_server: RedisServer, r: redis.Redis) -> None:
    from bullmq import Queue, Worker

    opts = {"connection": redis_server.url}
    queue = Queue("mail", opts)
    worker: Any = None
    try:
        for n in range(3):
            await queue.add("ok", {"fail": False, "n": n})
        for n in range(2):
            await queue.add("bad", {"fail": True, "n": n})

        async def process(job: Any, token: str) -> int:
            if job.data["fail"]:
                raise RuntimeError("fails on purpose")
            return int(job.data["n"])

        worker = Worker("mail", process, opts)
        deadline = time.monotonic() + 30
        while True:
            counts = await bullmq_counts(queue)
            if counts["completed"] == 3 and counts["failed"] == 2:
                break
            assert time.monotonic() < deadline, f"worker did not finish: {counts}"
            await asyncio.sleep(0.05)
        await worker.close()
        worker = None

        for n in range(4):
            await queue.add("later-ok", {"fail": False, "n": n})
        await queue.add("delayed", {"fail": False, "n": 0}, {"delay": 600_000})
        for n in range(2):
            await queue.add("urgent", {"fail": False, "n": n}, {"priority": 3})
        lib = await bullmq_counts(queue)
        reading = await poll(redis_server, flavor="bullmq", queue="mail")
        assert reading.fields["waiting"] == lib["wait"] == 4
        assert reading.fields["paused"] == lib["paused"] == 0
        for state in ("active", "delayed", "prioritized", "completed", "failed"):
            assert reading.fields[state] == lib[state], state
        assert reading.fields["waiting_children"] == lib["waiting-children"]
        assert reading.fields["is_paused"] is False

        await queue.pause()
        assert await queue.isPaused()
        lib = await bullmq_counts(queue)
        assert lib["wait"] == 4 and lib["paused"] == 0  # v6: jobs stay in wait, meta.paused=1
        paused = await poll(redis_server, flavor="bullmq", queue="mail", value="paused")
        assert paused.fields["is_paused"] is True
        assert paused.fields["paused"] == lib["wait"] + lib["paused"] == paused.value == 4
        assert paused.fields["waiting"] == 0
        assert paused.fields["prioritized"] == lib["prioritized"] == 2
    finally:
        if worker is not None:
            await worker.close()
        await queue.close()
