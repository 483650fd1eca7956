"""Fixtures of the demo tests: the Redis stand-in in the test's loop, and (for parity checks)
a real redis-server child started the way the demo starts it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from opstui.demo.redis_backend import RedisServerProcess
from opstui.demo.redis_standin import RedisStandin
from tests.support import require_binary


@pytest.fixture(scope="module")
def real_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerProcess]:
    server = RedisServerProcess(
        require_binary("redis-server"), tmp_path_factory.mktemp("demo-redis")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def standin() -> AsyncIterator[RedisStandin]:
    server = RedisStandin()
    await server.start()
    yield server
    await server.stop()


def client_for(url: str) -> aioredis.Redis:
    """A RESP2 redis-py client with short timeouts, as opstui's sources configure theirs."""
    return aioredis.Redis.from_url(
        url, protocol=2, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
    )


@pytest.fixture(params=["standin", "redis-server"])
async def any_redis(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[aioredis.Redis]:
    """A client of the stand-in, then of a real redis-server: the same test runs on both, so
    the stand-in answers as Redis does."""
    if request.param == "standin":
        server = RedisStandin()
        await server.start()
        client = client_for(server.url)
        yield client
        await client.aclose()
        await server.stop()
    else:
        real: RedisServerProcess = request.getfixturevalue("real_redis")
        client = client_for(real.url)
        await client.execute_command("SELECT", 0)
        keys = [k async for k in client.scan_iter(match="t:*")]
        if keys:
            await client.delete(*keys)
        yield client
        await client.aclose()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
