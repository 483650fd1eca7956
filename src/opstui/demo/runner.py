"""Drives the World in real time and mirrors it into Redis; sizes its workers from ECS.

Runs as asyncio tasks in the demo server's loop. Every tick the world advances to the
monotonic time since start and its commands go to Redis in one pipeline, which also reads
the queue's meta.paused flag back (so a pause made in Redis stops the workers). A failed
write marks the mirror dirty and the next good tick rewrites the keys whole. Every second the
ECS service's desiredCount (a blocking boto3 call, run in a worker thread) sizes the workers.
`speed` runs the world's clock faster than the wall clock (tests, rehearsals); `demo_runner`
builds the one `opstui demo` uses, with the guided incident unless OPSTUI_DEMO_CALM is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opstui.demo.world import Incident, World

if TYPE_CHECKING:
    import redis.asyncio as aioredis

Monotonic = Callable[[], float]
TasksReader = Callable[[], int | None]

TICK = 0.25
ECS_EVERY = 1.0
REDIS_TIMEOUT = 2.0
ECS_TIMEOUT = 5.0
CALM_ENV = "OPSTUI_DEMO_CALM"
SPEED_ENV = "OPSTUI_DEMO_SPEED"
MAX_SPEED = 20.0


class WorldRunner:
    """The world's clock and its links to Redis and ECS (either may be absent)."""

    def __init__(
        self,
        world: World,
        *,
        redis_url: str | None = None,
        ecs_tasks: TasksReader | None = None,
        tick: float = TICK,
        clock: Monotonic = time.monotonic,
        speed: float = 1.0,
    ) -> None:
        if not 0 < speed <= MAX_SPEED:
            raise ValueError(f"world speed must be in (0, {MAX_SPEED:g}], got {speed:g}")
        self.world = world
        self.speed = speed
        self.redis_url = redis_url
        self.ecs_tasks = ecs_tasks
        self.tick = tick
        self.clock = clock
        self.redis_ok: bool | None = None
        self.redis_error = ""
        self.ticks = 0
        self._client: aioredis.Redis | None = None
        self._dirty = True
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start ticking in the running loop."""
        self._tasks = [asyncio.create_task(self._ticks(), name="demo-world")]
        if self.ecs_tasks is not None:
            self._tasks.append(asyncio.create_task(self._ecs(), name="demo-world-ecs"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _ticks(self) -> None:
        started = self.clock()
        while True:
            commands = self.world.advance((self.clock() - started) * self.speed)
            if self.redis_url is not None:
                await self._mirror(commands)
            self.ticks += 1
            await asyncio.sleep(self.tick)

    async def _mirror(self, commands: list[tuple[Any, ...]]) -> None:
        if self._dirty:
            commands = self.world.reset_commands()
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                client = self._redis()
                async with client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    pipe.execute_command("HGET", self.world.key("meta"), "paused")
                    replies = await pipe.execute(raise_on_error=True)
        except Exception as exc:  # any failure: Redis is down for the world
            self.redis_ok = False
            self.redis_error = str(exc) or type(exc).__name__
            self._dirty = True
            return
        self.redis_ok = True
        self.redis_error = ""
        self._dirty = False
        flag = replies[-1]
        self.world.set_paused(flag is not None and str(flag) not in ("0", ""))

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            import redis.asyncio as aioredis  # in the world's thread, not on the UI's start
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            assert self.redis_url is not None
            self._client = aioredis.Redis.from_url(
                self.redis_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
                protocol=2,
                client_name="anclora-whatsapp-worker",
                driver_info=None,
            )
        return self._client

    async def _ecs(self) -> None:
        assert self.ecs_tasks is not None
        while True:
            try:
                async with asyncio.timeout(ECS_TIMEOUT):
                    tasks = await asyncio.to_thread(self.ecs_tasks)
            except Exception:  # ECS unreachable: keep the last size
                tasks = None
            if tasks is not None:
                self.world.set_tasks(tasks)
            await asyncio.sleep(ECS_EVERY)


def demo_runner(
    seed: int,
    *,
    redis_url: str | None,
    ecs_tasks: TasksReader | None,
    env: Mapping[str, str] = os.environ,
) -> WorldRunner:
    """The runner `opstui demo` ticks: the guided incident on, unless OPSTUI_DEMO_CALM is
    set (1/true/yes); the world's clock sped up by OPSTUI_DEMO_SPEED (1 to 20, default 1).
    Raise RuntimeError with a one-line message for a speed that is not a number in range."""
    calm = env.get(CALM_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    raw = env.get(SPEED_ENV, "").strip() or "1"
    try:
        speed = float(raw)
    except ValueError:
        raise RuntimeError(f"{SPEED_ENV}={raw!r} is not a number") from None
    if not 1 <= speed <= MAX_SPEED:
        raise RuntimeError(f"{SPEED_ENV}={raw!r} must be between 1 and {MAX_SPEED:g}")
    world = World(seed=seed, incident=None if calm else Incident())
    return WorldRunner(world, redis_url=redis_url, ecs_tasks=ecs_tasks, speed=speed)
