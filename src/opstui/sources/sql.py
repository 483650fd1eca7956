"""The `sql` probe kind: a query (or a built-in preset) on PostgreSQL, in a READ ONLY transaction.

A query probe must be a provable read (DESIGN.md section 6.1): its shape is checked when the
config loads (opstui/sqlcheck.py), and before its first poll the server's catalog is asked
about every function it could run (sources/pg_catalog.py). One that could run a volatile
function is an ERR panel saying which ("not a provable read: calls pg_terminate_backend
(volatile)") and is never sent; the answer is kept, so it is asked once per source.

How a result becomes a reading (the probe's `value` key, when set, always names a column or
preset field and wins):
- no rows: NO DATA "query returned no rows";
- one row of one column: a scalar; NULL is NO DATA "query returned NULL", a number (int,
  float, Decimal, bool as 1/0; NaN and Inf kept) is the value, text is a field with no value;
- one row of several columns: every column is a field (numbers stay numbers, NULLs are left
  out, the rest is text) and a fact; the value is the `value` column, else the first numeric;
- several rows: a Table of at most `max_rows` rows (total_rows set when cut); the value is the
  number of rows, or with `value` set, that column in the first row. Fields: `rows`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from opstui.config.kinds.postgres import PostgresConnection, SqlProbe
from opstui.config.types import format_duration
from opstui.sources.base import FieldValue, ProbeError, Reading, Source, Table
from opstui.sources.pg_catalog import judge
from opstui.sources.postgres_client import PostgresClient, get_postgres_client
from opstui.sqlcheck import SqlProblem, parse_statement

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

    Conn: TypeAlias = PoolConnectionProxy[Record]

COUNT_CAP = 100_000
"""Rows counted past `max_rows` (without fetching them) before the total says "at least"."""
TEXT_LIMIT = 120
QUERY_LIMIT = 60
SLOW_TOP = 5
HINT_VALUE = "check the probe's `value` key"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """At most max_rows rows, and how many the query returned in all (capped at COUNT_CAP)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    total: int
    capped: bool = False


# --- values -----------------------------------------------------------------------------


def as_number(value: Any) -> int | float | None:
    """A cell as a number for the sparkline and thresholds; None when it is not one."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return float(value)
    return None


def as_field(value: Any) -> FieldValue:
    """Numbers (and booleans) stay themselves; anything else becomes capped text."""
    if isinstance(value, bool):
        return value
    number = as_number(value)
    return number if number is not None else _text(value)


def format_cell(value: Any) -> str:
    """A cell as a panel shows it: 1,204 / 0.25 / true / NULL / text."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    number = as_number(value)
    if number is None:
        return _text(value)
    if isinstance(number, int):
        return f"{number:,}"
    if not math.isfinite(number):
        return str(number)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.6g}" if abs(number) >= 1e-4 else f"{number:.3g}"


def _text(value: Any) -> str:
    flat = " ".join(str(value).split())
    return flat if len(flat) <= TEXT_LIMIT else flat[: TEXT_LIMIT - 1] + "…"


def _pick(fields: Mapping[str, FieldValue], key: str) -> float:
    """The number of `key` among a preset's fields; ProbeError when it is missing or text."""
    if key not in fields:
        raise ProbeError(f'no field "{key}"', hint=f"{HINT_VALUE}; fields: {', '.join(fields)}")
    number = as_number(fields[key])
    if number is None:
        raise ProbeError(f'field "{key}" is not numeric', hint=HINT_VALUE)
    return float(number)


# --- shaping a query's result ------------------------------------------------------------


def shape_result(result: QueryResult, value_key: str | None, max_rows: int) -> Reading:
    """The reading for a query's result (the rules are in the module docstring)."""
    if result.total == 0:
        return Reading(value=None, no_data="query returned no rows")
    first = result.rows[0]
    key_index = _column_index(result.columns, value_key)
    if result.total == 1:
        return _one_row(result.columns, first, key_index)
    return _many_rows(result, first, key_index, max_rows)


def _column_index(columns: Sequence[str], key: str | None) -> int | None:
    if key is None:
        return None
    if key not in columns:
        raise ProbeError(
            f'no column "{key}" in the result', hint=f"{HINT_VALUE}; columns: {', '.join(columns)}"
        )
    return columns.index(key)


def _keyed_value(columns: Sequence[str], row: Sequence[Any], index: int) -> float | None:
    """The `value` column's number; None (NULL) means no data; text is a config problem."""
    cell = row[index]
    if cell is None:
        return None
    number = as_number(cell)
    if number is None:
        raise ProbeError(f'column "{columns[index]}" is not numeric', hint=HINT_VALUE)
    return float(number)


def _one_row(columns: Sequence[str], row: Sequence[Any], key_index: int | None) -> Reading:
    if len(columns) == 1:
        cell = row[0]
        if cell is None:
            return Reading(value=None, no_data="query returned NULL")
        if key_index is not None:  # `value` names this column: it must be a number
            return Reading(value=_keyed_value(columns, row, 0), fields={columns[0]: as_field(cell)})
        number = as_number(cell)
        return Reading(
            value=None if number is None else float(number),
            fields={columns[0]: as_field(cell)},
        )
    fields = {
        name: as_field(cell) for name, cell in zip(columns, row, strict=True) if cell is not None
    }
    facts = tuple((name, format_cell(cell)) for name, cell in zip(columns, row, strict=True))
    if key_index is None and "value" in columns:
        key_index = columns.index("value")
    if key_index is not None:
        value = _keyed_value(columns, row, key_index)
        if value is None:
            return Reading(
                value=None,
                fields=fields,
                facts=facts,
                no_data=f'column "{columns[key_index]}" is NULL',
            )
        return Reading(value=value, fields=fields, facts=facts)
    numbers = (as_number(cell) for cell in row if cell is not None)
    first_number = next((n for n in numbers if n is not None), None)
    return Reading(
        value=None if first_number is None else float(first_number), fields=fields, facts=facts
    )


def _many_rows(
    result: QueryResult, first: Sequence[Any], key_index: int | None, max_rows: int
) -> Reading:
    shown = result.rows[:max_rows]
    cut = result.total > len(shown)
    table = Table(
        columns=result.columns,
        rows=tuple(tuple(format_cell(cell) for cell in row) for row in shown),
        total_rows=result.total if cut else None,
    )
    fields: dict[str, FieldValue] = {"rows": result.total}
    notes = (f"more than {result.total:,} rows; counted no further",) if result.capped else ()
    if key_index is None:
        return Reading(value=float(result.total), fields=fields, table=table, notes=notes)
    value = _keyed_value(result.columns, first, key_index)
    if value is None:
        return Reading(
            value=None,
            fields=fields,
            table=table,
            notes=notes,
            no_data=f'column "{result.columns[key_index]}" is NULL in the first row',
        )
    fields[result.columns[key_index]] = as_field(first[key_index])
    return Reading(value=value, fields=fields, table=table, notes=notes)


# --- presets --------------------------------------------------------------------------------

CONNECTIONS_SQL = """
SELECT count(*) AS connections,
       current_setting('max_connections')::int AS max_connections,
       count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting
FROM pg_stat_activity
WHERE backend_type = 'client backend'
"""

LONGEST_SQL = """
SELECT pid, state, left(query, $1) AS query,
       EXTRACT(EPOCH FROM clock_timestamp() - xact_start)::float8 AS seconds
FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()
ORDER BY xact_start
LIMIT 1
"""

STATEMENTS_EXTENSION_SQL = """
SELECT n.nspname, e.extversion
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

SLOW_SQL = """
SELECT calls, {mean}::float8 AS mean_ms, {total}::float8 AS total_ms,
       left(regexp_replace(query, '\\s+', ' ', 'g'), $1) AS query
FROM {schema}.pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {mean} DESC
LIMIT $2
"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


async def pg_connections(conn: Conn) -> Reading:
    """Client connections by state against max_connections; value: connections."""
    row = await conn.fetchrow(CONNECTIONS_SQL)
    assert row is not None  # an aggregate always returns one row
    count, limit = int(row["connections"]), int(row["max_connections"])
    ratio = count / limit if limit else 0.0
    fields: dict[str, FieldValue] = {
        "connections": count,
        "max_connections": limit,
        "active": int(row["active"]),
        "idle": int(row["idle"]),
        "idle_in_transaction": int(row["idle_in_transaction"]),
        "waiting": int(row["waiting"]),
        "connections_ratio": round(ratio, 4),
    }
    facts = (
        ("connections", f"{count:,}/{limit:,} ({ratio:.0%})"),
        ("active", f"{fields['active']:,}"),
        ("idle", f"{fields['idle']:,}"),
        ("idle in transaction", f"{fields['idle_in_transaction']:,}"),
        ("waiting on locks", f"{fields['waiting']:,}"),
    )
    return Reading(value=float(count), fields=fields, facts=facts)


async def pg_longest_transaction(conn: Conn) -> Reading:
    """The oldest open transaction of another backend; value: its age in seconds (0: none)."""
    row = await conn.fetchrow(LONGEST_SQL, QUERY_LIMIT)
    if row is None:
        return Reading(value=0.0, fields={"seconds": 0.0}, facts=(("open transactions", "none"),))
    seconds = max(0.0, float(row["seconds"]))
    fields: dict[str, FieldValue] = {
        "seconds": round(seconds, 3),
        "pid": int(row["pid"]),
        "state": str(row["state"] or "unknown"),
        "query": _text(row["query"] or ""),
    }
    facts = (
        ("age", format_duration(seconds)),
        ("pid", str(row["pid"])),
        ("state", str(fields["state"])),
        ("query", str(fields["query"])),
    )
    return Reading(value=seconds, fields=fields, facts=facts)


async def pg_slow_queries(conn: Conn) -> Reading:
    """pg_stat_statements' top statements by mean time; value: the slowest mean in ms."""
    ext = await conn.fetchrow(STATEMENTS_EXTENSION_SQL)
    if ext is None:
        return Reading(value=None, no_data="pg_stat_statements is not installed")
    new_names = _version(str(ext["extversion"])) >= (1, 8)
    sql = SLOW_SQL.format(
        schema=quote_ident(str(ext["nspname"])),
        mean="mean_exec_time" if new_names else "mean_time",
        total="total_exec_time" if new_names else "total_time",
    )
    rows = await conn.fetch(sql, QUERY_LIMIT, SLOW_TOP)
    if not rows:
        return Reading(value=None, no_data="pg_stat_statements has no statements yet")
    table = Table(
        columns=("calls", "mean ms", "total ms", "query"),
        rows=tuple(
            (
                format_cell(int(r["calls"])),
                format_cell(round(float(r["mean_ms"]), 2)),
                format_cell(round(float(r["total_ms"]), 1)),
                _text(r["query"]),
            )
            for r in rows
        ),
        title=f"top {len(rows)} statements by mean time",
    )
    slowest = float(rows[0]["mean_ms"])
    fields: dict[str, FieldValue] = {
        "slowest_mean_ms": round(slowest, 3),
        "slowest_calls": int(rows[0]["calls"]),
        "statements": len(rows),
    }
    return Reading(value=slowest, fields=fields, table=table)


Preset = Callable[["Conn"], Awaitable[Reading]]
PRESETS: dict[str, Preset] = {
    "pg_connections": pg_connections,
    "pg_longest_transaction": pg_longest_transaction,
    "pg_slow_queries": pg_slow_queries,
}


# --- the source -----------------------------------------------------------------------------


class SqlSource(Source):
    """One sql probe over its connection's shared asyncpg pool."""

    kind: ClassVar[str] = "sql"

    def __init__(
        self, probe: SqlProbe, connection: PostgresConnection, client: PostgresClient
    ) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self._refusal: str | None = None
        self._cleared = probe.query is None  # presets are fixed reads (tested as such)

    @classmethod
    def build(cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool) -> SqlSource:
        if not isinstance(probe, SqlProbe):
            raise TypeError(f"SqlSource needs an sql probe, got {type(probe).__name__}")
        if not isinstance(connection, PostgresConnection):
            raise TypeError(f"an sql probe needs a postgres connection, got {connection.kind}")
        return cls(probe, connection, get_postgres_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        started = time.perf_counter()
        if self.probe.preset is not None:
            reading = await self.client.run_readonly(
                PRESETS[self.probe.preset], time_limit=self.timeout
            )
            reading = self._preset_value(reading)
        else:
            await self._clear()
            result = await self.client.run_readonly(self._fetch, time_limit=self.timeout)
            reading = shape_result(result, self.probe.value, self.probe.max_rows)
        latency_ms = (time.perf_counter() - started) * 1000.0
        return replace(reading, latency_ms=latency_ms)

    async def _clear(self) -> None:
        """Raise ProbeError unless the query is a provable read. The verdict is kept, except
        when it rests on a name the server does not know yet (or the server could not be
        asked): the next poll asks again, and still never sends the query unproven."""
        if self._cleared:
            return
        refusal = self._refusal
        if refusal is None:
            assert self.probe.query is not None
            try:
                statement = parse_statement(self.probe.query)
            except SqlProblem as exc:
                refusal = self._refusal = str(exc)
            else:
                if statement.not_read is not None:
                    refusal = self._refusal = statement.not_read
                else:
                    judgement = await judge(self.client, statement, time_limit=self.timeout)
                    if not judgement.problems:
                        self._cleared = True
                        return
                    refusal = judgement.problems[0]
                    if judgement.settled:
                        self._refusal = refusal
        raise ProbeError(
            f"not a provable read: {refusal}",
            hint="a probe only reads: make it a step of a runbook action instead",
        )

    async def _fetch(self, conn: Conn) -> QueryResult:
        """At most max_rows rows through a cursor; the rest only counted (MOVE), not sent."""
        assert self.probe.query is not None
        cursor = await conn.cursor(self.probe.query)
        records = await cursor.fetch(self.probe.max_rows)
        total, capped = len(records), False
        if total == self.probe.max_rows:
            more = await cursor.forward(COUNT_CAP)
            total += more
            capped = more == COUNT_CAP
        columns = tuple(records[0].keys()) if records else ()
        return QueryResult(columns, tuple(tuple(r.values()) for r in records), total, capped)

    def _preset_value(self, reading: Reading) -> Reading:
        key = self.probe.value
        if key is None or reading.no_data is not None:
            return reading
        return replace(reading, value=_pick(reading.fields, key))

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "target": self.client.target,
            "timeout": format_duration(self.timeout),
            "pool": f"{self.connection.pool_min}-{self.connection.pool_max} connections",
            "transaction": "READ ONLY",
        }
        if self.probe.preset is not None:
            facts["preset"] = self.probe.preset
        else:
            facts["query"] = self.probe.query
            facts["max_rows"] = self.probe.max_rows
        if self.probe.value is not None:
            facts["value"] = self.probe.value
        return facts
