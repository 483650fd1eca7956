"""One asyncpg pool per `postgres` connection, and the read-only way to query through it.

The pool is made on the first poll inside the running loop; a failed creation is not cached,
so the next poll tries again. Every statement runs inside `transaction(readonly=True)`, so
PostgreSQL itself refuses writes (SQLSTATE 25006), whatever the SQL says.

Timeouts, two layers: the server's `statement_timeout` is set to 90 % of the timeout so a slow
query is cancelled cleanly by the server (the connection stays usable) before the client's
own deadline fires; the client deadline covers what the server cannot (a hung or unreachable
host). A connection that hit the client deadline may be mid-query on a hung server, so it is
terminated rather than handed back: the pool opens a fresh one on the next acquire.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from opstui.config.kinds.postgres import PostgresConnection
from opstui.config.types import format_duration, redact, reveal
from opstui.redaction import Redactor
from opstui.sources.base import Client, ProbeError
from opstui.sources.errors import exception_chain
from opstui.sources.registry import ClientPool

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

T = TypeVar("T")
APPLICATION_NAME = "opstui"
SERVER_SHARE = 0.9
"""statement_timeout as a share of the timeout: the server cancels before the client gives up."""
HINT_AUTH = "check user/password"
_DETAIL_LIMIT = 200
_SQL_REASON_LIMIT = 100


def statement_timeout_ms(timeout: float) -> int:
    return max(1, int(timeout * 1000 * SERVER_SHARE))


def ssl_argument(connection: PostgresConnection) -> str | ssl.SSLContext | None:
    """asyncpg's `ssl`: a mode string, or a context when `ca_file` must be trusted.

    None leaves the choice to the DSN's sslmode (asyncpg's default: prefer).
    """
    mode = connection.ssl
    if connection.ca_file is None or mode in (None, "disable", "prefer"):
        return mode
    context = ssl.create_default_context(cafile=connection.ca_file)
    if mode != "verify-full":  # require / verify-ca: the chain is checked, not the host name
        context.check_hostname = False
    return context


class PostgresClient(Client):
    """The shared asyncpg pool of one postgres connection."""

    def __init__(self, connection: PostgresConnection) -> None:
        self.connection = connection
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    @property
    def target(self) -> str:
        """The DSN as it may be shown (a password as ***)."""
        return redact(self.connection.dsn)

    async def _ensure_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is not None:
                return self._pool
            conn = self.connection
            password = reveal(conn.password) if conn.password is not None else None
            pool = asyncpg.create_pool(
                dsn=reveal(conn.dsn),
                password=password,
                min_size=min(conn.pool_min, conn.pool_max),
                max_size=conn.pool_max,
                timeout=conn.timeout,
                command_timeout=conn.timeout,
                statement_cache_size=conn.statement_cache_size,
                ssl=ssl_argument(conn),
                server_settings={
                    "application_name": APPLICATION_NAME,
                    "statement_timeout": str(statement_timeout_ms(conn.timeout)),
                },
            )
            try:
                await pool  # under the caller's deadline; connect has `timeout` too
            except BaseException:
                pool.terminate()  # connections opened before the failure
                raise
            self._pool = pool
            return pool

    async def run_readonly(
        self,
        work: Callable[[PoolConnectionProxy[Record]], Awaitable[T]],
        *,
        time_limit: float | None = None,
    ) -> T:
        """Run `work(conn)` inside a READ ONLY transaction, all within `time_limit` seconds
        (default: the connection's timeout), pool creation and acquire included.

        Raises ProbeError with a short reason on any failure.
        """
        seconds = self.connection.timeout if time_limit is None else time_limit
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                pool = await self._ensure_pool()
                conn = await pool.acquire()
        except Exception as exc:
            raise probe_error(exc, seconds, self.connection) from exc
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    async with conn.transaction(readonly=True):
                        if seconds != self.connection.timeout:
                            ms = statement_timeout_ms(seconds)
                            await conn.execute(f"SET LOCAL statement_timeout = {ms}")
                        return await work(conn)
            except (TimeoutError, asyncio.CancelledError):
                conn.terminate()  # may be mid-query on a hung server: never reuse it
                raise
        except ProbeError:
            raise
        except Exception as exc:
            raise probe_error(exc, seconds, self.connection) from exc
        finally:
            # A failed reset terminates the connection and the pool replaces it; the poll's
            # outcome is already decided, so that failure is not the poll's.
            with contextlib.suppress(Exception):
                await pool.release(conn, timeout=seconds)

    async def fetch_readonly(
        self, sql: str, *args: Any, time_limit: float | None = None
    ) -> list[Record]:
        """All rows of `sql` run in a READ ONLY transaction (the actions runner reuses this)."""

        async def fetch(conn: PoolConnectionProxy[Record]) -> list[Record]:
            rows: list[Record] = await conn.fetch(sql, *args)
            return rows

        return await self.run_readonly(fetch, time_limit=time_limit)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(self.connection.timeout):
                await pool.close()
        except BaseException:
            pool.terminate()
            raise


def get_postgres_client(
    pool: ClientPool, name: str, connection: PostgresConnection
) -> PostgresClient:
    """The pool's client for connection `name`, created on first use."""
    client = pool.get(name, lambda: PostgresClient(connection))
    if not isinstance(client, PostgresClient):
        raise TypeError(f"connection {name!r} already has a {type(client).__name__}")
    return client


# --- failures -------------------------------------------------------------------------------


def probe_error(exc: BaseException, timeout: float, connection: PostgresConnection) -> ProbeError:
    """A short reason for a failure, judged from the innermost cause outwards."""
    chain = list(exception_chain(exc))
    telling = [c for c in chain if not isinstance(c, asyncio.CancelledError)] or chain
    detail = _clean(str(telling[-1]) or type(telling[-1]).__name__, connection)
    for cause in chain:
        found = _reason(cause, timeout, connection)
        if found is not None:
            reason, hint = found
            return ProbeError(reason, hint=hint, detail=detail)
    return ProbeError(f"query failed: {type(exc).__name__}", detail=detail)




def _reason(
    exc: BaseException, timeout: float, connection: PostgresConnection
) -> tuple[str, str | None] | None:
    if isinstance(exc, asyncpg.PostgresError):
        return _server_reason(exc, connection)
    if isinstance(exc, TimeoutError):
        return f"timeout after {format_duration(timeout)}", None
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: certificate verify failed", "set ca_file to the CA that signed it"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {(exc.reason or 'handshake failed').lower().replace('_', ' ')}", None
    if isinstance(exc, socket.gaierror):
        return "DNS: cannot resolve host", "check the host in the DSN"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", None
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection reset", None
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError):
        return "connection lost", None
    if isinstance(exc, asyncpg.ClientConfigurationError):
        return "bad DSN or connection settings", _clean(str(exc), connection)
    text = str(exc).lower()
    if "rejected ssl upgrade" in text:
        if _ssl_required(connection):
            return "TLS: server does not support SSL", "set ssl: disable or enable it on the server"
        return "not a PostgreSQL server", "check the port in the DSN"
    if "error response during ssl exchange" in text:
        return "TLS: server error during SSL exchange", "check the server log"
    if "password" in text and ("no password" in text or "authentication" in text):
        return "auth failed", HINT_AUTH
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in text:
        return "connection lost", None
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower(), None
    return None


def _ssl_required(connection: PostgresConnection) -> bool:
    if connection.ssl is not None:
        return connection.ssl in ("require", "verify-ca", "verify-full")
    return re.search(r"sslmode=(require|verify-ca|verify-full)", redact(connection.dsn)) is not None


def _server_reason(
    exc: asyncpg.PostgresError, connection: PostgresConnection
) -> tuple[str, str | None]:
    state = str(getattr(exc, "sqlstate", "") or "")
    message = _clean(str(getattr(exc, "message", "") or str(exc)), connection)
    if state == "28P01":
        return "auth failed", HINT_AUTH
    if state == "28000":
        return "auth failed", message  # no such role, or no pg_hba.conf entry
    if state == "3D000":
        return message, "check the database in the DSN"
    if state in ("53300", "53000") or "too many connections" in message:
        return "too many connections", "lower pool_max or raise the server's max_connections"
    if state == "57014":
        if "statement timeout" in message:
            return "query canceled (statement_timeout)", "the query ran past the timeout"
        return "query canceled", None
    if state == "57P03":
        return "server not accepting connections", message
    if state in ("57P01", "57P02"):
        return "connection terminated by server", message
    reason = f"SQL {state}: {message}" if state else message
    if len(reason) > _SQL_REASON_LIMIT:
        reason = reason[: _SQL_REASON_LIMIT - 1] + "…"
    return reason, None


def _clean(text: str, connection: PostgresConnection) -> str:
    """One line, capped, and never carrying the password in any form (the DSN keeps its shape,
    `user:***@host`; the password itself, URL-encoded or decoded, becomes ***)."""
    flat = " ".join(text.split())
    if not isinstance(connection.dsn, str) and connection.dsn.missing is None:
        flat = flat.replace(reveal(connection.dsn), redact(connection.dsn))
    flat = Redactor.of(connection).scrub(flat)
    return flat if len(flat) <= _DETAIL_LIMIT else flat[: _DETAIL_LIMIT - 1] + "…"
