"""The sql executor against a real PostgreSQL: classified from the statement and the catalog,
READ ONLY transactions refuse writes, the mutating preview measures rows in a rolled-back
transaction under a lock timeout, execution commits, results become text tables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from opstui.actions.base import Classification, Outcome, PreparedStep, Progress
from opstui.actions.context import ExecutionContext
from opstui.actions.executors.sql import SqlExecutor, psql
from opstui.actions.runner import Refused
from opstui.config.kinds.postgres import PostgresConnection
from opstui.config.models import Config
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.registry import ClientPool
from tests.actions.support import make_runner
from tests.servers.postgres import PostgresServer

SCHEMA = """
DROP TABLE IF EXISTS jobs;
CREATE TABLE jobs (id int PRIMARY KEY, state text NOT NULL);
INSERT INTO jobs SELECT i, CASE WHEN i <= 12 THEN 'stuck' ELSE 'done' END
FROM generate_series(1, 20) AS i;
"""
STUCK = "UPDATE jobs SET state = 'retry' WHERE state = 'stuck'"


class NoProbes:
    def current(self, probe_id: str) -> ProbeSnapshot | None:
        return None

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        raise KeyError(probe_id)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg-exec"), settings={"autovacuum": "off"})
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def admin(pg: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute(SCHEMA)
    yield conn
    await conn.close()


@pytest.fixture
async def ctx(pg: PostgresServer, admin: asyncpg.Connection) -> AsyncIterator[ExecutionContext]:
    config = Config.model_validate({"connections": {"db": {"kind": "postgres", "dsn": pg.dsn}}})
    pool = ClientPool()
    yield ExecutionContext(config, pool, NoProbes())
    await pool.aclose()


def step(sql: str, *args: Any, mutating: bool = False, timeout: float = 10.0) -> PreparedStep:
    return PreparedStep(
        kind="sql",
        title="sql",
        runbook_id=None,
        action_id=None,
        step_index=None,
        connection="db",
        params={},
        rendered={"sql": sql, "args": list(args), "mutating": mutating},
        equivalent="",
        target="db",
        environment=None,
        timeout=timeout,
    )


async def run(
    ctx: ExecutionContext, prepared: PreparedStep, *, read_only: bool, **options: Any
) -> Outcome:
    return await SqlExecutor(**options).execute(
        prepared, ctx, read_only=read_only, output=lambda _: None, progress=Progress()
    )


async def states(admin: asyncpg.Connection) -> dict[str, int]:
    rows = await admin.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
    return {row["state"]: row["n"] for row in rows}


async def test_classification_comes_from_the_statement_and_the_catalog(
    ctx: ExecutionContext,
) -> None:
    executor = SqlExecutor()
    verdict = await executor.classify(step("SELECT count(*) FROM jobs"), ctx)
    assert verdict.classification is Classification.READ_ONLY
    assert verdict.reason == "one SELECT, functions stable"
    verdict = await executor.classify(step(STUCK, mutating=True), ctx)
    assert verdict.mutating and verdict.reason == "UPDATE writes" and verdict.overruled is None
    verdict = await executor.classify(step(STUCK), ctx)  # not declared: overruled
    assert verdict.mutating and verdict.overruled == "not declared mutating, but UPDATE writes"
    verdict = await executor.classify(step("SELECT 1", mutating=True), ctx)
    assert verdict.mutating and verdict.reason.startswith("declared mutating (one SELECT")
    assert await executor.preview(step("SELECT 1"), ctx) is None


async def test_a_select_becomes_a_text_table(ctx: ExecutionContext) -> None:
    outcome = await run(
        ctx, step("SELECT id, state FROM jobs WHERE id <= $1 ORDER BY id", 2), read_only=True
    )
    assert outcome.ok and outcome.summary == "2 rows"
    assert outcome.output == "id | state\n---+------\n1  | stuck\n2  | stuck\n(2 rows)"


async def test_tables_stop_at_max_rows(ctx: ExecutionContext) -> None:
    outcome = await run(ctx, step("SELECT generate_series(1, 500) AS n"), read_only=True)
    assert outcome.ok and outcome.summary == "more than 200 rows (first 200 shown)"
    assert outcome.output.count("\n") == 200 + 2
    assert outcome.output.endswith("(first 200 rows of more; the table stops at 200)")


async def test_an_update_in_a_read_only_step_fails_with_25006(
    ctx: ExecutionContext, admin: asyncpg.Connection
) -> None:
    outcome = await run(ctx, step(STUCK), read_only=True)
    assert not outcome.ok
    assert outcome.error == "SQL 25006: cannot execute UPDATE in a read-only transaction"
    assert await states(admin) == {"stuck": 12, "done": 8}


async def test_a_mutating_step_asked_to_run_read_only_stays_read_only(
    ctx: ExecutionContext, admin: asyncpg.Connection
) -> None:
    outcome = await run(ctx, step(STUCK, mutating=True), read_only=True)
    assert not outcome.ok and outcome.error is not None and "25006" in outcome.error
    assert await states(admin) == {"stuck": 12, "done": 8}


async def test_the_preview_counts_rows_and_rolls_back(
    ctx: ExecutionContext, admin: asyncpg.Connection
) -> None:
    preview = await SqlExecutor().preview(step(STUCK, mutating=True), ctx)
    assert preview is not None and preview.error is None
    assert preview.lines == ("UPDATE affects 12 rows (measured in a rolled-back transaction)",)
    assert await states(admin) == {"stuck": 12, "done": 8}
    deleting = step("DELETE FROM jobs WHERE id = $1", 3, mutating=True)
    preview = await SqlExecutor().preview(deleting, ctx)
    assert preview is not None
    assert preview.lines == ("DELETE affects 1 row (measured in a rolled-back transaction)",)
    assert await admin.fetchval("SELECT count(*) FROM jobs") == 20


async def test_a_preview_under_a_held_lock_says_so(
    ctx: ExecutionContext, pg: PostgresServer, admin: asyncpg.Connection
) -> None:
    holder = await asyncpg.connect(pg.dsn)
    try:
        async with holder.transaction():
            await holder.execute("SELECT * FROM jobs WHERE id = 1 FOR UPDATE")
            preview = await SqlExecutor(lock_timeout=0.3).preview(step(STUCK, mutating=True), ctx)
        assert preview is not None and preview.lines == ()
        assert preview.error == (
            "preview hit the lock timeout (300ms): another transaction holds a lock this "
            "statement needs"
        )
    finally:
        await holder.close()
    assert await states(admin) == {"stuck": 12, "done": 8}


async def test_executing_a_mutating_step_commits(
    ctx: ExecutionContext, admin: asyncpg.Connection
) -> None:
    outcome = await run(ctx, step(STUCK, mutating=True), read_only=False)
    assert outcome.ok and outcome.summary == "UPDATE 12" and outcome.output == "UPDATE 12"
    assert await states(admin) == {"retry": 12, "done": 8}
    returning = step(
        "UPDATE jobs SET state = $1 WHERE id = $2 RETURNING id, state", "done", 1, mutating=True
    )
    outcome = await run(ctx, returning, read_only=False)
    assert outcome.ok and outcome.summary == "UPDATE 1"
    assert outcome.output.splitlines()[2] == "1  | done"


async def test_a_script_is_never_sent(ctx: ExecutionContext, admin: asyncpg.Connection) -> None:
    script = "DELETE FROM jobs WHERE id = 20; UPDATE jobs SET state = 'x' WHERE id < 3"
    verdict = await SqlExecutor().classify(step(script, mutating=True), ctx)
    assert verdict.mutating and verdict.reason.startswith("SQL has 2 statements")
    preview = await SqlExecutor().preview(step(script, mutating=True), ctx)
    assert preview is not None and preview.error is not None
    outcome = await run(ctx, step(script, mutating=True), read_only=False)
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.startswith("SQL has 2 statements")
    assert await admin.fetchval("SELECT count(*) FROM jobs") == 20


async def test_a_failed_mutation_commits_nothing(
    ctx: ExecutionContext, admin: asyncpg.Connection
) -> None:
    bad = step("UPDATE jobs SET id = 1 WHERE id = 2", mutating=True)
    outcome = await run(ctx, bad, read_only=False)
    assert not outcome.ok and outcome.error is not None and outcome.error.startswith("SQL 23505")
    assert await admin.fetchval("SELECT count(*) FROM jobs WHERE id = 2") == 1


async def test_a_slow_statement_is_cancelled_by_the_server(ctx: ExecutionContext) -> None:
    outcome = await run(ctx, step("SELECT pg_sleep(30)", timeout=0.5), read_only=True)
    assert not outcome.ok and outcome.error == "query canceled (statement_timeout)"


async def test_cancel_stops_a_running_query(ctx: ExecutionContext) -> None:
    progress = Progress()
    running = asyncio.create_task(
        SqlExecutor().execute(
            step("SELECT pg_sleep(30)"),
            ctx,
            read_only=True,
            output=lambda _: None,
            progress=progress,
        )
    )
    await asyncio.sleep(0.3)
    progress.cancel.set()
    outcome = await asyncio.wait_for(running, 10)
    assert outcome.cancelled
    after = await run(ctx, step("SELECT 1 AS one"), read_only=True)  # the pool still works
    assert after.ok and after.summary == "1 row"


def test_the_psql_equivalent_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPW", "hunter2-secret")
    connection = PostgresConnection.model_validate(
        {"kind": "postgres", "dsn": "postgresql://app:${PGPW}@db.internal:5433/shop"}
    )
    line = psql(connection, "UPDATE jobs\n  SET state = $1 WHERE id = $2", ["retry", 7])
    assert line == (
        "psql postgresql://app@db.internal:5433/shop "
        "-c 'UPDATE jobs SET state = $1 WHERE id = $2'  # $1='retry', $2=7"
    )
    assert "hunter2" not in line
    rendered = {"sql": "SELECT 1", "args": [], "mutating": False}
    assert SqlExecutor.equivalent(rendered, connection).endswith("-c 'SELECT 1'")


# --- through the Runner (the one gate) ------------------------------------------------------


def runbook_config(dsn: str) -> Config:
    return Config.model_validate(
        {
            "connections": {"db": {"kind": "postgres", "dsn": dsn}},
            "runbooks": [
                {
                    "id": "stuck",
                    "title": "Stuck jobs",
                    "diagnose": [
                        {
                            "title": "Count",
                            "kind": "sql",
                            "connection": "db",
                            "sql": "SELECT state, count(*) FROM jobs GROUP BY state ORDER BY 1",
                        },
                        {"title": "Sneaky", "kind": "sql", "connection": "db", "sql": STUCK},
                    ],
                    "actions": [
                        {
                            "id": "retry",
                            "key": "R",
                            "kind": "sql",
                            "title": "Retry stuck jobs",
                            "connection": "db",
                            "mutating": True,
                            "sql": "UPDATE jobs SET state = $1 WHERE state = 'stuck'",
                            "args": ["{{ params.state }}"],
                            "params": {"state": {"type": "str", "default": "retry"}},
                        },
                    ],
                }
            ],
        }
    )


async def test_runner_an_update_in_a_diagnose_step_is_refused(
    pg: PostgresServer, admin: asyncpg.Connection, tmp_path: Any
) -> None:
    parts = make_runner(runbook_config(pg.dsn), tmp_path)
    try:
        counted = await parts.runner.run(await parts.runner.prepare_diagnose("stuck", 0))
        assert counted.ok and counted.summary == "2 rows"
        with pytest.raises(Refused, match="UPDATE writes"):
            await parts.runner.run(await parts.runner.prepare_diagnose("stuck", 1))
        assert await states(admin) == {"stuck": 12, "done": 8}
    finally:
        await parts.close()


async def test_runner_previews_confirms_and_commits_a_mutating_update(
    pg: PostgresServer, admin: asyncpg.Connection, tmp_path: Any
) -> None:
    parts = make_runner(runbook_config(pg.dsn), tmp_path)
    runner = parts.runner
    try:
        step_ = await runner.prepare_action("stuck", "retry")
        assert (await runner.classify(step_)).reason == "UPDATE writes"
        preview = await runner.preview(step_)
        assert preview is not None
        assert preview.lines == ("UPDATE affects 12 rows (measured in a rolled-back transaction)",)
        assert await states(admin) == {"stuck": 12, "done": 8}
        with pytest.raises(Refused):
            await runner.run(step_)
        assert await states(admin) == {"stuck": 12, "done": 8}
        token = runner.confirm(step_, via="prompt")
        outcome = await runner.run(step_, token=token)
        assert outcome.ok and outcome.summary == "UPDATE 12"
        assert await states(admin) == {"retry": 12, "done": 8}
        with pytest.raises(Refused):
            await runner.run(step_, token=token)
        results = [rec for rec in parts.audit.records() if rec["phase"] == "result"]
        assert [(rec["ok"], rec["summary"]) for rec in results] == [(True, "UPDATE 12")]
    finally:
        await parts.close()


async def test_runner_in_read_only_mode_refuses_a_mutating_sql_step(
    pg: PostgresServer, admin: asyncpg.Connection, tmp_path: Any
) -> None:
    parts = make_runner(runbook_config(pg.dsn), tmp_path, read_only=True)
    try:
        step_ = await parts.runner.prepare_action("stuck", "retry")
        token = parts.runner.confirm(step_, via="modal")
        with pytest.raises(Refused):
            await parts.runner.run(step_, token=token)
        assert await states(admin) == {"stuck": 12, "done": 8}
    finally:
        await parts.close()
