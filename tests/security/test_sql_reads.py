"""No false positives: provable reads stay read-only, run as diagnose steps and as probes, and
the built-in presets classify as reads on a server with pg_stat_statements."""

from __future__ import annotations

from pathlib import Path

import pytest

from opstui.actions.base import Classification, Progress
from opstui.actions.executors.sql import SqlExecutor
from opstui.config.kinds.postgres import PostgresConnection, SqlProbe
from opstui.sources.pg_catalog import catalog_of, judge
from opstui.sources.postgres_client import PostgresClient
from opstui.sources.registry import ClientPool
from opstui.sources.sql import (
    CONNECTIONS_SQL,
    LONGEST_SQL,
    SLOW_SQL,
    STATEMENTS_EXTENSION_SQL,
    SqlSource,
)
from opstui.sqlcheck import parse_statement
from tests.actions.support import make_runner
from tests.security.sql_servers import (  # noqa: F401 (the fixture armed)
    Armed,
    armed_server,
    attack_config,
    bare_context,
    bare_sql_step,
    snapshot,
    untouched,
)

READS: dict[str, str] = {
    "pg_stat_activity": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'",
    "pg_stat_statements": "SELECT calls, query FROM pg_stat_statements ORDER BY calls DESC",
    "now": "SELECT now() - interval '1 hour' AS since",
    "count": "SELECT count(*) FROM t WHERE v = 'orig'",
    # random() is not here: this server has public.random(text), and every overload of an
    # unqualified name must be safe (tests/security/test_sql_attacks.py: shadowed_random)
    "clock_and_uuid": "SELECT clock_timestamp(), timeofday(), gen_random_uuid()",
    "show": "SHOW work_mem",
    "values": "VALUES (1, 'a')",
    "table": "TABLE parent_c",
    "explain": "EXPLAIN SELECT * FROM t WHERE id = 1",
    "stable_function": "SELECT calm(1)",
    "cte": "WITH x AS (SELECT id FROM t) SELECT count(*) FROM x",
    "version": "SELECT version()",
    "sizes": "SELECT pg_database_size(current_database()), pg_relation_size('t')",
    "join_order": "SELECT t.id FROM t JOIN parent_c p USING (id) ORDER BY t.id DESC",
    "locks": "SELECT count(*) FROM pg_locks WHERE NOT granted",
}


@pytest.mark.parametrize("name", sorted(READS))
async def test_a_provable_read_runs_as_a_diagnose_step(
    armed: Armed, tmp_path: Path, name: str
) -> None:
    before = await untouched(armed)
    parts = make_runner(attack_config(armed.dsn, READS[name]), tmp_path, read_only=True)
    try:
        step = await parts.runner.prepare_diagnose("attack", 0)
        verdict = await parts.runner.classify(step)
        assert verdict.classification is Classification.READ_ONLY, verdict.reason
        assert verdict.reason.startswith("one ") and verdict.overruled is None
        outcome = await parts.runner.run(step)
        assert outcome.ok, outcome.error
    finally:
        await parts.close()
    assert await snapshot(armed) == before


@pytest.mark.parametrize("name", sorted(set(READS) - {"explain"}))
async def test_a_provable_read_polls_as_a_probe(armed: Armed, name: str) -> None:
    probe = SqlProbe.model_validate(
        {"id": "p", "kind": "sql", "connection": "db", "query": READS[name]}
    )
    connection = PostgresConnection.model_validate({"kind": "postgres", "dsn": armed.dsn})
    pool = ClientPool()
    try:
        reading = await SqlSource.build(probe, connection, pool).poll()
        assert reading.latency_ms is not None
    finally:
        await pool.aclose()


def test_reasons_say_why() -> None:
    from opstui.actions.executors.sql import read_words
    from opstui.sources.pg_catalog import Judgement

    statement = parse_statement("SELECT count(*) FROM t")
    assert read_words(statement, Judgement((), (), 3)) == "one SELECT, functions stable"
    assert read_words(statement, Judgement((), ("random",), 3)) == (
        "one SELECT, functions stable or reviewed harmless (random)"
    )


@pytest.mark.parametrize("preset", ["pg_connections", "pg_longest_transaction", "pg_slow_queries"])
async def test_the_presets_poll(armed: Armed, preset: str) -> None:
    data = {"id": "p", "kind": "sql", "connection": "db", "preset": preset}
    probe = SqlProbe.model_validate(data)
    connection = PostgresConnection.model_validate({"kind": "postgres", "dsn": armed.dsn})
    pool = ClientPool()
    try:
        await SqlSource.build(probe, connection, pool).poll()
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    "sql",
    [
        CONNECTIONS_SQL,
        LONGEST_SQL,
        STATEMENTS_EXTENSION_SQL,
        SLOW_SQL.format(schema='"public"', mean="mean_exec_time", total="total_exec_time"),
        SLOW_SQL.format(schema='"public"', mean="mean_time", total="total_time"),
    ],
    ids=["connections", "longest", "extension", "slow", "slow_old_names"],
)
async def test_the_presets_classify_as_provable_reads(armed: Armed, sql: str) -> None:
    statement = parse_statement(sql)
    assert statement.read
    client = PostgresClient(
        PostgresConnection.model_validate({"kind": "postgres", "dsn": armed.dsn})
    )
    try:
        assert (await judge(client, statement)).problems == ()
    finally:
        await client.aclose()


async def test_the_catalog_is_read_once_per_connection(armed: Armed) -> None:
    client = PostgresClient(
        PostgresConnection.model_validate({"kind": "postgres", "dsn": armed.dsn})
    )
    try:
        first = await catalog_of(client)
        assert await catalog_of(client) is first
        assert [p.volatile for p in first.named((None, "pg_terminate_backend"))] == ["v"]
    finally:
        await client.aclose()


async def test_a_read_step_runs_in_a_read_only_transaction(armed: Armed) -> None:
    """The second wall: a read-only run refuses a write whatever the verdict said."""
    before = await untouched(armed)
    pool = ClientPool()
    step = bare_sql_step("UPDATE t SET v = 'x' WHERE id = 3", [], mutating=False)
    try:
        outcome = await SqlExecutor().execute(
            step,
            bare_context(armed, pool),
            read_only=True,
            output=lambda _: None,
            progress=Progress(),
        )
        assert not outcome.ok and outcome.error is not None and "25006" in outcome.error
    finally:
        await pool.aclose()
    assert await snapshot(armed) == before
