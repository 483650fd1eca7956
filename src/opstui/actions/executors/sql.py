"""The `sql` step kind: read-only unless declared `mutating: true` (DESIGN.md section 6).

A read-only step runs in a READ ONLY transaction through the connection's shared pool, so
PostgreSQL itself refuses a write (SQLSTATE 25006) whatever the SQL says: nothing here parses
SQL to guess. A mutating step is previewed by running it in a transaction under
`SET LOCAL lock_timeout` and `statement_timeout`, reading the command status ("UPDATE 12") and
rolling back; executed, it runs in a normal transaction that commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Preview,
    Progress,
    Verdict,
)
from opstui.actions.cancel import until_cancelled
from opstui.actions.context import ExecutionContext, StepProblem, connection_of
from opstui.config.kinds.postgres import PostgresConnection
from opstui.config.types import Secret, format_duration, redact, reveal
from opstui.sources.base import ProbeError
from opstui.sources.postgres_client import (
    PostgresClient,
    get_postgres_client,
    probe_error,
    statement_timeout_ms,
)

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = PoolConnectionProxy[Record]

T = TypeVar("T")
MAX_ROWS = 200
"""Rows a result table shows; a query returning more says so."""
CELL_LIMIT = 60
LOCK_TIMEOUT = 2.0
"""Seconds a preview waits for a lock before it gives up and says so."""
READ_ONLY_REASON = "runs in a READ ONLY transaction (the server refuses writes)"
_MULTIPLE_COMMANDS = "cannot insert multiple commands into a prepared statement"



class _Rollback(Exception):
    """Raised inside the preview's transaction to roll it back, carrying what was measured."""

    def __init__(self, result: Result) -> None:
        super().__init__("rollback")
        self.result = result


@dataclass(frozen=True, slots=True)
class Result:
    """What a statement did: its command status and, for a query, at most MAX_ROWS rows."""

    status: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    more: bool = False
    """The query returned more rows than were kept."""

    @property
    def count(self) -> int | None:
        """The row count of the command status ("UPDATE 12" -> 12), if it has one."""
        last = self.status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else None

    @property
    def verb(self) -> str:
        return self.status.split(" ", 1)[0] if self.status else "statement"


class SqlExecutor(Executor):
    """Runs `rendered["sql"]` with `rendered["args"]` bound as $1, $2... on a postgres pool."""

    kind: ClassVar[str] = "sql"

    def __init__(self, *, lock_timeout: float = LOCK_TIMEOUT, max_rows: int = MAX_ROWS) -> None:
        self.lock_timeout = lock_timeout
        self.max_rows = max_rows

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        if declared_mutating(step.rendered):
            return Verdict(Classification.MUTATING, "declared mutating")
        return Verdict(Classification.READ_ONLY, READ_ONLY_REASON)

    async def preview(self, step: PreparedStep, ctx: ExecutionContext) -> Preview | None:
        """The affected-row count from a rolled-back run under a lock timeout."""
        if not declared_mutating(step.rendered):
            return None
        try:
            sql, args = statement_of(step.rendered)
            client = client_of(step, ctx)
            lock = self.lock_timeout

            async def measure(conn: Conn) -> Result:
                await conn.execute(f"SET LOCAL lock_timeout = {max(1, int(lock * 1000))}")
                result = await run_statement(conn, sql, args, self.max_rows, keep_rows=False)
                raise _Rollback(result)

            await in_transaction(client, measure, readonly=False, seconds=step.timeout)
        except _Rollback as done:
            return Preview((preview_line(done.result),))
        except StepProblem as exc:
            return Preview((), error=str(exc))
        except ProbeError as exc:
            return Preview((), error=preview_failure(exc, self.lock_timeout))
        return Preview((), error="the preview did not run")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        start = ctx.clock.monotonic()
        readonly = read_only or not declared_mutating(step.rendered)
        try:
            sql, args = statement_of(step.rendered)
            client = client_of(step, ctx)

            async def work(conn: Conn) -> Result:
                return await run_statement(conn, sql, args, self.max_rows, keep_rows=True)

            run = in_transaction(client, work, readonly=readonly, seconds=step.timeout)
            result = await until_cancelled(run, progress)
        except (StepProblem, ProbeError) as exc:
            reason = exc.reason if isinstance(exc, ProbeError) else str(exc)
            return Outcome(False, reason, error=reason, duration=ctx.clock.monotonic() - start)
        duration = ctx.clock.monotonic() - start
        if result is None:
            return Outcome(False, "cancelled", cancelled=True, duration=duration)
        text = result_text(result, self.max_rows)
        output(text)
        return Outcome(True, summary_of(result), output=text, duration=duration, data=result)

    @staticmethod
    def equivalent(rendered: Mapping[str, Any], connection: PostgresConnection) -> str:
        """`psql 'postgresql://user@host:port/db' -c '<sql>'` and the args as `$1=...`."""
        sql, args = statement_of(rendered)
        return psql(connection, sql, args)


# --- running statements -------------------------------------------------------------------------


def declared_mutating(rendered: Mapping[str, Any]) -> bool:
    return rendered.get("mutating") is True


def statement_of(rendered: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The SQL text (under "sql", or "text" as the runner first spelled it) and its args."""
    sql = rendered.get("sql", rendered.get("text"))
    if not isinstance(sql, str) or not sql.strip():
        raise StepProblem("the step has no SQL")
    args = rendered.get("args") or []
    return sql, list(args)


def client_of(step: PreparedStep, ctx: ExecutionContext) -> PostgresClient:
    name, connection = connection_of(step, ctx, PostgresConnection, "postgres")
    return get_postgres_client(ctx.pool, name, connection)


async def in_transaction(
    client: PostgresClient, work: Callable[[Conn], Awaitable[T]], *, readonly: bool, seconds: float
) -> T:
    """`work(conn)` in a transaction (READ ONLY, or writable and committed on success) under
    `statement_timeout` and a client deadline; failures become ProbeError.

    The read-only path is the sources' own `run_readonly`. The writable one mirrors it on the
    same pool (PostgresClient has no public writable call): a connection that hit the client
    deadline may be mid-statement, so it is terminated rather than returned to the pool.
    """
    if readonly:
        return await client.run_readonly(work, time_limit=seconds)
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        async with asyncio.timeout_at(deadline):
            pool = await client._ensure_pool()
            conn = await pool.acquire()
    except Exception as exc:
        raise probe_error(exc, seconds, client.connection) from exc
    try:
        try:
            async with asyncio.timeout_at(deadline), conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {statement_timeout_ms(seconds)}")
                return await work(conn)
        except (TimeoutError, asyncio.CancelledError):
            conn.terminate()
            raise
    except (ProbeError, _Rollback):
        raise
    except Exception as exc:
        raise probe_error(exc, seconds, client.connection) from exc
    finally:
        with contextlib.suppress(Exception):
            await pool.release(conn, timeout=seconds)


async def run_statement(
    conn: Conn, sql: str, args: Sequence[Any], max_rows: int, *, keep_rows: bool
) -> Result:
    """Run one statement (several only without args), returning its status and rows."""
    values = [reveal(a) if isinstance(a, Secret) else a for a in args]
    try:
        async with conn.transaction():  # a savepoint: a failed prepare leaves the outer usable
            statement = await conn.prepare(sql)
    except asyncpg.PostgresSyntaxError as exc:
        if values or _MULTIPLE_COMMANDS not in str(exc):
            raise
        status = await conn.execute(sql)  # a script: no rows, the last command's status
        return Result(str(status))
    attributes = statement.get_attributes()
    if attributes and keep_rows:
        columns = tuple(a.name for a in attributes)
        if _is_query(sql):
            cursor = await statement.cursor(*values)
            rows = await cursor.fetch(max_rows + 1)
            kept = tuple(tuple(r) for r in rows[:max_rows])
            return Result(f"SELECT {len(kept)}", columns, kept, more=len(rows) > max_rows)
        rows = await statement.fetch(*values)
        kept = tuple(tuple(r) for r in rows[:max_rows])
        return Result(statement.get_statusmsg(), columns, kept, more=len(rows) > max_rows)
    await statement.fetch(*values)
    return Result(statement.get_statusmsg())


def _is_query(sql: str) -> bool:
    """A plain query (a cursor may page it); DML with RETURNING runs to its end at once."""
    head = sql.lstrip().split(None, 1)[0].lower() if sql.strip() else ""
    return head in ("select", "with", "values", "table", "show", "explain")


# --- words ----------------------------------------------------------------------------------


def preview_line(result: Result) -> str:
    count = result.count
    if count is None:
        return f"{result.status} succeeds (measured in a rolled-back transaction)"
    noun = "row" if count == 1 else "rows"
    verb = "returns" if result.verb == "SELECT" else "affects"
    return f"{result.verb} {verb} {count:,} {noun} (measured in a rolled-back transaction)"


def preview_failure(exc: ProbeError, lock_timeout: float) -> str:
    text = f"{exc.reason} {exc.detail or ''}"
    if "55P03" in text or "lock timeout" in text:
        return (
            f"preview hit the lock timeout ({format_duration(lock_timeout)}): another "
            "transaction holds a lock this statement needs"
        )
    return f"preview failed: {exc.reason}"


def summary_of(result: Result) -> str:
    if result.columns and _is_select(result):
        n = len(result.rows)
        if result.more:
            return f"more than {n:,} rows (first {n:,} shown)"
        return f"{n:,} row" if n == 1 else f"{n:,} rows"
    return result.status


def _is_select(result: Result) -> bool:
    return result.verb in ("SELECT", "SHOW", "EXPLAIN", "VALUES", "TABLE")


def result_text(result: Result, max_rows: int) -> str:
    """A text table (columns, at most max_rows rows) or the command status."""
    if not result.columns:
        return result.status
    header = list(result.columns)
    body = [[cell(v) for v in row] for row in result.rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    lines = [
        " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
        "-+-".join("-" * w for w in widths),
    ]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    n = len(result.rows)
    if result.more:
        lines.append(f"(first {n:,} rows of more; the table stops at {max_rows})")
    else:
        lines.append(f"({n:,} row)" if n == 1 else f"({n:,} rows)")
    if not _is_select(result):
        lines.append(result.status)
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = " ".join(str(value).split())
    return text if len(text) <= CELL_LIMIT else text[: CELL_LIMIT - 1] + "…"


def psql(connection: PostgresConnection, sql: str, args: Sequence[Any]) -> str:
    """The psql command line for a statement; the DSN without its password, args as $n=..."""
    shown = redact(connection.dsn)
    parts = urlsplit(shown)
    if parts.scheme and parts.hostname:
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        shown = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    line = shlex.join(["psql", shown, "-c", " ".join(sql.split())])
    if args:
        bound = ", ".join(f"${i}={shown_arg(a)}" for i, a in enumerate(args, 1))
        line += f"  # {bound}"
    return line


def shown_arg(value: Any) -> str:
    if isinstance(value, Secret):
        return redact(value)
    return repr(value) if isinstance(value, str) else str(value)
