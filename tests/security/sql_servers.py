"""A throwaway PostgreSQL armed for the SQL attacks, and a snapshot of everything they could
change.

One server per test module (tests/servers/postgres.py: random loopback port, private data
dir), with dblink, file_fdw and pg_stat_statements, and the attacker's furniture: a function
that writes through dblink (its write commits on another connection, so no READ ONLY
transaction or rollback stops it), a sequence, a table with a trigger, nested views over the
side effect, an operator over it, a domain checking with it, a `public.random(text)` shadowing
the harmless pg_catalog one, a function reachable through `t.f` notation, a foreign table and a
foreign partition that run a program, a serial column, an ON DELETE CASCADE into a table with
a trigger, and a view that terminates a backend. `Snapshot` reads back every effect: rows,
the dblink sink, the sequences, marker files, a victim backend, a LISTENer, the stats reset
time, the config load time and the relations that exist.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from opstui.actions.base import PreparedStep
from opstui.actions.context import ExecutionContext
from opstui.config.models import Config
from opstui.sources.registry import ClientPool
from tests.servers.postgres import PostgresServer

CHANNEL = "opstui_attack"
VICTIM = "opstui-victim"

ATTACKS: dict[str, tuple[str, str]] = {
    # id: (SQL, a word the refusal's reason must contain)
    "update": ("UPDATE t SET v = 'x' WHERE id = 3", "UPDATE writes"),
    "terminate_backend": (
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{VICTIM}'",
        "calls pg_terminate_backend (volatile)",
    ),
    "copy_to_program": (
        "COPY (SELECT 1) TO PROGRAM 'touch {markers}/copy'",
        "COPY is not a plain read",
    ),
    "pg_notify": (f"SELECT pg_notify('{CHANNEL}', 'x')", "calls pg_notify (volatile)"),
    "reload_conf": ("SELECT pg_reload_conf()", "calls pg_reload_conf (volatile)"),
    "dblink_function": ("SELECT side_effect()", "calls public.side_effect (volatile)"),
    "stat_reset": ("SELECT pg_stat_reset()", "calls pg_stat_reset (volatile)"),
    "nextval": ("SELECT nextval('seq')", "calls nextval (volatile)"),
    "nested_view": ("SELECT * FROM v_nested", "view v_nested: calls public.side_effect"),
    "view_terminates": ("SELECT * FROM v_kill", "view v_kill: calls pg_terminate_backend"),
    "operator": ("SELECT 1 === 1", "operator public.=== calls public.op_side (volatile)"),
    "foreign_table": ("SELECT * FROM ft", "foreign table ft"),
    "foreign_partition": ("SELECT * FROM parted", "foreign table parted_f"),
    "domain_cast": ("SELECT 1::dom_side", "domain dom_side: calls public.side_effect"),
    "shadowed_random": ("SELECT random('x')", "calls public.random (volatile)"),
    "attribute_notation": ("SELECT t.f_side FROM t", "calls public.f_side (volatile)"),
    "writing_cte": (
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT count(*) FROM d",
        "a data-modifying CTE (DELETE)",
    ),
    "select_into": ("SELECT * INTO t_copy FROM t", "SELECT INTO creates a table"),
    "explain_analyze": ("EXPLAIN ANALYZE SELECT side_effect()", "EXPLAIN ANALYZE runs"),
    "do_block": ("DO $$BEGIN UPDATE t SET v = 'x'; END$$", "DO is not a read"),
    "rls_policy": ("SELECT * FROM rls_t", "policy rls_side on rls_t: calls public.side_effect"),
    "stable_plpgsql_liar": (
        "SELECT liar_plpgsql()",
        "public.liar_plpgsql (declared STABLE) calls public.side_effect (volatile)",
    ),
    "immutable_sql_liar": (
        "SELECT liar_sql()",
        "public.liar_sql (declared IMMUTABLE) calls public.dblink_exec (volatile)",
    ),
    "nested_liar": (
        "SELECT liar_nested()",
        "public.liar_plpgsql (declared STABLE) calls public.side_effect (volatile)",
    ),
    "dynamic_sql_liar": (
        "SELECT liar_dynamic()",
        "public.liar_dynamic (declared STABLE) cannot be checked: it runs dynamic SQL",
    ),
    "aggregate": (
        "SELECT agg_side(id) FROM t",
        "aggregate public.agg_side calls public.agg_step (volatile)",
    ),
}
SHAPES = {"update", "copy_to_program", "writing_cte", "select_into", "explain_analyze", "do_block"}
"""Attacks whose statement alone is not a read: a probe with one does not load."""


def setup_sql(port: int, markers: Path) -> str:
    link = f"host=127.0.0.1 port={port} dbname=postgres user=postgres"
    return f"""
CREATE EXTENSION dblink;
CREATE EXTENSION file_fdw;
CREATE EXTENSION pg_stat_statements;
CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO t SELECT i, 'orig' FROM generate_series(1, 5) AS i;
CREATE TABLE sink (v text);
CREATE FUNCTION side_effect() RETURNS int LANGUAGE sql VOLATILE AS $f$
  SELECT CASE WHEN dblink_exec('{link}', 'INSERT INTO sink VALUES (''leaked'')') IS NULL
         THEN 0 ELSE 1 END
$f$;
CREATE SEQUENCE seq;
CREATE TABLE counter_t (id serial PRIMARY KEY, v text);
CREATE TABLE trig_t (id int);
CREATE FUNCTION trig_fn() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM side_effect(); RETURN NEW; END $f$;
CREATE TRIGGER trig_side AFTER INSERT OR DELETE ON trig_t FOR EACH ROW EXECUTE FUNCTION trig_fn();
CREATE TABLE parent_c (id int PRIMARY KEY);
INSERT INTO parent_c VALUES (1), (2);
CREATE TABLE child_c (id int REFERENCES parent_c ON DELETE CASCADE);
INSERT INTO child_c VALUES (1);
CREATE TRIGGER child_side AFTER DELETE ON child_c FOR EACH ROW EXECUTE FUNCTION trig_fn();
CREATE VIEW v_side AS SELECT side_effect() AS x;
CREATE VIEW v_nested AS SELECT * FROM v_side;
CREATE VIEW v_kill AS SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
  WHERE application_name = '{VICTIM}';
CREATE FUNCTION op_side(int, int) RETURNS bool LANGUAGE sql VOLATILE AS
  'SELECT side_effect() IS NOT NULL AND $1 = $2';
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = op_side);
CREATE DOMAIN dom_side AS int CHECK (side_effect() IS NOT NULL);
CREATE FUNCTION public.random(text) RETURNS float8 LANGUAGE sql VOLATILE AS
  'SELECT side_effect()::float8';
CREATE FUNCTION f_side(t) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT side_effect()';
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE ft (line text) SERVER files
  OPTIONS (program 'touch {markers}/foreign');
CREATE TABLE parted (line text) PARTITION BY LIST (line);
CREATE TABLE parted_plain PARTITION OF parted FOR VALUES IN ('plain');
CREATE FOREIGN TABLE parted_f PARTITION OF parted FOR VALUES IN ('x') SERVER files
  OPTIONS (program 'touch {markers}/partition');
CREATE TABLE rls_t (id int);
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_side ON rls_t USING (side_effect() IS NOT NULL);
CREATE FUNCTION calm(int) RETURNS int LANGUAGE sql STABLE AS 'SELECT $1';
CREATE FUNCTION agg_step(int, int) RETURNS int LANGUAGE sql VOLATILE AS
  'SELECT $1 + $2 + side_effect()';
CREATE AGGREGATE agg_side(int) (SFUNC = agg_step, STYPE = int, INITCOND = '0');
CREATE FUNCTION liar_plpgsql() RETURNS int LANGUAGE plpgsql STABLE AS $f$
BEGIN PERFORM side_effect(); RETURN 1; END $f$;
CREATE FUNCTION liar_sql() RETURNS int LANGUAGE sql IMMUTABLE AS
  $f$ SELECT CASE WHEN dblink_exec('{link}', 'INSERT INTO sink VALUES (''lied'')') IS NULL
      THEN 0 ELSE 1 END $f$;
CREATE FUNCTION liar_nested() RETURNS int LANGUAGE sql STABLE AS 'SELECT liar_plpgsql()';
CREATE FUNCTION liar_dynamic() RETURNS int LANGUAGE plpgsql STABLE AS $f$
BEGIN EXECUTE 'SELECT side_effect()'; RETURN 1; END $f$;
"""


def attack_data(dsn: str, sql: str, **action: Any) -> dict[str, Any]:
    """A config with runbook `attack`: `sql` as diagnose step #1 and as action `go` (with the
    action's extra keys, e.g. mutating: true)."""
    return {
        "connections": {"db": {"kind": "postgres", "dsn": dsn, "timeout": "5s"}},
        "runbooks": [
            {
                "id": "attack",
                "title": "Attack",
                "diagnose": [{"title": "look", "kind": "sql", "connection": "db", "sql": sql}],
                "actions": [
                    {
                        "id": "go",
                        "key": "G",
                        "title": "go",
                        "kind": "sql",
                        "connection": "db",
                        "sql": sql,
                        **action,
                    }
                ],
            }
        ],
    }


def attack_config(dsn: str, sql: str, *, mutating: bool = False) -> Config:
    return Config.model_validate(attack_data(dsn, sql, mutating=mutating))


@dataclass(frozen=True)
class Armed:
    """The server, its DSN and the directory its programs would leave marker files in."""

    server: PostgresServer
    markers: Path

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def marker(self, name: str) -> Path:
        return self.markers / name


@pytest.fixture(scope="module", name="armed")
def armed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Armed]:
    server = PostgresServer(
        tmp_path_factory.mktemp("pg-sql-attacks"),
        settings={"shared_preload_libraries": "pg_stat_statements", "autovacuum": "off"},
    )
    markers = Path(tempfile.mkdtemp(prefix="opstui-sqlmark-"))
    os.chmod(markers, 0o777)  # the server (user postgres under root) writes here if it can
    server.start()
    try:

        async def setup() -> None:
            conn = await asyncpg.connect(server.dsn, timeout=10)
            try:
                await conn.execute(setup_sql(server.port, markers))
                await conn.execute("SELECT pg_stat_statements_reset()")
            finally:
                await conn.close()

        asyncio.run(setup())
        yield Armed(server, markers)
    finally:
        server.close()
        for entry in markers.iterdir():
            entry.unlink()
        markers.rmdir()


@dataclass
class Witness:
    """A victim backend and a LISTENer, live for one test."""

    victim: asyncpg.Connection
    listener: asyncpg.Connection
    heard: list[str]


@pytest.fixture(name="witness")
async def witness_pair(armed: Armed) -> AsyncIterator[Witness]:
    victim = await asyncpg.connect(
        armed.dsn, timeout=10, server_settings={"application_name": VICTIM}
    )
    listener = await asyncpg.connect(armed.dsn, timeout=10)
    heard: list[str] = []
    await listener.add_listener(CHANNEL, lambda *args: heard.append(str(args[-1])))
    try:
        yield Witness(victim, listener, heard)
    finally:
        for conn in (victim, listener):
            if not conn.is_closed():
                await conn.close(timeout=5)


STATE_SQL = """
SELECT (SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM t) AS t,
       (SELECT count(*) FROM sink) AS sink,
       (SELECT last_value || '/' || is_called FROM seq) AS seq,
       (SELECT last_value || '/' || is_called FROM counter_t_id_seq) AS counter_seq,
       (SELECT count(*) FROM counter_t) AS counter_rows,
       (SELECT count(*) FROM trig_t) AS trig_rows,
       (SELECT count(*) FROM child_c) AS child_rows,
       (SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database())
         AS stats_reset,
       pg_conf_load_time()::text AS conf_load_time,
       (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
         WHERE relnamespace = 'public'::regnamespace) AS relations
"""


async def snapshot(armed: Armed, witness: Witness | None = None) -> dict[str, Any]:
    """Everything an attack could have changed, read from the server (and the disk)."""
    await asyncio.sleep(0.2)  # a NOTIFY, a termination or a reload lands asynchronously
    conn = await asyncpg.connect(armed.dsn, timeout=10)
    try:
        row = await conn.fetchrow(STATE_SQL)
        assert row is not None
        state: dict[str, Any] = dict(row)
    finally:
        await conn.close()
    state["markers"] = sorted(p.name for p in armed.markers.iterdir())
    if witness is not None:
        try:
            state["victim"] = await witness.victim.fetchval("SELECT 'alive'", timeout=5)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            state["victim"] = f"dead: {type(exc).__name__}"
        state["heard"] = list(witness.heard)
    return state


async def untouched(armed: Armed, witness: Witness | None = None) -> dict[str, Any]:
    """The state a server nobody attacked has (asserted before each attack)."""
    state = await snapshot(armed, witness)
    assert state["t"] == "1=orig,2=orig,3=orig,4=orig,5=orig"
    assert state["sink"] == 0 and state["markers"] == []
    return state


class NoProbes:
    """A ProbeReader with no probes: the bare SQL steps below read none."""

    def current(self, probe_id: str) -> None:
        return None

    async def fresh(self, probe_id: str) -> None:
        raise KeyError(probe_id)


def bare_sql_step(sql: str, args: list[Any], *, mutating: bool) -> PreparedStep:
    """A prepared `sql` step on connection `db`, for calling the executor itself (below the
    runner: what the executor does whatever verdict the runner reached)."""
    return PreparedStep(
        kind="sql",
        title="bare",
        runbook_id=None,
        action_id=None,
        step_index=None,
        connection="db",
        params={},
        rendered={"sql": sql, "args": args, "mutating": mutating},
        equivalent="",
        target="db",
        environment=None,
        timeout=5.0,
    )


def bare_context(armed: Armed, pool: ClientPool) -> ExecutionContext:
    """An ExecutionContext whose only connection, `db`, is the armed server."""
    config = Config.model_validate(
        {"connections": {"db": {"kind": "postgres", "dsn": armed.dsn, "timeout": "5s"}}}
    )
    return ExecutionContext(config, pool, NoProbes())
