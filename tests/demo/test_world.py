"""The simulated Anclora world: time moves it, Redis mirrors it, ECS sizes it."""

from __future__ import annotations

import dataclasses

import redis.asyncio as aioredis

from opstui.demo.redis_standin import RedisStandin
from opstui.demo.world import World, WorldSettings
from tests.demo.conftest import client_for

CALM = WorldSettings(burst_every=0)


def run(world: World, until: float, tick: float = 0.25) -> list[tuple[object, ...]]:
    commands: list[tuple[object, ...]] = []
    steps = round((until - world.now) / tick)
    start = world.now
    for i in range(1, steps + 1):
        commands.extend(world.advance(start + i * tick))
    return commands


def test_time_moves_counts_and_completed_is_trimmed() -> None:
    world = World(seed=3, settings=dataclasses.replace(CALM, keep_completed=200))
    run(world, 60)
    counts = world.counts()
    assert world.total_added > 60 * 20
    assert world.total_completed > 60 * 20
    assert counts["completed"] == 200  # removeOnComplete: the newest 200 kept
    assert world.total_retried > 0 and world.total_failed > 0  # some attempts fail
    assert counts["failed"] == world.total_failed
    assert world.total_added == (
        world.total_completed + world.total_failed + counts["waiting"] + counts["active"]
        + counts["prioritized"] + counts["delayed"]
    )


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b, c = World(seed=11), World(seed=11), World(seed=12)
    assert run(a, 30) == run(b, 30)
    assert a.counts() == b.counts() and a.total_completed == b.total_completed
    run(c, 30)
    assert c.total_added != a.total_added


def test_more_workers_drain_the_backlog() -> None:
    """Arrivals above what 2 tasks can do build a backlog; scaling to 8 tasks drains it."""
    heavy = dataclasses.replace(CALM, base_rate=100.0)
    world = World(seed=5, settings=heavy)
    run(world, 60)
    backlog = world.backlog
    assert backlog > 1000
    lag_before = world.health().event_loop_lag_ms
    world.set_tasks(8)
    assert world.workers == 8 * CALM.concurrency
    run(world, 120)
    assert world.backlog < backlog / 10
    assert world.health().event_loop_lag_ms < lag_before  # the lag follows the backlog


def test_paused_queue_takes_no_new_jobs() -> None:
    world = World(seed=2, settings=CALM)
    run(world, 5)
    world.set_paused(True)
    run(world, 15)  # running jobs finish, nothing new starts
    done = world.total_completed + world.total_failed + world.total_retried
    run(world, 25)
    assert world.total_completed + world.total_failed + world.total_retried == done
    assert world.counts()["active"] == 0
    assert world.counts()["waiting"] > 100
    world.set_paused(False)
    run(world, 90)
    assert world.counts()["waiting"] < 50


def test_metrics_follow_the_world() -> None:
    world = World(seed=4, settings=CALM)
    run(world, 20)
    text = world.metrics.exposition().decode()
    success = f'anclora_messages_processed_total{{status="success"}} {world.total_completed}.0'
    assert success in text
    count = world.total_completed + world.total_failed + world.total_retried
    assert f'anclora_queue_processing_duration_seconds_count{{queue="anclora-whatsapp"}} ' \
           f"{count}.0" in text
    waiting = world.counts()["waiting"]
    assert f'anclora_queue_depth{{queue="anclora-whatsapp",state="waiting"}} {waiting}.0' in text


async def _apply(client: aioredis.Redis, commands: list[tuple[object, ...]]) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        await pipe.execute(raise_on_error=True)


async def test_redis_keys_mirror_the_world_as_bullmq_lays_them_out() -> None:
    server = RedisStandin()
    await server.start()
    client = client_for(server.url)
    try:
        world = World(seed=9, settings=dataclasses.replace(CALM, keep_completed=300))
        await _apply(client, world.reset_commands())
        for second in range(1, 41):
            await _apply(client, world.advance(float(second)))
        key = world.key
        assert key("wait") == "bull:anclora-whatsapp:wait"
        counts = world.counts()
        assert await client.llen(key("wait")) == counts["waiting"]
        assert await client.llen(key("active")) == counts["active"]
        assert await client.zcard(key("prioritized")) == counts["prioritized"]
        assert await client.zcard(key("delayed")) == counts["delayed"]
        assert await client.zcard(key("completed")) == 300
        assert await client.zcard(key("failed")) == counts["failed"] > 0
        assert await client.hget(key("meta"), "paused") == "0"
        for name, kind in (("wait", "list"), ("completed", "zset"), ("meta", "hash")):
            if await client.exists(key(name)):
                assert await client.type(key(name)) == kind
        active = await client.lrange(key("active"), 0, -1)
        assert sorted(active) == sorted(r.job for r in world.running)
        # A rewrite from scratch gives the same counts (what the runner does after an outage).
        await _apply(client, world.reset_commands())
        assert await client.zcard(key("completed")) == 300
        assert await client.llen(key("wait")) == counts["waiting"]
    finally:
        await client.aclose()
        await server.stop()
