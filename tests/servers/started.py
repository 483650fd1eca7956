"""Servers started for a whole test module, as context managers the fixtures wrap.

Each seed system's tests need the same three things: a PostgreSQL holding the system's own
database, a redis-server, and the system's stand-in app served from a thread so it outlives
every test's event loop. Starting them lives here once; a fixture is then one `with`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
from aiohttp import web

from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.support import require_binary
from tests.systems.remember_me.harness import ThreadedApp

AppState = TypeVar("AppState")


async def _create_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextmanager
def postgres_with_database(
    workdir: Path, database: str, settings: dict[str, str] | None = None
) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL with `database` created in it; closed (and removed) after."""
    server = PostgresServer(workdir, settings=settings)
    server.start()
    try:
        asyncio.run(_create_database(server.dsn, database))
        yield server
    finally:
        server.close()


@contextmanager
def redis_started(workdir: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server (skips, or fails under OPSTUI_REQUIRE_SERVERS, without one)."""
    require_binary("redis-server")
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def app_in_thread(
    state: AppState, build: Callable[[AppState], web.Application]
) -> Iterator[tuple[ThreadedApp, AppState]]:
    """`build(state)` served on 127.0.0.1 from a thread; yields (ThreadedApp, state)."""

    async def make() -> web.Application:
        return build(state)

    app = ThreadedApp(make)
    app.start()
    try:
        yield app, state
    finally:
        app.close()
