"""The `sql` step kind, classified from the statement and the server's catalog (DESIGN.md 6).

A step is exactly one statement (opstui/sqlcheck.py, PostgreSQL's own parser). It is read-only
only when its shape is a plain read (SELECT, VALUES, TABLE, SHOW, EXPLAIN without ANALYZE; no
data-modifying CTE, no SELECT INTO, no locking clause) and every function it can make the
server run, named or reached through operators, views, policies and types, is non-volatile or
reviewed harmless in that server's catalog (sources/pg_catalog.py). Anything else is mutating,
whatever the config says. It always runs as one statement through the extended protocol
(asyncpg prepare/bind), a read inside a READ ONLY transaction as a second wall.

A preview only reads. A rolled-back trial runs only for a single INSERT/UPDATE/DELETE/MERGE
whose functions are all non-volatile and whose target table has nothing that acts outside the
transaction (triggers, rules, sequences, volatile defaults or constraints, cascades to such a
table), under `SET LOCAL lock_timeout` and `statement_timeout`; otherwise an EXPLAIN estimate
(no ANALYZE, READ ONLY transaction) labelled as an estimate, or "no preview".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

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
from opstui.sources.pg_catalog import Judgement, judge, trial_facts
from opstui.sources.postgres_client import (
    PostgresClient,
    get_postgres_client,
    probe_error,
    statement_timeout_ms,
)
from opstui.sqlcheck import EXPLAINABLE, SqlProblem, Statement, parse_statement

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
MEASURED = "measured in a rolled-back transaction"
ESTIMATED = "an estimate from EXPLAIN, nothing was run"
_QUERIES = frozenset({"SELECT", "VALUES", "SHOW", "EXPLAIN"})


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
        """From the parse, then the catalog; a server that cannot be asked raises (the runner
        then assumes mutating and asks again next time)."""
        declared = declared_mutating(step.rendered)
        try:
            statement = parse_statement(statement_of(step.rendered)[0])
        except SqlProblem as exc:
            return _mutating(str(exc), declared)
        if statement.not_read is not None:
            return _mutating(statement.not_read, declared)
        judgement = await judge(client_of(step, ctx), statement, time_limit=step.timeout)
        if judgement.problems:
            return _mutating("; ".join(judgement.problems[:3]), declared)
        if declared:
            return Verdict(
                Classification.MUTATING, f"declared mutating ({read_words(statement, judgement)})"
            )
        return Verdict(Classification.READ_ONLY, read_words(statement, judgement))

    async def preview(self, step: PreparedStep, ctx: ExecutionContext) -> Preview | None:
        """Only reads: a rolled-back trial where nothing can act outside the transaction,
        else an EXPLAIN estimate, else "no preview"; None for a provable read."""
        try:
            sql, args = statement_of(step.rendered)
            statement = parse_statement(sql)
            if not (statement.read or statement.command in EXPLAINABLE) or statement.into:
                what = statement.command
                return Preview((f"no preview: {what} cannot be measured without running it",))
            client = client_of(step, ctx)
            judgement = await judge(client, statement, time_limit=step.timeout)
            if statement.read and not judgement.problems:
                if not declared_mutating(step.rendered):
                    return None
                return Preview(("a provable read: it changes nothing",))
            why_not = await self._why_no_trial(step, statement, judgement, client)
            if why_not is None:
                return Preview((preview_line(await self._trial(step, client, statement, args)),))
            if statement.command in EXPLAINABLE and judgement.plannable:
                estimate = await explain_estimate(client, statement, args, step.timeout)
                return Preview((estimate, f"not run: {why_not}"))
            return Preview((f"no preview: {why_not}",))
        except (StepProblem, SqlProblem) as exc:
            return Preview((), error=str(exc))
        except ProbeError as exc:
            return Preview((), error=preview_failure(exc, self.lock_timeout))

    async def _why_no_trial(
        self,
        step: PreparedStep,
        statement: Statement,
        judgement: Judgement,
        client: PostgresClient,
    ) -> str | None:
        if judgement.problems:
            return judgement.problems[0]
        if not statement.trial_shape or statement.target is None:
            what = "a data-modifying CTE" if statement.data_modifying_cte else statement.command
            return f"{what} cannot be measured without running it"
        trial = await trial_facts(client, statement, time_limit=step.timeout)
        return None if trial.allowed else "; ".join(trial.problems[:3])

    async def _trial(
        self, step: PreparedStep, client: PostgresClient, statement: Statement, args: list[Any]
    ) -> Result:
        lock = self.lock_timeout

        async def measure(conn: Conn) -> Result:
            await conn.execute(f"SET LOCAL lock_timeout = {max(1, int(lock * 1000))}")
            result = await run_statement(conn, statement, args, self.max_rows, keep_rows=False)
            raise _Rollback(result)

        try:
            await in_transaction(client, measure, readonly=False, seconds=step.timeout)
        except _Rollback as done:
            return done.result
        raise StepProblem("the preview did not run")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        """`read_only` (the runner's verdict) decides the transaction, never the config."""
        start = ctx.clock.monotonic()
        try:
            sql, args = statement_of(step.rendered)
            statement = parse_statement(sql)
            client = client_of(step, ctx)

            async def work(conn: Conn) -> Result:
                return await run_statement(conn, statement, args, self.max_rows, keep_rows=True)

            run = in_transaction(client, work, readonly=read_only, seconds=step.timeout)
            result = await until_cancelled(run, progress)
        except (StepProblem, SqlProblem, ProbeError) as exc:
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


def _mutating(reason: str, declared: bool) -> Verdict:
    overruled = None if declared else f"not declared mutating, but {reason}"
    return Verdict(Classification.MUTATING, reason, overruled=overruled)


def read_words(statement: Statement, judgement: Judgement) -> str:
    """"one SELECT, functions stable" (and the reviewed volatile ones it calls)."""
    if not judgement.functions:
        return f"one {statement.command}, calls no function"
    if judgement.harmless:
        return (
            f"one {statement.command}, functions stable or reviewed harmless "
            f"({', '.join(judgement.harmless)})"
        )
    return f"one {statement.command}, functions stable"


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


def _values(args: Sequence[Any]) -> list[Any]:
    return [reveal(a) if isinstance(a, Secret) else a for a in args]


async def run_statement(
    conn: Conn, statement: Statement, args: Sequence[Any], max_rows: int, *, keep_rows: bool
) -> Result:
    """Run the one statement through the extended protocol (prepare, bind, execute): the
    server refuses a second statement there, and none reaches it from here."""
    values = _values(args)
    prepared = await conn.prepare(statement.text)
    attributes = prepared.get_attributes()
    if attributes and keep_rows:
        columns = tuple(a.name for a in attributes)
        if statement.command in _QUERIES and not statement.data_modifying_cte:
            cursor = await prepared.cursor(*values)
            rows = await cursor.fetch(max_rows + 1)
            kept = tuple(tuple(r) for r in rows[:max_rows])
            return Result(f"SELECT {len(kept)}", columns, kept, more=len(rows) > max_rows)
        rows = await prepared.fetch(*values)
        kept = tuple(tuple(r) for r in rows[:max_rows])
        return Result(prepared.get_statusmsg(), columns, kept, more=len(rows) > max_rows)
    await prepared.fetch(*values)
    return Result(prepared.get_statusmsg())


async def explain_estimate(
    client: PostgresClient, statement: Statement, args: Sequence[Any], seconds: float
) -> str:
    """The planner's row estimate (EXPLAIN without ANALYZE, in a READ ONLY transaction)."""
    values = _values(args)

    async def plan(conn: Conn) -> Any:
        prepared = await conn.prepare(f"EXPLAIN (FORMAT JSON) {statement.text}")
        return await prepared.fetchval(*values)

    raw = await client.run_readonly(plan, time_limit=seconds)
    document = json.loads(raw) if isinstance(raw, str) else raw
    top = document[0]["Plan"]
    node = top
    if top.get("Node Type") == "ModifyTable" and top.get("Plans"):
        node = top["Plans"][0]
    rows = int(node.get("Plan Rows", 0))
    noun = "row" if rows == 1 else "rows"
    verb = "returns" if statement.command in _QUERIES else "affects"
    return f"{statement.command} {verb} about {rows:,} {noun} ({ESTIMATED})"


# --- words ----------------------------------------------------------------------------------


def preview_line(result: Result) -> str:
    count = result.count
    if count is None:
        return f"{result.status} succeeds ({MEASURED})"
    noun = "row" if count == 1 else "rows"
    verb = "returns" if result.verb == "SELECT" else "affects"
    return f"{result.verb} {verb} {count:,} {noun} ({MEASURED})"


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
