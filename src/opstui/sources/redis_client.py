"""One `redis.asyncio` client (connection pool) per `redis` connection, shared by its probes.

Retries are off: the engine schedules retries with backoff, and a client that retried by
itself would hide a flapping server and stretch a poll past its timeout. Every call runs under
an asyncio deadline on top of the socket timeouts, and every failure becomes a ProbeError with
a short reason ("refused", "timeout after 2s", "NOAUTH: auth required", "WRONGPASS"...).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opstui.config.kinds.redis import RedisConnection
from opstui.config.types import format_duration, redact, reveal
from opstui.sources.base import Client, ProbeError
from opstui.sources.errors import exception_chain, one_line
from opstui.sources.registry import ClientPool

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis import exceptions as rexc

# redis-py (50 ms to import) is imported where a client is made or a failure judged, so a
# queue probe's module loads without it (`validate` reads its fields declaration).

CLIENT_NAME = "opstui"
Arg = str | int | float
Command = tuple[Arg, ...]
"""A command as sent: ("LLEN", "bull:mail:wait"); multi-word names as one ("CONFIG GET", ...)
so redis-py applies its reply parser for that command."""

HINT_PASSWORD = "set the connection's password (as ${ENV_VAR} or file:/path)"
HINT_CREDENTIALS = "check the connection's username and password"


class RedisClient(Client):
    """The shared client of one redis connection.

    The redis-py client is created on first use, inside the running loop. `round_trips` counts
    requests sent (a pipeline is one), so tests can prove a poll costs one round trip.
    """

    def __init__(self, connection: RedisConnection) -> None:
        self.connection = connection
        self.timeout = connection.timeout
        self.round_trips = 0
        self._client: aioredis.Redis | None = None

    @property
    def shown_url(self) -> str:
        """The URL as it may be shown (a password as ***)."""
        return redact(self.connection.url)

    def _ensure_client(self) -> aioredis.Redis:
        if self._client is None:
            import redis.asyncio as aioredis

            # A blocking pool: a poll that finds every connection busy waits for one (within
            # its own deadline) instead of failing with "pool exhausted"; 250 queue probes
            # share 4 connections fine, each holding one for a fraction of a millisecond.
            pool = aioredis.BlockingConnectionPool.from_url(
                reveal(self.connection.url),
                timeout=self.connection.timeout,
                **_options(self.connection),
            )
            self._client = aioredis.Redis.from_pool(pool)
        return self._client

    async def pipeline(
        self, commands: Sequence[Command], *, time_limit: float | None = None
    ) -> list[Any]:
        """Send `commands` in one round trip (no MULTI); replies in order.

        A command the server rejects (WRONGTYPE, NOPERM, unknown command) comes back as its
        exception object in the list, so one bad key does not hide the others; a connection
        failure raises ProbeError.
        """
        seconds = self.timeout if time_limit is None else time_limit
        try:
            async with asyncio.timeout(seconds):
                client = self._ensure_client()
                async with client.pipeline(transaction=False) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    self.round_trips += 1
                    replies: list[Any] = await pipe.execute(raise_on_error=False)
        except ProbeError:
            raise
        except Exception as exc:  # every failure becomes one short reason
            raise redis_error(exc, seconds) from exc
        from redis import exceptions as rexc

        for reply in replies:
            if isinstance(reply, rexc.ConnectionError | rexc.TimeoutError):
                raise redis_error(reply, seconds) from reply
            if isinstance(reply, rexc.ResponseError) and _is_auth_reply(reply):
                raise redis_error(reply, seconds) from reply
        return replies

    async def execute(self, *command: Arg, time_limit: float | None = None) -> Any:
        """One command, one round trip; a rejected command raises ProbeError."""
        reply = (await self.pipeline([command], time_limit=time_limit))[0]
        if isinstance(reply, Exception):
            raise redis_error(reply, self.timeout if time_limit is None else time_limit)
        return reply

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _options(connection: RedisConnection) -> dict[str, Any]:
    """redis-py keyword options for a connection: timeouts, credentials, TLS, pool, no retry."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        "socket_timeout": connection.timeout,
        "socket_connect_timeout": connection.timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "max_connections": connection.max_connections,
        "decode_responses": True,
        "encoding_errors": "replace",
        "client_name": CLIENT_NAME,
        "driver_info": None,  # no CLIENT SETINFO round trips on connect
        "health_check_interval": 0,
        "protocol": 2,  # RESP2: no HELLO on connect, reply shapes that do not vary by server
    }
    if connection.username is not None:
        options["username"] = connection.username
    if connection.password is not None:
        options["password"] = reveal(connection.password)
    if urlsplit(reveal(connection.url)).scheme == "rediss":
        if connection.verify_tls:
            options["ssl_cert_reqs"] = "required"
            options["ssl_check_hostname"] = True
            if connection.ca_file:
                options["ssl_ca_certs"] = connection.ca_file
        else:
            options["ssl_cert_reqs"] = "none"
            options["ssl_check_hostname"] = False
    return options


def get_redis_client(pool: ClientPool, name: str, connection: RedisConnection) -> RedisClient:
    """The pool's client for redis connection `name`, created on first use."""
    client = pool.get(name, lambda: RedisClient(connection))
    if not isinstance(client, RedisClient):
        raise TypeError(f"connection {name!r} already has a {type(client).__name__}")
    return client


# --- failures -------------------------------------------------------------------------------

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.ECONNABORTED: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _is_auth_reply(reply: rexc.ResponseError) -> bool:
    from redis import exceptions as rexc

    text = str(reply)
    return text.startswith(("NOAUTH", "WRONGPASS")) or isinstance(reply, rexc.AuthenticationError)


def redis_error(exc: BaseException, timeout: float) -> ProbeError:
    """A short reason for a failed Redis call, judged from the innermost cause outwards."""
    chain = list(exception_chain(exc))
    detail = one_line(" <- ".join(str(c) or type(c).__name__ for c in chain))
    for cause in reversed(chain):
        found = _root_reason(cause, timeout)
        if found is not None:
            return ProbeError(found[0], hint=found[1], detail=detail)
    for cause in chain:
        found = _redis_reason(cause, timeout)
        if found is not None:
            return ProbeError(found[0], hint=found[1], detail=detail)
    return ProbeError(f"redis failed: {type(exc).__name__}", detail=detail)


def _root_reason(exc: BaseException, timeout: float) -> tuple[str, str | None] | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: certificate verify failed", "set ca_file to the CA that signed it"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "handshake failed").lower().replace("_", " ")
        return f"TLS: {reason}", None
    if isinstance(exc, socket.gaierror):
        return "DNS: cannot resolve host", "check the host in url"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return f"timeout after {format_duration(timeout)}", None
    if isinstance(exc, ConnectionRefusedError):
        return "refused", None
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection reset", None
    if isinstance(exc, OSError) and exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno], None
    return None


def _redis_reason(exc: BaseException, timeout: float) -> tuple[str, str | None] | None:
    from redis import exceptions as rexc

    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, rexc.TimeoutError):
        return f"timeout after {format_duration(timeout)}", None
    if "wrongpass" in lowered or "invalid username-password" in lowered:
        return "WRONGPASS", HINT_CREDENTIALS
    if (
        text.startswith("NOAUTH")
        or "authentication required" in lowered
        or "already authenticated" in lowered  # HELLO (RESP3) to a server that wants AUTH
    ):
        return "NOAUTH: auth required", HINT_PASSWORD
    if "without any password configured" in lowered:
        return "AUTH: server has no password", "remove the password from the connection"
    if isinstance(exc, rexc.BusyLoadingError) or text.startswith("LOADING"):
        return "LOADING", "Redis is loading its dataset into memory"
    if isinstance(exc, rexc.NoPermissionError) or text.startswith("NOPERM"):
        return "NOPERM: " + one_line(text.removeprefix("NOPERM").strip(), 60), (
            "the ACL user lacks a command or key this probe reads"
        )
    if isinstance(exc, rexc.MaxConnectionsError) or "no connection available" in lowered:
        return "connection pool exhausted", "raise max_connections"
    if isinstance(exc, rexc.ConnectionError):
        if "refused" in lowered or "connect call failed" in lowered:
            return "refused", None
        if "reset" in lowered:
            return "connection reset", None
        if "closed" in lowered:
            return "connection closed by server", None
        if "name or service not known" in lowered or "nodename nor servname" in lowered:
            return "DNS: cannot resolve host", "check the host in url"
        return "cannot connect", None
    if isinstance(exc, rexc.ResponseError):
        return one_line(text, 60), None
    return None



