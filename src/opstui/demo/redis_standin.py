"""An in-process Redis stand-in for `opstui demo` when no `redis-server` binary is installed.

It speaks RESP2 on 127.0.0.1 and implements exactly the commands opstui's Redis sources and the
demo world send (listed in COMMANDS), with Redis's own reply shapes and error words, so the
sources cannot tell it from a real server for what they ask. Anything else gets a clear
error naming the stand-in. HELLO is refused (NOPROTO) so clients stay on RESP2.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

MAX_BULK = 64 * 1024 * 1024
DATABASES = 16
MAXCLIENTS = 10_000
MAXMEMORY = 64 * 1024 * 1024
VERSION = "7.0.0"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


class Status(str):
    """A simple-string reply (+OK)."""


class Error(str):
    """An error reply (-ERR ...)."""


class ZSet(dict[bytes, float]):
    """A sorted set: member -> score; ordered by (score, member) when read."""

    def ordered(self) -> list[tuple[bytes, float]]:
        return sorted(self.items(), key=lambda item: (item[1], item[0]))


class Hash(dict[bytes, bytes]):
    """A Redis hash."""


Value: TypeAlias = "deque[bytes] | Hash | ZSet"
Reply: TypeAlias = "bytes | int | list[Reply] | Status | Error | None"


@dataclass(frozen=True)
class Spec:
    """One command: arity as Redis states it (negative = at least), flags, key positions."""

    arity: int
    flags: tuple[str, ...]
    first_key: int = 1
    last_key: int = 1
    step: int = 1


_R = ("readonly", "fast")
_W = ("write", "denyoom", "fast")
COMMANDS: dict[str, Spec] = {
    "ping": Spec(-1, ("fast",), 0, 0, 0),
    "hello": Spec(-1, ("noscript", "loading", "stale", "fast", "no_auth", "allow_busy"), 0, 0, 0),
    "client": Spec(-2, (), 0, 0, 0),
    "select": Spec(2, ("loading", "stale", "fast"), 0, 0, 0),
    "llen": Spec(2, _R),
    "lindex": Spec(3, ("readonly",)),
    "lrange": Spec(4, ("readonly",)),
    "lpush": Spec(-3, _W),
    "rpush": Spec(-3, _W),
    "lpop": Spec(-2, ("write", "fast")),
    "rpop": Spec(-2, ("write", "fast")),
    "lrem": Spec(4, ("write",)),
    "zcard": Spec(2, _R),
    "zrange": Spec(-4, ("readonly",)),
    "zadd": Spec(-4, _W),
    "zrem": Spec(-3, ("write", "fast")),
    "zremrangebyrank": Spec(4, ("write",)),
    "hget": Spec(3, _R),
    "hgetall": Spec(2, ("readonly",)),
    "hset": Spec(-4, _W),
    "hdel": Spec(-3, ("write", "fast")),
    "scan": Spec(-2, ("readonly",), 0, 0, 0),
    "type": Spec(2, _R),
    "exists": Spec(-2, _R, 1, -1, 1),
    "del": Spec(-2, ("write",), 1, -1, 1),
    "info": Spec(-1, ("loading", "stale"), 0, 0, 0),
    "config": Spec(-2, (), 0, 0, 0),
    "slowlog": Spec(-2, (), 0, 0, 0),
    "xlen": Spec(2, _R),
    "command": Spec(-1, ("loading", "stale"), 0, 0, 0),
}
"""Every command the stand-in runs, described as Redis 7's COMMAND INFO describes it."""

SUBCOMMANDS: dict[str, Spec] = {
    "client|setname": Spec(3, ("noscript", "loading", "stale"), 0, 0, 0),
    "client|setinfo": Spec(4, ("noscript", "loading", "stale"), 0, 0, 0),
    "config|get": Spec(-3, ("admin", "noscript", "loading", "stale"), 0, 0, 0),
    "slowlog|len": Spec(2, ("admin", "loading", "stale"), 0, 0, 0),
    "command|info": Spec(-2, ("loading", "stale"), 0, 0, 0),
}
"""The container commands' subcommands that the stand-in runs (their flags live here)."""


class CommandError(Exception):
    """A command the stand-in rejects: sent back as an error reply, the connection stays."""


def glob_regex(pattern: bytes) -> re.Pattern[bytes]:
    """Redis's glob (`*`, `?`, `[a-c]`, `[^x]`, backslash escapes) as a regex."""
    out = b""
    i = 0
    while i < len(pattern):
        c = pattern[i : i + 1]
        if c == b"\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1 : i + 2])
            i += 2
            continue
        if c == b"*":
            out += b".*"
        elif c == b"?":
            out += b"."
        elif c == b"[":
            end = pattern.find(b"]", i + 1)
            if end == -1:
                out += re.escape(c)
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith(b"^")
                if negate:
                    body = body[1:]
                out += b"[" + (b"^" if negate else b"") + body.replace(b"\\", b"\\\\") + b"]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + b"\\Z", re.DOTALL)


def _int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None


def _float(raw: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise CommandError("ERR value is not a valid float") from None
    if value != value:
        raise CommandError("ERR value is not a valid float")
    return value


def _score(value: float) -> bytes:
    return repr(value).encode() if value != int(value) else str(int(value)).encode()


def _span(start: int, stop: int, length: int) -> tuple[int, int]:
    """Redis's inclusive, negative-friendly range as a Python slice [a, b)."""
    if start < 0:
        start = max(length + start, 0)
    if stop < 0:
        stop = length + stop
    stop = min(stop, length - 1)
    if start > stop or start >= length:
        return 0, 0
    return start, stop + 1


class Store:
    """The keyspace: 16 databases of lists, hashes and sorted sets."""

    def __init__(self) -> None:
        self.dbs: list[dict[bytes, Value]] = [{} for _ in range(DATABASES)]

    def used_memory(self) -> int:
        """A rough byte count of the data held (Redis's own figure also counts overhead)."""
        total = 900_000
        for db in self.dbs:
            for key, value in db.items():
                total += 64 + len(key)
                if isinstance(value, deque):
                    total += sum(16 + len(item) for item in value)
                else:
                    total += sum(24 + len(k) + 8 for k in value)
        return total


class Session:
    """One client connection: its selected database."""

    def __init__(self) -> None:
        self.db = 0
        self.name = b""


class RedisStandin:
    """The stand-in server. `await start()` binds 127.0.0.1 (port 0 = any free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.store = Store()
        self.run_id = secrets.token_hex(20)
        self.started = time.monotonic()
        self.commands_processed = 0
        self.connections_received = 0
        self.rejected_connections = 0
        self._clients: set[asyncio.StreamWriter] = set()
        self._ops: deque[float] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: dict[str, Callable[[Session, list[bytes]], Reply]] = {
            name: getattr(self, f"_cmd_{name}") for name in COMMANDS
        }

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_BULK
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._clients):
            writer.close()
        await server.wait_closed()

    # --- protocol -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_received += 1
        if len(self._clients) >= MAXCLIENTS:
            self.rejected_connections += 1
            writer.write(b"-ERR max number of clients reached\r\n")
            writer.close()
            return
        self._clients.add(writer)
        session = Session()
        try:
            while True:
                try:
                    args = await _read_command(reader)
                except CommandError as exc:
                    writer.write(_encode(Error(str(exc))))
                    await writer.drain()
                    return
                if args is None:
                    return
                if not args:
                    continue
                writer.write(_encode(self.dispatch(session, args)))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    def dispatch(self, session: Session, args: list[bytes]) -> Reply:
        """Run one command; every rejection becomes an error reply."""
        name = args[0].decode("utf-8", "replace").lower()
        self.commands_processed += 1
        now = time.monotonic()
        self._ops.append(now)
        while self._ops and self._ops[0] < now - 1.0:
            self._ops.popleft()
        spec = COMMANDS.get(name)
        if spec is None:
            shown = args[0].decode("utf-8", "replace")[:40]
            return Error(
                f"ERR unknown command '{shown}' (the opstui demo's Redis stand-in implements "
                "only what opstui uses; install redis-server for the rest)"
            )
        if (spec.arity > 0 and len(args) != spec.arity) or len(args) < -spec.arity:
            return Error(f"ERR wrong number of arguments for '{name}' command")
        try:
            return self._handlers[name](session, args[1:])
        except CommandError as exc:
            return Error(str(exc))

    # --- typed access ---------------------------------------------------------------------

    def _db(self, session: Session) -> dict[bytes, Value]:
        return self.store.dbs[session.db]

    def _get(self, session: Session, key: bytes, kind: type) -> Value | None:
        value = self._db(session).get(key)
        if value is not None and not isinstance(value, kind):
            raise CommandError(WRONGTYPE)
        return value

    def _list(self, session: Session, key: bytes, create: bool = False) -> deque[bytes] | None:
        value = self._get(session, key, deque)
        if value is None and create:
            value = deque()
            self._db(session)[key] = value
        return value  # type: ignore[return-value]

    def _zset(self, session: Session, key: bytes, create: bool = False) -> ZSet | None:
        value = self._get(session, key, ZSet)
        if value is None and create:
            value = ZSet()
            self._db(session)[key] = value
        return value  # type: ignore[return-value]

    def _hash(self, session: Session, key: bytes, create: bool = False) -> Hash | None:
        value = self._get(session, key, Hash)
        if value is None and create:
            value = Hash()
            self._db(session)[key] = value
        return value  # type: ignore[return-value]

    def _drop_if_empty(self, session: Session, key: bytes) -> None:
        value = self._db(session).get(key)
        if value is not None and not value:
            del self._db(session)[key]

    # --- connection -----------------------------------------------------------------------

    def _cmd_ping(self, session: Session, args: list[bytes]) -> Reply:
        if len(args) > 1:
            raise CommandError("ERR wrong number of arguments for 'ping' command")
        return args[0] if args else Status("PONG")

    def _cmd_hello(self, session: Session, args: list[bytes]) -> Reply:
        return Error("NOPROTO this Redis stand-in speaks RESP2 only")

    def _cmd_client(self, session: Session, args: list[bytes]) -> Reply:
        sub = args[0].lower()
        if sub == b"setname" and len(args) == 2:
            session.name = args[1]
            return Status("OK")
        if sub == b"setinfo" and len(args) == 3:
            return Status("OK")
        raise CommandError(
            f"ERR CLIENT {args[0].decode('utf-8', 'replace').upper()} is not implemented by "
            "the Redis stand-in (SETNAME and SETINFO are)"
        )

    def _cmd_select(self, session: Session, args: list[bytes]) -> Reply:
        db = _int(args[0])
        if not 0 <= db < DATABASES:
            raise CommandError("ERR DB index is out of range")
        session.db = db
        return Status("OK")

    # --- lists ----------------------------------------------------------------------------

    def _cmd_llen(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0])
        return len(items) if items is not None else 0

    def _cmd_lindex(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0])
        index = _int(args[1])
        if items is None or not -len(items) <= index < len(items):
            return None
        return items[index]

    def _cmd_lrange(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0])
        if items is None:
            return []
        a, b = _span(_int(args[1]), _int(args[2]), len(items))
        out: list[Reply] = [items[i] for i in range(a, b)]
        return out

    def _cmd_lpush(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0], create=True)
        assert items is not None
        items.extendleft(args[1:])
        return len(items)

    def _cmd_rpush(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0], create=True)
        assert items is not None
        items.extend(args[1:])
        return len(items)

    def _pop(self, session: Session, args: list[bytes], left: bool) -> Reply:
        if len(args) > 2:
            raise CommandError(f"ERR wrong number of arguments for '{'lpop' if left else 'rpop'}'")
        items = self._list(session, args[0])
        count = _int(args[1]) if len(args) == 2 else None
        if count is not None and count < 0:
            raise CommandError("ERR value is out of range, must be positive")
        if items is None:
            return None
        popped: list[Reply] = []
        for _ in range(1 if count is None else min(count, len(items))):
            popped.append(items.popleft() if left else items.pop())
        self._drop_if_empty(session, args[0])
        if count is None:
            return popped[0]
        return popped

    def _cmd_lpop(self, session: Session, args: list[bytes]) -> Reply:
        return self._pop(session, args, left=True)

    def _cmd_rpop(self, session: Session, args: list[bytes]) -> Reply:
        return self._pop(session, args, left=False)

    def _cmd_lrem(self, session: Session, args: list[bytes]) -> Reply:
        items = self._list(session, args[0])
        count, element = _int(args[1]), args[2]
        if items is None:
            return 0
        limit = abs(count) or len(items)
        order = list(items) if count >= 0 else list(reversed(items))
        kept: list[bytes] = []
        removed = 0
        for item in order:
            if item == element and removed < limit:
                removed += 1
            else:
                kept.append(item)
        if count < 0:
            kept.reverse()
        items.clear()
        items.extend(kept)
        self._drop_if_empty(session, args[0])
        return removed

    # --- sorted sets ----------------------------------------------------------------------

    def _cmd_zcard(self, session: Session, args: list[bytes]) -> Reply:
        members = self._zset(session, args[0])
        return len(members) if members is not None else 0

    def _cmd_zadd(self, session: Session, args: list[bytes]) -> Reply:
        pairs = args[1:]
        if len(pairs) % 2:
            raise CommandError("ERR syntax error")
        scores = [(_float(pairs[i]), pairs[i + 1]) for i in range(0, len(pairs), 2)]
        members = self._zset(session, args[0], create=True)
        assert members is not None
        added = 0
        for score, member in scores:
            added += member not in members
            members[member] = score
        return added

    def _cmd_zrem(self, session: Session, args: list[bytes]) -> Reply:
        members = self._zset(session, args[0])
        if members is None:
            return 0
        removed = sum(members.pop(member, None) is not None for member in set(args[1:]))
        self._drop_if_empty(session, args[0])
        return removed

    def _cmd_zrange(self, session: Session, args: list[bytes]) -> Reply:
        options = [a.upper() for a in args[3:]]
        if options not in ([], [b"WITHSCORES"]):
            raise CommandError("ERR syntax error (the stand-in's ZRANGE takes only WITHSCORES)")
        members = self._zset(session, args[0])
        if members is None:
            return []
        ordered = members.ordered()
        a, b = _span(_int(args[1]), _int(args[2]), len(ordered))
        out: list[Reply] = []
        for member, score in ordered[a:b]:
            out.append(member)
            if options:
                out.append(_score(score))
        return out

    def _cmd_zremrangebyrank(self, session: Session, args: list[bytes]) -> Reply:
        members = self._zset(session, args[0])
        if members is None:
            return 0
        ordered = members.ordered()
        a, b = _span(_int(args[1]), _int(args[2]), len(ordered))
        for member, _ in ordered[a:b]:
            del members[member]
        self._drop_if_empty(session, args[0])
        return b - a

    # --- hashes ---------------------------------------------------------------------------

    def _cmd_hget(self, session: Session, args: list[bytes]) -> Reply:
        fields = self._hash(session, args[0])
        return fields.get(args[1]) if fields is not None else None

    def _cmd_hgetall(self, session: Session, args: list[bytes]) -> Reply:
        fields = self._hash(session, args[0])
        out: list[Reply] = []
        for name, value in (fields or {}).items():
            out.extend((name, value))
        return out

    def _cmd_hset(self, session: Session, args: list[bytes]) -> Reply:
        pairs = args[1:]
        if len(pairs) % 2:
            raise CommandError("ERR wrong number of arguments for 'hset' command")
        fields = self._hash(session, args[0], create=True)
        assert fields is not None
        added = 0
        for i in range(0, len(pairs), 2):
            added += pairs[i] not in fields
            fields[pairs[i]] = pairs[i + 1]
        return added

    def _cmd_hdel(self, session: Session, args: list[bytes]) -> Reply:
        fields = self._hash(session, args[0], create=False)
        if fields is None:
            return 0
        removed = 0
        for name in args[1:]:
            if name in fields:
                del fields[name]
                removed += 1
        self._drop_if_empty(session, args[0])
        return removed

    # --- keyspace -------------------------------------------------------------------------

    def _cmd_scan(self, session: Session, args: list[bytes]) -> Reply:
        cursor = _int(args[0])
        match: re.Pattern[bytes] | None = None
        count = 10
        rest = args[1:]
        while rest:
            if len(rest) < 2:
                raise CommandError("ERR syntax error")
            option, value, rest = rest[0].upper(), rest[1], rest[2:]
            if option == b"MATCH":
                match = glob_regex(value)
            elif option == b"COUNT":
                count = _int(value)
                if count < 1:
                    raise CommandError("ERR syntax error")
            else:
                raise CommandError("ERR syntax error (the stand-in's SCAN takes MATCH and COUNT)")
        keys = sorted(self._db(session))
        batch = keys[cursor : cursor + count]
        following = cursor + count if cursor + count < len(keys) else 0
        found: list[Reply] = [k for k in batch if match is None or match.match(k)]
        return [str(following).encode(), found]

    def _cmd_type(self, session: Session, args: list[bytes]) -> Reply:
        value = self._db(session).get(args[0])
        if value is None:
            return Status("none")
        if isinstance(value, deque):
            return Status("list")
        return Status("zset" if isinstance(value, ZSet) else "hash")

    def _cmd_exists(self, session: Session, args: list[bytes]) -> Reply:
        return sum(key in self._db(session) for key in args)

    def _cmd_del(self, session: Session, args: list[bytes]) -> Reply:
        db = self._db(session)
        return sum(db.pop(key, None) is not None for key in set(args))

    def _cmd_xlen(self, session: Session, args: list[bytes]) -> Reply:
        if args[0] in self._db(session):
            raise CommandError(WRONGTYPE)
        return 0

    # --- server ---------------------------------------------------------------------------

    def _cmd_info(self, session: Session, args: list[bytes]) -> Reply:
        wanted = {a.decode("utf-8", "replace").lower() for a in args}
        everything = not wanted or wanted & {"all", "everything", "default"}
        sections = {
            "server": [
                ("redis_version", VERSION),
                ("redis_mode", "standalone"),
                ("server_name", "opstui-demo-standin"),
                ("run_id", self.run_id),
                ("tcp_port", str(self.port)),
                ("uptime_in_seconds", str(int(time.monotonic() - self.started))),
            ],
            "clients": [
                ("connected_clients", str(len(self._clients))),
                ("maxclients", str(MAXCLIENTS)),
                ("blocked_clients", "0"),
            ],
            "memory": [
                ("used_memory", str(self.store.used_memory())),
                ("maxmemory", str(MAXMEMORY)),
                ("maxmemory_policy", "noeviction"),
            ],
            "stats": [
                ("total_connections_received", str(self.connections_received)),
                ("total_commands_processed", str(self.commands_processed)),
                ("instantaneous_ops_per_sec", str(len(self._ops))),
                ("rejected_connections", str(self.rejected_connections)),
                ("evicted_keys", "0"),
            ],
        }
        lines: list[str] = []
        for name, pairs in sections.items():
            if everything or name in wanted:
                lines.append(f"# {name.capitalize()}")
                lines.extend(f"{k}:{v}" for k, v in pairs)
                lines.append("")
        return "\r\n".join(lines).encode()

    def _cmd_config(self, session: Session, args: list[bytes]) -> Reply:
        if args[0].lower() != b"get" or len(args) < 2:
            raise CommandError("ERR the Redis stand-in implements only CONFIG GET")
        known = {b"maxclients": str(MAXCLIENTS).encode(), b"maxmemory": str(MAXMEMORY).encode()}
        out: list[Reply] = []
        for pattern in args[1:]:
            regex = glob_regex(pattern.lower())
            for name, value in known.items():
                if regex.match(name):
                    out.extend((name, value))
        return out

    def _cmd_slowlog(self, session: Session, args: list[bytes]) -> Reply:
        if args[0].lower() == b"len" and len(args) == 1:
            return 0
        raise CommandError("ERR the Redis stand-in implements only SLOWLOG LEN")

    def _cmd_command(self, session: Session, args: list[bytes]) -> Reply:
        if not args or args[0].lower() != b"info":
            raise CommandError("ERR the Redis stand-in implements only COMMAND INFO")
        out: list[Reply] = []
        for raw in args[1:]:
            name = raw.decode("utf-8", "replace").lower()
            spec = COMMANDS.get(name) or SUBCOMMANDS.get(name)
            if spec is None:
                out.append(None)
                continue
            flags: list[Reply] = [Status(flag) for flag in spec.flags]
            out.append(
                [name.encode(), spec.arity, flags, spec.first_key, spec.last_key, spec.step]
            )
        return out


async def _read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One command as its arguments: a RESP array of bulk strings, or an inline line."""
    line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\r\n") and not line.endswith(b"\n"):
        return None
    if not line.startswith(b"*"):
        return line.split()
    count = _header(line, b"*")
    args: list[bytes] = []
    for _ in range(count):
        size = _header(await reader.readline(), b"$")
        data = await reader.readexactly(size + 2)
        args.append(data[:-2])
    return args


def _header(line: bytes, marker: bytes) -> int:
    if not line.startswith(marker):
        raise CommandError(f"ERR Protocol error: expected '{marker.decode()}'")
    try:
        size = int(line[1:].strip())
    except ValueError:
        raise CommandError("ERR Protocol error: invalid length") from None
    if not 0 <= size <= MAX_BULK:
        raise CommandError("ERR Protocol error: invalid length")
    return size


def _encode(reply: Reply) -> bytes:
    if isinstance(reply, Error):
        return b"-" + reply.encode() + b"\r\n"
    if isinstance(reply, Status):
        return b"+" + reply.encode() + b"\r\n"
    if reply is None:
        return b"$-1\r\n"
    if isinstance(reply, bool | int):
        return b":%d\r\n" % int(reply)
    if isinstance(reply, bytes):
        return b"$%d\r\n%s\r\n" % (len(reply), reply)
    return b"*%d\r\n" % len(reply) + b"".join(_encode(item) for item in reply)
