"""What SQL classification costs (DESIGN.md sections 6.1 and 10): the first catalog read per
connection, then per step the parse (pglast) and the catalog lookup, each beside a same-run
anchor: a `SELECT 1` round trip through the same READ ONLY path on the same server.

A throwaway PostgreSQL (tests/servers/postgres.py: random loopback port, temp dir) with a
table, a view over a view and pg_stat_statements; nothing touches the machine's services.

    python bench/sql_classify.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opstui.config.kinds.postgres import PostgresConnection  # noqa: E402
from opstui.sources.pg_catalog import catalog_of, judge  # noqa: E402
from opstui.sources.postgres_client import PostgresClient  # noqa: E402
from opstui.sqlcheck import parse_statement  # noqa: E402
from tests.servers.postgres import PostgresServer  # noqa: E402

SETUP = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE jobs (id serial PRIMARY KEY, state text NOT NULL, updated_at timestamptz);
CREATE VIEW stuck AS SELECT * FROM jobs WHERE state = 'stuck';
CREATE VIEW stuck_old AS SELECT * FROM stuck WHERE updated_at < now() - interval '1 hour';
"""

STEPS = {
    "SELECT 1 (no relation: parse + cached lookups only)": "SELECT 1",
    "count(*) FROM pg_stat_activity": (
        "SELECT count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity"
    ),
    "view over a view": "SELECT count(*) FROM stuck_old",
    "pg_stat_statements top 5": (
        "SELECT calls, mean_exec_time, query FROM pg_stat_statements "
        "ORDER BY mean_exec_time DESC LIMIT 5"
    ),
    "UPDATE (shape only, no lookup)": "UPDATE jobs SET state = 'retry' WHERE state = 'stuck'",
}


def client_for(dsn: str) -> PostgresClient:
    return PostgresClient(PostgresConnection.model_validate({"kind": "postgres", "dsn": dsn}))


async def median_ms(work: Callable[[], Awaitable[Any]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def bench(dsn: str, repeat: int) -> None:
    client = client_for(dsn)
    try:
        await client.fetch_readonly("SELECT 1")  # the pool exists before anything is timed
        anchor = await median_ms(lambda: client.fetch_readonly("SELECT 1"), repeat)
        print(f"anchor: SELECT 1 round trip (READ ONLY transaction)   {anchor:8.3f} ms")

        firsts = []
        for _ in range(max(5, repeat // 20)):
            fresh = client_for(dsn)
            try:
                await fresh.fetch_readonly("SELECT 1")
                started = time.perf_counter()
                catalog = await catalog_of(fresh)
                firsts.append((time.perf_counter() - started) * 1000)
            finally:
                await fresh.aclose()
        first = statistics.median(firsts)
        print(
            f"first catalog read ({len(catalog.procs)} pg_proc, "
            f"{sum(len(v) for v in catalog.operators.values())} pg_operator rows)"
            f"   {first:8.3f} ms  = {first / anchor:6.1f} x anchor  (once per connection)"
        )
        await catalog_of(client)
        for label, sql in STEPS.items():
            parse = await median_ms(_sync(lambda sql=sql: parse_statement(sql)), repeat)
            statement = parse_statement(sql)

            async def classify(statement: Any = statement) -> None:
                if statement.read:
                    await judge(client, statement)

            total = await median_ms(classify, repeat)
            print(
                f"step {label:52} parse {parse:7.3f} ms  lookup {total:7.3f} ms"
                f"  = {(parse + total) / anchor:5.2f} x anchor"
            )
    finally:
        await client.aclose()


def _sync(call: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return call()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = PostgresServer(
            Path(tmp), settings={"shared_preload_libraries": "pg_stat_statements"}
        )
        server.start()
        try:

            async def setup() -> None:
                import asyncpg

                conn = await asyncpg.connect(server.dsn, timeout=10)
                try:
                    await conn.execute(SETUP)
                finally:
                    await conn.close()

            asyncio.run(setup())
            asyncio.run(bench(server.dsn, args.repeat))
        finally:
            server.close()


if __name__ == "__main__":
    main()
