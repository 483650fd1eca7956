"""The sql probe kind against a real PostgreSQL: result shapes, presets, read-only, failures."""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from opstui.config.kinds.postgres import PostgresConnection, SqlProbe
from opstui.sources.base import ProbeError, Reading
from opstui.sources.registry import ClientPool, build_source
from opstui.sources.sql import SqlSource
from tests.servers.postgres import PostgresServer
from tests.support import free_port

PASSWORD = "right-horse"
HBA = """
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
"""
SETUP = f"""
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'a'), (2, 'b');
CREATE ROLE app LOGIN PASSWORD '{PASSWORD}';
CREATE ROLE capped LOGIN PASSWORD '{PASSWORD}' CONNECTION LIMIT 0;
CREATE EXTENSION pg_stat_statements;
"""


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One server for the module: pg_stat_statements preloaded, passwords required for all
    roles but `postgres` over TCP, autovacuum off (so no stray transactions)."""
    server = PostgresServer(
        tmp_path_factory.mktemp("pg"),
        settings={"shared_preload_libraries": "pg_stat_statements", "autovacuum": "off"},
        hba=HBA,
    )
    server.start()

    async def setup() -> None:
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(SETUP)
            await conn.execute("CREATE DATABASE plain")  # not in a multi-statement block
        finally:
            await conn.close()

    try:
        asyncio.run(setup())
        yield server
    finally:
        server.close()


@pytest.fixture
async def admin(pg: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg.dsn)
    yield conn
    await conn.close()


def connection(dsn: str, **extra: Any) -> PostgresConnection:
    return PostgresConnection.model_validate({"kind": "postgres", "dsn": dsn, **extra})


def probe(**extra: Any) -> SqlProbe:
    return SqlProbe.model_validate({"kind": "sql", "id": "q", "connection": "db", **extra})


async def poll(dsn: str, conn: dict[str, Any] | None = None, **extra: Any) -> Reading:
    """One poll of a fresh source (and pool), closed afterwards."""
    pool = ClientPool()
    try:
        source = build_source(probe(**extra), connection(dsn, **(conn or {})), pool)
        return await source.poll()
    finally:
        await pool.aclose()


async def poll_error(dsn: str, conn: dict[str, Any] | None = None, **extra: Any) -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        await poll(dsn, conn, **extra)
    return caught.value


# --- result shapes ----------------------------------------------------------------------


async def test_scalar_numbers_of_every_type(pg: PostgresServer) -> None:
    reading = await poll(pg.dsn, query="SELECT 42 AS answer")
    assert reading.value == 42.0 and reading.no_data is None
    assert reading.fields == {"answer": 42}
    assert reading.latency_ms is not None and reading.latency_ms > 0

    reading = await poll(pg.dsn, query="SELECT sum(id)::numeric / 4 AS q FROM items")
    assert reading.value == 0.75 and reading.fields == {"q": 0.75}
    reading = await poll(pg.dsn, query="SELECT sum(id) AS s FROM items")  # numeric, integral
    assert reading.value == 3.0 and reading.fields == {"s": 3}
    assert isinstance(reading.fields["s"], int)

    reading = await poll(pg.dsn, query="SELECT 'NaN'::float8 AS x")
    assert reading.value is not None and math.isnan(reading.value)
    reading = await poll(pg.dsn, query="SELECT 'Infinity'::numeric AS x")
    assert reading.value == math.inf

    reading = await poll(pg.dsn, query="SELECT pg_is_in_recovery() AS replica")
    assert reading.value == 0.0 and reading.fields == {"replica": False}


async def test_text_scalar_is_a_field_without_value(pg: PostgresServer) -> None:
    reading = await poll(pg.dsn, query="SELECT current_setting('server_version') AS v")
    assert reading.value is None and reading.no_data is None
    assert str(reading.fields["v"]).startswith("15")
    error = await poll_error(
        pg.dsn, query="SELECT current_setting('server_version') AS v", value="v"
    )
    assert error.reason == 'column "v" is not numeric'


async def test_no_rows_and_null_are_no_data(pg: PostgresServer) -> None:
    reading = await poll(pg.dsn, query="SELECT id FROM items WHERE false")
    assert reading.value is None and reading.no_data == "query returned no rows"
    reading = await poll(pg.dsn, query="SELECT max(id) FROM items WHERE id > 100")
    assert reading.value is None and reading.no_data == "query returned NULL"


async def test_one_row_gives_fields_and_facts(pg: PostgresServer) -> None:
    sql = (
        "SELECT 'eu-west' AS region, 2.5::numeric AS load, 7 AS value, NULL::int AS missing,"
        " true AS up"
    )
    reading = await poll(pg.dsn, query=sql)
    assert reading.value == 7.0
    assert reading.fields == {"region": "eu-west", "load": 2.5, "value": 7, "up": True}
    assert reading.facts == (
        ("region", "eu-west"),
        ("load", "2.5"),
        ("value", "7"),
        ("missing", "NULL"),
        ("up", "true"),
    )
    # without a `value` column: the first numeric one; with `value`: that column
    reading = await poll(pg.dsn, query="SELECT 'x' AS name, 1200 AS n, 3 AS m")
    assert reading.value == 1200.0 and reading.facts[1] == ("n", "1,200")
    reading = await poll(pg.dsn, query="SELECT 'x' AS name, 1200 AS n, 3 AS m", value="m")
    assert reading.value == 3.0
    reading = await poll(pg.dsn, query="SELECT NULL::int AS n, 3 AS m", value="n")
    assert reading.value is None and reading.no_data == 'column "n" is NULL'


async def test_several_rows_give_a_table(pg: PostgresServer) -> None:
    sql = "SELECT g AS id, g * 1000 AS big FROM generate_series(1, 30) g ORDER BY g"
    reading = await poll(pg.dsn, query=sql, max_rows=5)
    assert reading.value == 30.0 and reading.fields == {"rows": 30}
    assert reading.table is not None
    assert reading.table.columns == ("id", "big")
    assert reading.table.rows == tuple((str(i), f"{i * 1000:,}") for i in range(1, 6))
    assert reading.table.total_rows == 30

    reading = await poll(pg.dsn, query=sql, max_rows=50, value="big")
    assert reading.value == 1000.0 and reading.fields == {"rows": 30, "big": 1000}
    assert reading.table is not None and len(reading.table.rows) == 30
    assert reading.table.total_rows is None  # nothing cut

    error = await poll_error(pg.dsn, query=sql, value="nope")
    assert error.reason == 'no column "nope" in the result'
    error = await poll_error(pg.dsn, query="SELECT name, id FROM items", value="name")
    assert error.reason == 'column "name" is not numeric'


# --- read-only, timeouts, SQL errors ----------------------------------------------------------


async def test_writes_are_refused_at_load_and_never_sent(pg: PostgresServer, admin: Any) -> None:
    for sql, why in (
        ("UPDATE items SET name = 'z' WHERE id = 1 RETURNING id", "UPDATE writes"),
        (
            "WITH d AS (DELETE FROM items RETURNING id) SELECT count(*) FROM d",
            "a data-modifying CTE (DELETE)",
        ),
        ("CREATE TABLE sneaky (id int)", "CREATE is not a read"),
    ):
        with pytest.raises(ValueError, match="an sql probe must be a plain read"):
            probe(query=sql)
        unchecked = SqlProbe.model_construct(  # past the validator: the source refuses too
            kind="sql", id="q", connection="db", query=sql, preset=None, value=None, max_rows=20
        )
        pool = ClientPool()
        try:
            source = SqlSource.build(unchecked, connection(pg.dsn), pool)
            with pytest.raises(ProbeError) as caught:
                await source.poll()
            assert caught.value.reason == f"not a provable read: {why}"
        finally:
            await pool.aclose()
    assert await admin.fetchval("SELECT name FROM items WHERE id = 1") == "a"
    assert await admin.fetchval("SELECT count(*) FROM items") == 2


async def test_sql_error_is_short_and_has_sqlstate(pg: PostgresServer) -> None:
    error = await poll_error(pg.dsn, query="SELECT * FROM missing_table")
    assert error.reason == (
        "not a provable read: reads unknown relation missing_table (cannot be proven a read)"
    )
    error = await poll_error(pg.dsn, query="SELECT 1/0")
    assert error.reason == "SQL 22012: division by zero"


async def test_statement_timeout_cancels_and_the_pool_stays_usable(pg: PostgresServer) -> None:
    pool = ClientPool()
    db = connection(pg.dsn, timeout="5s")
    slow = build_source(probe(query="SELECT pg_sleep(3)", timeout="1s"), db, pool)
    quick = build_source(
        probe(
            query="SELECT current_setting('application_name') AS app,"
            " current_setting('statement_timeout') AS st"
        ),
        db,
        pool,
    )
    try:
        with pytest.raises(ProbeError) as caught:
            await slow.poll()
        assert caught.value.reason == "query canceled (statement_timeout)"
        reading = await quick.poll()  # same pool, after the cancel
        assert reading.fields == {"app": "opstui", "st": "4500ms"}  # 90 % of 5s
    finally:
        await pool.aclose()


async def test_pool_never_exceeds_pool_max(pg: PostgresServer, admin: Any) -> None:
    pool = ClientPool()
    db = connection(pg.dsn, pool_min=1, pool_max=2)
    sources = [
        build_source(probe(id=f"p{i}", query="SELECT 1 FROM pg_sleep(0.3)"), db, pool)
        for i in range(6)
    ]
    count_sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opstui'"
    try:
        polls = asyncio.gather(*(s.poll() for s in sources))
        seen = 0
        while not polls.done():
            seen = max(seen, await admin.fetchval(count_sql))
            await asyncio.sleep(0.02)
        readings = await polls
        assert [r.value for r in readings] == [1.0] * 6
        assert seen == 2
        assert await admin.fetchval(count_sql) == 2  # kept open for the next polls
    finally:
        await pool.aclose()
    assert await admin.fetchval(count_sql) == 0


async def test_connection_killed_mid_query_does_not_poison_the_pool(
    pg: PostgresServer, admin: Any
) -> None:
    pool = ClientPool()
    db = connection(pg.dsn, pool_min=1, pool_max=1)
    slow = build_source(probe(id="slow", query="SELECT 1 FROM pg_sleep(4)"), db, pool)
    quick = build_source(probe(id="quick", query="SELECT 2"), db, pool)
    kill = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'opstui' AND query LIKE '%pg_sleep(4)%'"
        " AND query NOT LIKE '%pg_terminate_backend%'"
    )
    try:
        polling = asyncio.create_task(slow.poll())
        deadline = asyncio.get_running_loop().time() + 10
        while not await admin.fetchval(kill):
            assert asyncio.get_running_loop().time() < deadline, "the slow query never started"
            await asyncio.sleep(0.02)
        with pytest.raises(ProbeError) as caught:
            await polling
        assert caught.value.reason in ("connection terminated by server", "connection lost")
        assert (await quick.poll()).value == 2.0  # the one pooled slot was replaced
    finally:
        await pool.aclose()


# --- connection failures --------------------------------------------------------------------


async def test_auth_failure_and_success(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSTUI_TEST_PG_PASSWORD", "wrong-horse")
    settings = {"password": "${OPSTUI_TEST_PG_PASSWORD}"}
    error = await poll_error(pg.dsn_for("app"), settings, query="SELECT 1")
    assert error.reason == "auth failed" and error.hint == "check user/password"
    assert "wrong-horse" not in f"{error.reason} {error.hint} {error.detail}"

    error = await poll_error(pg.dsn_for("app"), query="SELECT 1")  # no password at all
    assert error.reason == "auth failed"

    monkeypatch.setenv("OPSTUI_TEST_PG_PASSWORD", PASSWORD)
    reading = await poll(pg.dsn_for("app"), settings, query="SELECT current_user = 'app' AS me")
    assert reading.fields == {"me": True}


async def test_missing_database_role_limit_and_refused(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = await poll_error(pg.dsn_for(database="nope"), query="SELECT 1")
    assert error.reason == 'database "nope" does not exist'

    monkeypatch.setenv("OPSTUI_TEST_PG_PASSWORD", PASSWORD)
    settings = {"password": "${OPSTUI_TEST_PG_PASSWORD}"}
    error = await poll_error(pg.dsn_for("capped"), settings, query="SELECT 1")
    assert error.reason == "too many connections"

    error = await poll_error(f"postgresql://postgres@127.0.0.1:{free_port()}/x", query="SELECT 1")
    assert error.reason == "refused"

    error = await poll_error(pg.dsn, {"ssl": "require"}, query="SELECT 1")
    assert error.reason == "TLS: server does not support SSL"


async def test_failed_pool_creation_is_retried(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path)
    pool = ClientPool()
    source = build_source(probe(query="SELECT 1"), connection(server.dsn, timeout="2s"), pool)
    try:
        with pytest.raises(ProbeError) as caught:
            await source.poll()
        assert caught.value.reason == "refused"
        await asyncio.to_thread(server.start)
        assert (await source.poll()).value == 1.0
    finally:
        await pool.aclose()
        await asyncio.to_thread(server.close)


# --- presets --------------------------------------------------------------------------------


async def test_pg_connections_counts_states_and_lock_waits(pg: PostgresServer) -> None:
    holder = await asyncpg.connect(pg.dsn)
    waiter = await asyncpg.connect(pg.dsn)
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")  # idle in transaction
        blocked = asyncio.create_task(waiter.fetch("SELECT * FROM items"))
        reading = await _poll_until(
            pg.dsn, lambda r: r.fields.get("waiting") == 1, preset="pg_connections"
        )
        fields = reading.fields
        assert fields["max_connections"] == 40
        assert fields["idle_in_transaction"] == 1
        assert isinstance(fields["active"], int) and fields["active"] >= 2  # blocked + ours
        assert reading.value == fields["connections"]
        assert isinstance(fields["connections"], int) and fields["connections"] >= 3
        assert fields["connections_ratio"] == round(fields["connections"] / 40, 4)
        assert ("waiting on locks", "1") in reading.facts
        await lock.rollback()
        assert len(await blocked) == 2

        ratio = await poll(pg.dsn, preset="pg_connections", value="connections_ratio")
        assert ratio.value == ratio.fields["connections_ratio"] and ratio.value < 1
        error = await poll_error(pg.dsn, preset="pg_connections", value="nope")
        assert error.reason == 'no field "nope"'
    finally:
        await holder.close()
        await waiter.close()


async def test_pg_longest_transaction(pg: PostgresServer) -> None:
    reading = await poll(pg.dsn, preset="pg_longest_transaction")
    assert reading.value == 0.0 and reading.fields == {"seconds": 0.0}

    old = await asyncpg.connect(pg.dsn)
    try:
        tx = old.transaction()
        await tx.start()
        pid = await old.fetchval("SELECT pg_backend_pid() /* the oldest transaction */")
        reading = await _poll_until(
            pg.dsn, lambda r: (r.value or 0) > 0.2, preset="pg_longest_transaction"
        )
        assert reading.fields["pid"] == pid
        assert reading.fields["state"] == "idle in transaction"
        assert str(reading.fields["query"]).startswith("SELECT pg_backend_pid()")
        assert len(str(reading.fields["query"])) <= 60
        assert reading.value == pytest.approx(float(reading.fields["seconds"]), abs=0.01)
        assert [label for label, _ in reading.facts] == ["age", "pid", "state", "query"]
        await tx.rollback()
    finally:
        await old.close()


async def test_pg_slow_queries(pg: PostgresServer, admin: Any) -> None:
    await admin.execute("SELECT pg_stat_statements_reset()")
    await admin.execute("SELECT pg_sleep(0.25)")
    reading = await poll(pg.dsn, preset="pg_slow_queries")
    assert reading.no_data is None and reading.table is not None
    assert reading.table.columns == ("calls", "mean ms", "total ms", "query")
    top = reading.table.rows[0]
    assert top[0] == "1" and "pg_sleep" in top[3]
    assert reading.value is not None and reading.value >= 250.0
    assert reading.fields["slowest_mean_ms"] == pytest.approx(reading.value, abs=0.001)
    assert 1 <= len(reading.table.rows) <= 5

    reading = await poll(pg.dsn_for(database="plain"), preset="pg_slow_queries")
    assert reading.value is None and reading.no_data == "pg_stat_statements is not installed"


async def test_describe_redacts_and_names_the_query(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSTUI_TEST_PG_PASSWORD", PASSWORD)
    dsn = f"postgresql://app:${{OPSTUI_TEST_PG_PASSWORD}}@127.0.0.1:{pg.port}/postgres"
    source = SqlSource.build(probe(query="SELECT 1"), connection(dsn), ClientPool())
    facts = source.describe()
    assert PASSWORD not in str(facts) and "***" in facts["target"]
    assert facts["query"] == "SELECT 1" and facts["transaction"] == "READ ONLY"
    pool = ClientPool()
    try:  # the password in the DSN reaches the server
        reading = await SqlSource.build(probe(query="SELECT 5"), connection(dsn), pool).poll()
        assert reading.value == 5.0
    finally:
        await pool.aclose()


async def _poll_until(dsn: str, accept: Any, **extra: Any) -> Reading:
    """Poll until `accept(reading)`, for activity another connection sets up (deadline 10s)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        reading = await poll(dsn, **extra)
        if accept(reading) or asyncio.get_running_loop().time() > deadline:
            return reading
        await asyncio.sleep(0.05)


async def test_opstui_check_json(pg: PostgresServer, tmp_path: Path) -> None:
    config = tmp_path / "pg.yaml"
    config.write_text(
        f"""
title: Postgres
refresh: 1s
connections:
  db: {{kind: postgres, dsn: "{pg.dsn}", timeout: 3s, pool_max: 2}}
  plain: {{kind: postgres, dsn: "{pg.dsn_for(database="plain")}", timeout: 3s}}
probes:
  - {{id: items, kind: sql, connection: db, query: "SELECT count(*) AS items FROM items"}}
  - {{id: conns, kind: sql, connection: db, preset: pg_connections}}
  - {{id: slow, kind: sql, connection: plain, preset: pg_slow_queries}}
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
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    document = json.loads(out)
    by_id = {p["id"]: p for p in document["probes"]}
    assert by_id["items"]["state"] == "ok" and by_id["items"]["kind"] == "sql"
    assert by_id["items"]["value"] == 2 and by_id["items"]["fields"] == {"items": 2}
    assert by_id["items"]["latency_ms"] > 0
    conns = by_id["conns"]
    assert conns["state"] == "ok" and conns["error"] is None
    assert set(conns["fields"]) == {
        "connections",
        "max_connections",
        "active",
        "idle",
        "idle_in_transaction",
        "waiting",
        "connections_ratio",
    }
    assert conns["fields"]["max_connections"] == 40 and conns["fields"]["active"] >= 1
    assert conns["value"] == conns["fields"]["connections"]
    assert by_id["slow"]["state"] == "nodata"
    assert by_id["slow"]["error"] == "pg_stat_statements is not installed"
    assert document["worst"] == "nodata" and proc.returncode == 2, err.decode()
