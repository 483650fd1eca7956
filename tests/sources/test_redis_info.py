"""redis_info probes against real redis-server processes; `opstui check --json` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.config.kinds.redis import RedisConnection, RedisInfoProbe
from opstui.sources.base import ProbeError, Reading
from opstui.sources.redis_client import RedisClient
from opstui.sources.redis_info import RedisInfoSource
from tests.servers.redis import RedisServer, commands_between, commandstats
from tests.servers.started import redis_started
from tests.support import Tick, free_port, require_binary


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("redis-info")) as server:
        yield server


def make_source(url: str, clock: Tick | None = None, **extra: Any) -> RedisInfoSource:
    conn_data = {"kind": "redis", "url": url, "timeout": extra.pop("timeout", "2s")}
    for key in ("password", "ca_file", "verify_tls"):
        if key in extra:
            conn_data[key] = extra.pop(key)
    conn = RedisConnection.model_validate(conn_data)
    probe = RedisInfoProbe.model_validate(
        {"kind": "redis_info", "id": "info", "connection": "r", **extra}
    )
    return RedisInfoSource(probe, conn, RedisClient(conn), clock=clock or Tick())


async def poll(url: str, **extra: Any) -> Reading:
    source = make_source(url, **extra)
    try:
        return await source.poll()
    finally:
        await source.client.aclose()


async def test_fields_match_info(redis_server: RedisServer) -> None:
    r = redis_server.sync_client()
    blockers = [redis_server.sync_client(socket_timeout=10) for _ in range(2)]
    r.config_set("maxclients", 500)
    r.config_set("maxmemory", 64 * 1024 * 1024)
    r.config_set("slowlog-log-slower-than", 0)  # log every command: the slowlog fills
    r.slowlog_reset()
    r.set("k", "v")
    pool: list[asyncio.Task[Any]] = []
    try:
        for b in blockers:  # two clients blocked in BLPOP while we poll
            pool.append(asyncio.create_task(asyncio.to_thread(b.blpop, ["never"], 8)))
        deadline = asyncio.get_running_loop().time() + 10
        while r.info("clients")["blocked_clients"] < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        source = make_source(redis_server.url, value="clients_ratio")
        before = commandstats(r)
        trips = source.client.round_trips
        reading = await source.poll()
        ran = commands_between(before, commandstats(r))
        await source.client.aclose()
        info = r.info()
        assert source.client.round_trips == trips + 1
        assert ran.keys() <= {"info", "config|get", "slowlog|len", "client|setname", "slowlog"}
        assert ran["info"] == 4 and ran["config|get"] == 2
        fields = reading.fields
        assert fields["maxclients"] == 500 and fields["maxmemory"] == 64 * 1024 * 1024
        assert fields["blocked_clients"] == info["blocked_clients"] == 2
        assert fields["connected_clients"] >= 4  # r, two blockers, the probe
        assert fields["evicted_keys"] == info["evicted_keys"] == 0
        assert fields["rejected_connections"] == info["rejected_connections"]
        assert fields["slowlog_len"] >= 1
        assert reading.value == pytest.approx(fields["connected_clients"] / 500)
        assert fields["memory_ratio"] == pytest.approx(fields["used_memory"] / (64 * 1024 * 1024))
        assert abs(fields["used_memory"] - info["used_memory"]) < 1024 * 1024
        assert "evictions_per_s" not in fields  # first poll: no rate yet
        facts = dict(reading.facts)
        assert facts["clients"] == f"{fields['connected_clients']}/500"
        assert facts["blocked"] == "2"
        assert facts["memory"].endswith("/ 64.0 MiB")
    finally:
        r.rpush("never", "release", "both")
        await asyncio.gather(*pool)
        r.config_set("maxmemory", 0)
        r.config_set("maxclients", 10000)
        r.config_set("slowlog-log-slower-than", 10000)
        r.close()
        for b in blockers:
            b.close()


async def test_memory_ratio_without_limit_is_nodata(redis_server: RedisServer) -> None:
    reading = await poll(redis_server.url, value="memory_ratio")
    assert reading.no_data == "maxmemory is 0 (no limit) or unknown"
    assert "memory_ratio" not in reading.fields
    assert dict(reading.facts)["memory"].endswith("(no limit)")


async def test_evictions_per_second(tmp_path: Path) -> None:
    server = RedisServer(
        tmp_path,
        binary=require_binary("redis-server"),
        extra=["--maxmemory", "3mb", "--maxmemory-policy", "allkeys-random"],
    )
    server.start()
    clock = Tick()
    source = make_source(server.url, clock=clock, value="evictions_per_s")
    try:
        first = await source.poll()
        assert first.value is None and first.fields["evicted_keys"] == 0
        r = server.sync_client()
        blob = "x" * 10_000
        for start in range(0, 1000, 100):
            with r.pipeline(transaction=False) as pipe:
                for i in range(start, start + 100):
                    pipe.set(f"k{i}", blob)
                pipe.execute()
        evicted = r.info("stats")["evicted_keys"]
        assert evicted > 0
        clock.now += 20
        second = await source.poll()
        assert second.fields["evicted_keys"] == evicted
        assert second.value == pytest.approx(evicted / 20)
        assert dict(second.facts)["evictions"].endswith("/s")
        r.close()
    finally:
        await source.client.aclose()
        server.stop()


async def test_config_renamed_falls_back_to_info(tmp_path: Path) -> None:
    server = RedisServer(
        tmp_path,
        binary=require_binary("redis-server"),
        extra=["--rename-command", "CONFIG", "", "--maxclients", "321"],
    )
    server.start()
    try:
        reading = await poll(server.url)
        assert reading.fields["maxclients"] == 321  # from INFO clients
        assert reading.fields["clients_ratio"] == pytest.approx(1 / 321)
        assert any(n.startswith("CONFIG GET unavailable") for n in reading.notes)
    finally:
        server.stop()


async def test_auth_required_wrong_password_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RedisServer(tmp_path, binary=require_binary("redis-server"), requirepass="s3cret")
    server.start()
    try:
        with pytest.raises(ProbeError) as missing:
            await poll(server.url)
        assert missing.value.reason == "NOAUTH: auth required"
        assert missing.value.hint is not None and "password" in missing.value.hint
        monkeypatch.setenv("REDIS_PW", "wrong")
        with pytest.raises(ProbeError) as wrong:
            await poll(server.url, password="${REDIS_PW}")
        assert wrong.value.reason == "WRONGPASS"
        assert "s3cret" not in str(wrong.value.detail) and "wrong" not in wrong.value.reason
        monkeypatch.setenv("REDIS_PW", "s3cret")
        good = await poll(server.url, password="${REDIS_PW}")
        assert good.fields["connected_clients"] >= 1
    finally:
        server.stop()
    with pytest.raises(ProbeError) as refused:
        await poll(f"redis://127.0.0.1:{free_port()}/0")
    assert refused.value.reason == "refused"


async def test_hung_server_times_out(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, binary=require_binary("redis-server"))
    server.start()
    source = make_source(server.url, timeout="1s")
    try:
        assert (await source.poll()).fields["connected_clients"] >= 1
        server.hang()
        try:
            with pytest.raises(ProbeError) as hung:
                await source.poll()
            assert hung.value.reason == "timeout after 1s"
        finally:
            server.unhang()
        back = await source.poll()  # the pool drops the broken connection and reconnects
        assert back.fields["connected_clients"] >= 1
    finally:
        await source.client.aclose()
        server.stop()


# --- `opstui check --json` with a queue probe and a redis_info probe -------------------------


async def test_check_json_reports_queue_and_redis_info(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    r = redis_server.sync_client()
    r.flushall()
    r.hset("bull:mail:meta", "opts.maxLenEvents", 10000)
    r.rpush("bull:mail:wait", *[str(i) for i in range(7)])
    r.zadd("bull:mail:failed", {"f1": 1, "f2": 2})
    r.close()
    config = tmp_path / "redis.yaml"
    config.write_text(
        f"""
title: Redis checks
refresh: 1s
connections:
  cache: {{kind: redis, url: "{redis_server.url}", timeout: 2s}}
  gone: {{kind: redis, url: "redis://127.0.0.1:{free_port()}/0", timeout: 1s}}
probes:
  - id: mail
    kind: queue
    connection: cache
    flavor: bullmq
    queue: mail
    thresholds: {{above: {{warn: 5, crit: 100}}}}
  - {{id: ghost, kind: queue, connection: cache, flavor: rq, queue: ghost}}
  - {{id: server, kind: redis_info, connection: cache, value: connected_clients}}
  - {{id: down, kind: redis_info, connection: gone}}
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
        env={**os.environ, "NO_COLOR": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    document = json.loads(out)
    probes = {p["id"]: p for p in document["probes"]}
    mail = probes["mail"]
    assert mail["kind"] == "queue" and mail["state"] == "warn", err.decode()
    assert mail["value"] == 7
    assert mail["fields"]["waiting"] == 7 and mail["fields"]["failed"] == 2
    assert mail["fields"]["is_paused"] is False
    assert probes["ghost"]["state"] == "nodata"
    assert probes["ghost"]["error"] == "queue 'ghost' not found"
    server = probes["server"]
    assert server["state"] == "ok" and server["kind"] == "redis_info"
    assert server["fields"]["maxclients"] == 10000
    assert server["value"] == server["fields"]["connected_clients"] >= 1
    assert probes["down"]["state"] == "error" and probes["down"]["error"] == "refused"
    assert document["worst"] in ("error", "nodata")  # they rank the same
    assert proc.returncode != 0


def test_unknown_field_is_a_config_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        RedisInfoProbe.model_validate(
            {"kind": "redis_info", "id": "i", "connection": "r", "value": "used_cpu"}
        )
    assert "redis_info has no field 'used_cpu'" in str(caught.value)


async def test_polls_wait_for_a_free_connection_instead_of_failing(
    redis_server: RedisServer,
) -> None:
    """More probes than pooled connections poll at once (an untuned Sidekiq config): each
    waits for a connection within its deadline; none says "pool exhausted"."""
    conn = RedisConnection.model_validate(
        {"kind": "redis", "url": redis_server.url, "timeout": "5s", "max_connections": 1}
    )
    client = RedisClient(conn)
    try:
        replies = await asyncio.gather(
            *(client.execute("PING") for _ in range(20)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert [r for r in replies if isinstance(r, BaseException)] == []
    assert replies == [True] * 20
