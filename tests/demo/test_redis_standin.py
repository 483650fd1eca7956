"""The demo's Redis stand-in, driven by redis-py: every command it implements, pipelines too.

Most tests run twice, on the stand-in and on a real redis-server started the way the demo
starts it, so they prove the stand-in answers as Redis does, not only as we think it should.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rexc

from opstui.demo.redis_standin import COMMANDS, SUBCOMMANDS, RedisStandin, glob_regex
from tests.demo.conftest import client_for


async def test_ping_select_and_client_names(any_redis: aioredis.Redis) -> None:
    assert await any_redis.ping() is True
    assert await any_redis.execute_command("CLIENT SETNAME", "opstui") in (True, "OK")
    one = aioredis.Redis(
        connection_pool=any_redis.connection_pool, single_connection_client=True
    )
    assert await one.execute_command("SELECT", 3) in (True, "OK")
    await one.rpush("t:db3", "x")
    assert await one.execute_command("SELECT", 0) in (True, "OK")
    assert await one.exists("t:db3") == 0
    with pytest.raises(rexc.ResponseError, match="out of range"):
        await one.execute_command("SELECT", 99)
    await one.execute_command("SELECT", 3)
    assert await one.delete("t:db3") == 1
    await one.execute_command("SELECT", 0)
    await one.aclose(close_connection_pool=False)


async def test_lists(any_redis: aioredis.Redis) -> None:
    r = any_redis
    assert await r.lpush("t:l", "a", "b") == 2  # b a
    assert await r.rpush("t:l", "c", "a") == 4  # b a c a
    assert await r.llen("t:l") == 4
    assert await r.lrange("t:l", 0, -1) == ["b", "a", "c", "a"]
    assert await r.lrange("t:l", -2, 10) == ["c", "a"]
    assert await r.lrange("t:l", 3, 1) == []
    assert await r.lindex("t:l", -1) == "a"
    assert await r.lindex("t:l", 9) is None
    assert await r.lrem("t:l", -1, "a") == 1  # b a c
    assert await r.lrange("t:l", 0, -1) == ["b", "a", "c"]
    assert await r.lpop("t:l") == "b"
    assert await r.rpop("t:l") == "c"
    await r.rpush("t:l", "x", "y", "z")  # a x y z
    assert await r.lpop("t:l", 2) == ["a", "x"]
    assert await r.rpop("t:l", 5) == ["z", "y"]
    assert await r.exists("t:l") == 0  # an emptied list is gone
    assert await r.rpop("t:l") is None
    assert await r.llen("t:missing") == 0
    await r.rpush("t:m", "a", "b", "a", "a")
    assert await r.lrem("t:m", 0, "a") == 3
    assert await r.lrange("t:m", 0, -1) == ["b"]


async def test_sorted_sets(any_redis: aioredis.Redis) -> None:
    r = any_redis
    assert await r.zadd("t:z", {"a": 3, "b": 1, "c": 2}) == 3
    assert await r.zadd("t:z", {"a": 0.5, "d": 4}) == 1  # a updated, d added
    assert await r.zcard("t:z") == 4
    assert await r.zrange("t:z", 0, -1) == ["a", "b", "c", "d"]
    assert await r.zrange("t:z", 0, 1, withscores=True) == [("a", 0.5), ("b", 1.0)]
    assert await r.zrem("t:z", "b", "nope") == 1
    assert await r.zremrangebyrank("t:z", 0, -3) == 1  # drop all but the newest 2
    assert await r.zrange("t:z", 0, -1) == ["c", "d"]
    assert await r.zcard("t:missing") == 0
    await r.zadd("t:tie", {"b": 1, "a": 1})
    assert await r.zrange("t:tie", 0, -1) == ["a", "b"]  # equal scores: by member


async def test_hashes(any_redis: aioredis.Redis) -> None:
    r = any_redis
    assert await r.hset("t:h", mapping={"paused": "1", "version": "bullmq:5"}) == 2
    assert await r.hset("t:h", "paused", "0") == 0
    assert await r.hget("t:h", "paused") == "0"
    assert await r.hget("t:h", "nope") is None
    assert await r.hgetall("t:h") == {"paused": "0", "version": "bullmq:5"}
    assert await r.hgetall("t:missing") == {}
    assert await r.hdel("t:h", "paused", "nope") == 1
    assert await r.hgetall("t:h") == {"version": "bullmq:5"}
    assert await r.hdel("t:h", "version") == 1
    assert await r.exists("t:h") == 0
    assert await r.hdel("t:missing", "x") == 0


async def test_keyspace_type_exists_del_scan(any_redis: aioredis.Redis) -> None:
    r = any_redis
    await r.rpush("t:bull:q:wait", "1")
    await r.zadd("t:bull:q:completed", {"1": 1})
    await r.hset("t:bull:q:meta", "paused", "0")
    assert await r.type("t:bull:q:wait") == "list"
    assert await r.type("t:bull:q:completed") == "zset"
    assert await r.type("t:bull:q:meta") == "hash"
    assert await r.type("t:none") == "none"
    assert await r.exists("t:bull:q:wait", "t:bull:q:meta", "t:none") == 2
    found = {key async for key in r.scan_iter(match="t:bull:*:[mw][ea]*", count=1)}
    assert found == {"t:bull:q:wait", "t:bull:q:meta"}
    cursor, batch = await r.scan(0, match="t:*", count=1000)
    assert cursor == 0 and len(batch) == 3
    assert await r.delete("t:bull:q:wait", "t:bull:q:completed", "t:none") == 2
    assert await r.xlen("t:no-stream") == 0


async def test_wrong_type_and_bad_arguments(any_redis: aioredis.Redis) -> None:
    r = any_redis
    await r.rpush("t:list", "a")
    for call in (r.zcard("t:list"), r.hget("t:list", "f"), r.xlen("t:list")):
        with pytest.raises(rexc.ResponseError, match="WRONGTYPE"):
            await call
    with pytest.raises(rexc.ResponseError, match="wrong number of arguments"):
        await r.execute_command("LLEN")
    with pytest.raises(rexc.ResponseError, match="not an integer"):
        await r.execute_command("LRANGE", "t:list", "x", 1)
    with pytest.raises(rexc.ResponseError, match="not a valid float"):
        await r.execute_command("ZADD", "t:z", "nan-ish", "m")


async def test_server_info_config_slowlog(any_redis: aioredis.Redis) -> None:
    r = any_redis
    info = await r.info("clients")
    assert info["connected_clients"] >= 1 and "blocked_clients" in info
    memory = await r.info("memory")
    assert memory["used_memory"] > 0 and memory["maxmemory"] == 64 * 1024 * 1024
    stats = await r.info("stats")
    for name in ("evicted_keys", "instantaneous_ops_per_sec", "rejected_connections"):
        assert name in stats
    server = await r.info("server")
    assert len(server["run_id"]) == 40
    assert "connected_clients" not in server  # only the asked section
    assert await r.execute_command("CONFIG GET", "maxclients") == {"maxclients": "10000"}
    assert await r.execute_command("CONFIG GET", "maxmemory") == {"maxmemory": "67108864"}
    assert isinstance(await r.execute_command("SLOWLOG LEN"), int)


async def test_command_info_matches_redis(any_redis: aioredis.Redis) -> None:
    """Arity, flags and key positions as Redis 7 states them; a later classifier of read
    and write commands relies on these flags."""
    names = [*COMMANDS, "config|get", "slowlog|len", "client|setname", "command|info"]
    replies = await any_redis.execute_command("COMMAND INFO", *names, "nosuchcommand")
    assert replies[-1] is None
    for name, reply in zip(names, replies, strict=False):
        spec = COMMANDS.get(name) or SUBCOMMANDS[name]
        assert reply[:2] == [name, spec.arity], name
        assert list(reply[2]) == list(spec.flags), name
        assert reply[3:6] == [spec.first_key, spec.last_key, spec.step], name
    flags = {name: set(reply[2]) for name, reply in zip(names, replies, strict=False)}
    assert "readonly" in flags["llen"] and "readonly" in flags["zcard"]
    assert "write" in flags["lpush"] and "write" in flags["del"]


async def test_pipeline_keeps_order_and_reports_errors_in_place(
    any_redis: aioredis.Redis,
) -> None:
    async with any_redis.pipeline(transaction=False) as pipe:
        pipe.lpush("t:p", "1", "2")
        pipe.execute_command("ZCARD", "t:p")  # WRONGTYPE, in the middle
        pipe.llen("t:p")
        pipe.hset("t:ph", "paused", "1")
        pipe.hget("t:ph", "paused")
        replies = await pipe.execute(raise_on_error=False)
    assert replies[0] == 2
    assert isinstance(replies[1], rexc.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert replies[2:] == [2, 1, "1"]


# --- the stand-in only -----------------------------------------------------------------------


async def test_hello_is_refused_so_clients_stay_on_resp2(standin: RedisStandin) -> None:
    client = client_for(standin.url)
    with pytest.raises(rexc.ResponseError, match="NOPROTO"):
        await client.execute_command("HELLO", "3")
    assert await client.ping() is True
    await client.aclose()
    resp3 = aioredis.Redis.from_url(standin.url, protocol=3, socket_timeout=5)
    with pytest.raises(rexc.RedisError):
        await resp3.ping()
    await resp3.aclose()


async def test_unknown_commands_get_a_clear_error(standin: RedisStandin) -> None:
    client = client_for(standin.url)
    with pytest.raises(rexc.ResponseError, match=r"unknown command 'FLUSHALL'.*stand-in"):
        await client.execute_command("FLUSHALL")
    with pytest.raises(rexc.ResponseError, match="only CONFIG GET"):
        await client.execute_command("CONFIG SET", "maxmemory", "1")
    with pytest.raises(rexc.ResponseError, match="CLIENT KILL is not implemented"):
        await client.execute_command("CLIENT KILL", "TYPE", "normal")
    assert await client.ping() is True  # the connection survives errors
    await client.aclose()


async def test_inline_commands_and_counters(standin: RedisStandin) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", standin.port)
    writer.write(b"PING\r\nLLEN nothing\r\n")
    await writer.drain()
    assert await reader.readline() == b"+PONG\r\n"
    assert await reader.readline() == b":0\r\n"
    writer.close()
    await writer.wait_closed()
    client = client_for(standin.url)
    info = await client.info("stats")
    assert info["total_commands_processed"] >= 3
    assert info["instantaneous_ops_per_sec"] >= 1
    await client.aclose()


def test_glob_matches_like_redis() -> None:
    assert glob_regex(b"bull:*:[im][de]*").match(b"bull:q:meta")
    assert glob_regex(b"bull:*:[im][de]*").match(b"bull:q:id")
    assert not glob_regex(b"bull:*:[im][de]*").match(b"bull:q:wait")
    assert glob_regex(b"a\\*b").match(b"a*b") and not glob_regex(b"a\\*b").match(b"axb")
    assert glob_regex(b"h?llo").match(b"hello") and not glob_regex(b"h[^e]llo").match(b"hello")
