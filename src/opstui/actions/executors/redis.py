"""The `redis` step kind: one argv command, classified by the server's own COMMAND INFO.

A config may claim `readonly: true`; the server's flags decide (DESIGN.md section 6 point 1):
a command is mutating when its flags lack `readonly`, or carry `write`/`admin`, or its ACL
categories hold `@write`/`@admin`/`@dangerous`; some names are mutating whatever the server
says (scripts, PUBLISH, CONFIG, CLIENT KILL, FLUSH*, SHUTDOWN, DEBUG...). A few introspection
commands that Redis 7 files under `@dangerous` only because they reveal server state (INFO,
PING, SLOWLOG GET...) are read-only, but only while the server also says they do not write.

Replies are read raw (the command name is sent as bytes, which redis-py's reply callbacks do
not match), so the output pane shows what redis-cli would, not redis-py's parsed objects.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

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
from opstui.config.kinds.redis import RedisConnection
from opstui.config.models import Config
from opstui.config.types import Secret, format_duration, redact, reveal
from opstui.sources.base import ProbeError
from opstui.sources.redis_client import Command, RedisClient, get_redis_client

ALWAYS_MUTATING: frozenset[str] = frozenset(
    {
        "eval",
        "evalsha",
        "fcall",
        "publish",
        "spublish",
        "config",
        "client",
        "memory",
        "slowlog",
        "latency",
        "object",
        "flushdb",
        "flushall",
        "shutdown",
        "debug",
        "script",
        "function",
        "module",
        "acl",
        "replicaof",
        "slaveof",
        "failover",
        "migrate",
        "swapdb",
        "monitor",
        "save",
        "bgsave",
        "bgrewriteaof",
        "multi",
        "exec",
        "select",
    }
)
"""Mutating whatever COMMAND INFO says: a container name covers all its subcommands (CONFIG
SET/REWRITE/RESETSTAT, CLIENT KILL/PAUSE/NO-EVICT, SLOWLOG RESET, LATENCY RESET, MEMORY PURGE,
OBJECT FREQ...) except the reviewed reads below. Names are the server's own: a command renamed
in redis.conf still reports its original name in COMMAND INFO, so `rename-command DEBUG INFO`
is judged as DEBUG."""

READS_SERVER_STATE: frozenset[str] = frozenset(
    {
        "info",
        "ping",
        "echo",
        "time",
        "command|count",
        "command|docs",
        "command|info",
        "command|getkeys",
        "command|list",
        "config|get",
        "slowlog|get",
        "slowlog|len",
        "client|list",
        "client|info",
        "client|getname",
        "client|id",
        "latency|latest",
        "latency|history",
        "memory|stats",
        "memory|usage",
        "object|encoding",
        "object|freq",
        "object|help",
        "object|idletime",
        "object|refcount",
    }
)
"""The short reviewed list (DESIGN.md section 6 point 1): introspection that Redis 7 flags
admin or @dangerous (it reveals server state) or leaves without `readonly`, yet changes
nothing. Read-only, but only while the server also lists neither `write` nor `@write` for it.
CONFIG GET reveals requirepass/masterauth: its output is masked (mask_secrets)."""

MUTATING_FLAGS = ("write", "admin")
MUTATING_CATEGORIES = ("@write", "@admin", "@dangerous")
SENSITIVE_CONFIG = frozenset(
    {"requirepass", "masterauth", "primaryauth", "tls-key-file-pass", "tls-client-key-file-pass"}
)
"""CONFIG parameters whose values neither a preview nor CONFIG GET's output ever shows."""
SENSITIVE_WORDS = ("pass", "auth", "secret")
"""A parameter whose name holds one of these is masked too (a later Redis's new password)."""
PREVIEW_KEYS = 20
"""Keys a preview describes one by one; more are counted."""
SIZE_OF_TYPE: dict[str, tuple[str, str]] = {
    "string": ("STRLEN", "bytes"),
    "list": ("LLEN", "items"),
    "set": ("SCARD", "members"),
    "zset": ("ZCARD", "members"),
    "hash": ("HLEN", "fields"),
    "stream": ("XLEN", "entries"),
}



class CommandInfoUnavailable(Exception):
    """COMMAND INFO cannot be asked (renamed, disabled, denied, or the server unreachable)."""

    def __init__(self, reason: str, *, cacheable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cacheable = cacheable


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """One command as COMMAND INFO describes it (Redis 7 adds categories and subcommands)."""

    name: str
    """Lower case, `container|sub` for a subcommand."""
    arity: int
    flags: frozenset[str]
    first_key: int
    last_key: int
    key_step: int
    categories: frozenset[str] = frozenset()
    subcommands: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entry: Sequence[Any]) -> CommandInfo:
        def texts(value: Any) -> frozenset[str]:
            items = value if isinstance(value, list) else []
            return frozenset(str(item).lower() for item in items if not isinstance(item, list))

        subcommands = entry[9] if len(entry) > 9 and isinstance(entry[9], list) else []
        return cls(
            name=str(entry[0]).lower(),
            arity=int(entry[1]),
            flags=texts(entry[2]),
            first_key=int(entry[3]),
            last_key=int(entry[4]),
            key_step=int(entry[5]),
            categories=texts(entry[6]) if len(entry) > 6 else frozenset(),
            subcommands=frozenset(
                str(sub[0]).lower() for sub in subcommands if isinstance(sub, list) and sub
            ),
        )

    def keys_of(self, argv: Sequence[str]) -> list[str]:
        """Keys by the legacy first/last/step positions (when COMMAND GETKEYS is unavailable)."""
        if self.first_key <= 0 or self.key_step <= 0:
            return []
        last = len(argv) + self.last_key if self.last_key < 0 else self.last_key
        return [str(a) for a in argv[self.first_key : last + 1 : self.key_step]]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A command's name as shown ("CONFIG SET") and its server description (None: unknown)."""

    shown: str
    info: CommandInfo | None
    container: CommandInfo | None = None


def judge(resolved: Resolved, claim: bool | None) -> Verdict:
    """Read-only or mutating from the server's description, plus the config's claim."""
    shown, info = resolved.shown, resolved.info
    if info is None:
        return Verdict(Classification.MUTATING, f"Redis does not know {shown}")
    names = {info.name, info.name.split("|", 1)[0]}
    writes = "write" in info.flags or "@write" in info.categories
    why: str | None = None
    if info.name in READS_SERVER_STATE and not writes:
        why = None
    elif names & ALWAYS_MUTATING:
        why = f"{shown} is always treated as mutating"
    else:
        if "write" in info.flags:
            why = f"Redis flags {shown} as write"
        elif "admin" in info.flags or "@admin" in info.categories:
            why = f"Redis flags {shown} as admin"
        elif "@dangerous" in info.categories:
            why = f"Redis files {shown} under @dangerous"
        elif "@write" in info.categories:
            why = f"Redis files {shown} under @write"
        elif "readonly" not in info.flags:
            why = f"Redis does not flag {shown} as readonly"
    if why is None:
        if claim is False:
            return Verdict(Classification.MUTATING, "declared readonly: false")
        flags = ", ".join(sorted(info.flags)) or "none"
        return Verdict(Classification.READ_ONLY, f"Redis flags {shown}: {flags}")
    overruled = None
    if claim is True:
        overruled = f"config says readonly, {why}"
    return Verdict(Classification.MUTATING, why, overruled=overruled)


def unavailable_verdict(reason: str, claim: bool | None) -> Verdict:
    why = f"COMMAND INFO unavailable ({reason}): assumed mutating"
    overruled = f"config says readonly, but {why}" if claim is True else None
    return Verdict(Classification.MUTATING, why, overruled=overruled)


class RedisExecutor(Executor):
    """Runs `rendered["command"]` (an argv list) on the step's redis connection."""

    kind: ClassVar[str] = "redis"

    def __init__(self) -> None:
        self._infos: dict[tuple[str, str], CommandInfo | None] = {}
        self._unavailable: dict[str, str] = {}

    # --- classification -------------------------------------------------------------------

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        claim = configured_claim(step, ctx.config)
        try:
            argv = command_of(step)
            client = client_of(step, ctx)
            resolved = await self.resolve(step.connection or "", client, argv)
        except StepProblem as exc:
            return Verdict(Classification.MUTATING, f"cannot classify: {exc}")
        except CommandInfoUnavailable as exc:
            if not exc.cacheable:  # the server may answer later: the runner must not cache
                raise
            return unavailable_verdict(exc.reason, claim)
        return judge(resolved, claim)

    async def resolve(self, connection: str, client: RedisClient, argv: Sequence[str]) -> Resolved:
        """The command (or `container|sub`) as COMMAND INFO describes it, cached per connection."""
        name = str(argv[0]).lower()
        info = await self._info(connection, client, name)
        if info is None or not info.subcommands or len(argv) < 2:
            return Resolved(name.upper(), info)
        sub = f"{name}|{str(argv[1]).lower()}"
        shown = f"{name.upper()} {str(argv[1]).upper()}"
        if sub not in info.subcommands:
            return Resolved(shown, None, container=info)
        return Resolved(shown, await self._info(connection, client, sub), container=info)

    async def _info(self, connection: str, client: RedisClient, name: str) -> CommandInfo | None:
        cached = self._unavailable.get(connection)
        if cached is not None:
            raise CommandInfoUnavailable(cached, cacheable=True)
        key = (connection, name)
        if key in self._infos:
            return self._infos[key]
        try:
            reply = (await client.pipeline([raw("COMMAND", "INFO", name)]))[0]
        except ProbeError as exc:  # unreachable: ask again next time
            raise CommandInfoUnavailable(exc.reason, cacheable=False) from exc
        if isinstance(reply, Exception):  # renamed, disabled, NOPERM: the server's answer
            reason = one_line(str(reply), 80)
            self._unavailable[connection] = reason
            raise CommandInfoUnavailable(reason, cacheable=True)
        entry = reply[0] if isinstance(reply, list) and reply else None
        info = CommandInfo.parse(entry) if isinstance(entry, list) and len(entry) >= 6 else None
        self._infos[key] = info
        return info

    # --- preview --------------------------------------------------------------------------

    async def preview(self, step: PreparedStep, ctx: ExecutionContext) -> Preview | None:
        try:
            argv = command_of(step)
            client = client_of(step, ctx)
            try:
                resolved: Resolved | None = await self.resolve(step.connection or "", client, argv)
            except CommandInfoUnavailable:
                resolved = None
            if resolved is not None and not judge(resolved, None).mutating:
                return None  # a read changes nothing: nothing to preview
            lines = await self._preview_lines(client, argv, resolved, db_of(client.connection))
        except StepProblem as exc:
            return Preview((), error=str(exc))
        except ProbeError as exc:
            return Preview((), error=f"preview failed: {exc.reason}")
        return Preview(tuple(lines)) if lines else None

    async def _preview_lines(
        self, client: RedisClient, argv: Sequence[str], resolved: Resolved | None, db: int
    ) -> list[str]:
        name = str(argv[0]).lower()
        sub = str(argv[1]).lower() if len(argv) > 1 else ""
        if name == "config" and sub == "set":
            return await preview_config_set(client, argv[2:])
        if name == "client" and sub == "kill":
            return await preview_client_kill(client, argv[2:])
        if name == "flushdb":
            size = await client.execute(*raw("DBSIZE"))
            return [f"FLUSHDB removes {int(size):,} keys of db {db}"]
        if name == "flushall":
            return [await preview_flushall(client)]
        if name in ("publish", "spublish") and len(argv) >= 2:
            counts = await client.execute(*raw("PUBSUB", "NUMSUB", argv[1]))
            n = int(counts[1]) if isinstance(counts, list) and len(counts) > 1 else 0
            return [f"{name.upper()} reaches {n:,} subscribers of {argv[1]}"]
        keys = await keys_of(client, argv, resolved)
        if not keys:
            return []
        shown = resolved.shown if resolved is not None else name.upper()
        return await describe_keys(client, shown, keys)

    # --- execution ------------------------------------------------------------------------

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
        try:
            argv = command_of(step)
            client = client_of(step, ctx)
            try:
                resolved = await self.resolve(step.connection or "", client, argv)
            except CommandInfoUnavailable as exc:
                if read_only:  # the gate could not have called it read-only: do not guess
                    raise StepProblem(f"COMMAND INFO unavailable ({exc.reason})") from exc
            else:
                if resolved.info is None:
                    raise StepProblem(f"unknown command {resolved.shown}")
                if read_only and judge(resolved, None).mutating:
                    raise StepProblem(f"refused: {resolved.shown} is not read-only")
            send = client.pipeline([raw(*argv)], time_limit=step.timeout)
            done = await until_cancelled(send, progress)
        except StepProblem as exc:
            return Outcome(False, str(exc), error=str(exc), duration=ctx.clock.monotonic() - start)
        except ProbeError as exc:
            return Outcome(
                False, exc.reason, error=exc.reason, duration=ctx.clock.monotonic() - start
            )
        duration = ctx.clock.monotonic() - start
        if done is None:
            return Outcome(False, "cancelled", cancelled=True, duration=duration)
        reply = mask_secrets(argv, done[0])
        text = format_reply(reply)
        output(text)
        if isinstance(reply, Exception):
            error = one_line(str(reply))
            return Outcome(False, f"(error) {error}", output=text, error=error, duration=duration)
        return Outcome(True, summarize(reply, text), output=text, duration=duration, data=reply)

    # --- what the confirm modal shows -----------------------------------------------------

    @staticmethod
    def equivalent(rendered: Mapping[str, Any], connection: RedisConnection) -> str:
        """`redis-cli -h host -p port [-n db] CMD args...` for a rendered request."""
        return redis_cli(connection, [shown_arg(a) for a in argv_of(rendered)])


# --- helpers ----------------------------------------------------------------------------------


def mask_secrets(argv: Sequence[Any], reply: Any) -> Any:
    """CONFIG GET's reply with the values of password-like parameters as ***, whatever the
    pattern asked (`requirepass`, `*`, `*pass*`, `*auth`), as a list or a RESP3 map. Any
    `<command> GET ...` is treated so, whatever the first word: CONFIG may be renamed."""
    if len(argv) < 2 or str(argv[1]).lower() != "get":
        return reply
    if isinstance(reply, Mapping):
        return {k: "***" if _sensitive(k) else v for k, v in reply.items()}
    if isinstance(reply, list | tuple):
        masked = list(reply)
        for index in range(0, len(masked) - 1, 2):
            if _sensitive(masked[index]):
                masked[index + 1] = "***"
        return masked
    return reply


def _sensitive(name: Any) -> bool:
    text = (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)).lower()
    return text in SENSITIVE_CONFIG or any(word in text for word in SENSITIVE_WORDS)


def raw(*argv: Any) -> Command:
    """A command whose name goes as bytes: redis-py then applies no reply callback to it."""
    name = argv[0]
    head = name.encode() if isinstance(name, str) else name
    return cast(Command, (head, *(reveal(a) if isinstance(a, Secret) else a for a in argv[1:])))


def shown_arg(arg: Any) -> str:
    return redact(arg) if isinstance(arg, Secret) else str(arg)


def argv_of(rendered: Mapping[str, Any]) -> list[Any]:
    """The rendered argv: under "command" (or "argv", the runner's older spelling)."""
    command = rendered.get("command", rendered.get("argv"))
    if not isinstance(command, list | tuple):
        return []
    return [a if isinstance(a, Secret) else str(a) for a in command]


def command_of(step: PreparedStep) -> list[Any]:
    """The argv (str items, Secrets kept wrapped until `raw` sends them)."""
    command = argv_of(step.rendered)
    if not command or not str(command[0]).strip():
        raise StepProblem("the step has no command")
    return command


def client_of(step: PreparedStep, ctx: ExecutionContext) -> RedisClient:
    name, connection = connection_of(step, ctx, RedisConnection, "redis")
    return get_redis_client(ctx.pool, name, connection)


def configured_claim(step: PreparedStep, config: Config) -> bool | None:
    """The step's `readonly:` claim: from the rendered request, else from the config."""
    claim = step.rendered.get("readonly")
    if isinstance(claim, bool):
        return claim
    found = configured_step(step, config)
    value = getattr(found, "readonly", None)
    return value if isinstance(value, bool) else None


def configured_step(step: PreparedStep, config: Config) -> Any:
    """The step's config entry (an action, or a diagnose step by index), if it has one."""
    if step.runbook_id is None:
        return None
    try:
        runbook = config.runbook(step.runbook_id)
    except KeyError:
        return None
    if step.action_id is not None:
        return next((a for a in runbook.actions if a.id == step.action_id), None)
    if step.step_index is not None and 0 <= step.step_index < len(runbook.diagnose):
        return runbook.diagnose[step.step_index]
    return None


def db_of(connection: RedisConnection) -> int:
    path = urlsplit(redact(connection.url)).path.strip("/")
    return int(path) if path.isdigit() else 0


def redis_cli(connection: RedisConnection, argv: Sequence[str]) -> str:
    """`redis-cli -h host -p port -n db CMD args...`, quoted; a password only as --askpass."""
    parts = urlsplit(redact(connection.url))
    words = ["redis-cli", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    db = db_of(connection)
    if db:
        words += ["-n", str(db)]
    user = connection.username if connection.username is not None else parts.username
    if user:
        words += ["--user", str(user)]
    if connection.password is not None or parts.password:
        words.append("--askpass")
    if parts.scheme == "rediss":
        words.append("--tls")
    return shlex.join([*words, *argv])


async def keys_of(client: RedisClient, argv: Sequence[str], resolved: Resolved | None) -> list[str]:
    """The command's keys as the server finds them (COMMAND GETKEYS), else by position."""
    reply = (await client.pipeline([raw("COMMAND", "GETKEYS", *argv)]))[0]
    if isinstance(reply, list):
        return [str(k) for k in reply]
    if resolved is not None and resolved.info is not None:
        return resolved.info.keys_of(argv)
    return []


async def describe_keys(client: RedisClient, shown: str, keys: Sequence[str]) -> list[str]:
    """`DEL bull:q:failed: zset, 1,204 members, no TTL` for each key (up to PREVIEW_KEYS)."""
    first = list(dict.fromkeys(keys))[:PREVIEW_KEYS]
    meta = await client.pipeline([raw(c, k) for k in first for c in ("TYPE", "PTTL")])
    types = [str(meta[2 * i]) for i in range(len(first))]
    ttls = [meta[2 * i + 1] for i in range(len(first))]
    sized = [(k, t) for k, t in zip(first, types, strict=True) if t in SIZE_OF_TYPE]
    sizes = await client.pipeline([raw(SIZE_OF_TYPE[t][0], k) for k, t in sized]) if sized else []
    size_of = {k: s for (k, _), s in zip(sized, sizes, strict=True)}
    lines = []
    for key, kind, ttl in zip(first, types, ttls, strict=True):
        if kind == "none":
            lines.append(f"{shown} {key}: no such key")
            continue
        parts = [kind]
        size = size_of.get(key)
        if isinstance(size, int):
            parts.append(f"{size:,} {SIZE_OF_TYPE[kind][1]}")
        parts.append(ttl_words(ttl))
        lines.append(f"{shown} {key}: {', '.join(parts)}")
    more = len(set(keys)) - len(first)
    if more > 0:
        lines.append(f"... and {more:,} more keys")
    return lines


def ttl_words(pttl: Any) -> str:
    if not isinstance(pttl, int) or pttl < 0:
        return "no TTL"
    return f"TTL {format_duration(pttl / 1000)}"


async def preview_config_set(client: RedisClient, pairs: Sequence[str]) -> list[str]:
    """`maxclients 10000 -> 20000` for each parameter set."""
    names = [str(n) for n in pairs[0::2]]
    values = [str(v) for v in pairs[1::2]]
    if not names:
        return []
    replies = await client.pipeline([raw("CONFIG", "GET", n) for n in names])
    lines = []
    for name, new, reply in zip(names, values, replies, strict=False):
        if name.lower() in SENSITIVE_CONFIG:
            lines.append(f"{name} *** -> ***")
            continue
        current = "?"
        if isinstance(reply, list) and len(reply) >= 2:
            current = str(reply[1])
        elif isinstance(reply, Exception):
            current = f"(unknown: {one_line(str(reply), 60)})"
        lines.append(f"{name} {current} -> {new}")
    return lines


async def preview_client_kill(client: RedisClient, filters: Sequence[str]) -> list[str]:
    """How many connected clients CLIENT KILL's filters match (SKIPME yes excludes us)."""
    own, listing = await client.pipeline([raw("CLIENT", "ID"), raw("CLIENT", "LIST")])
    clients = [parse_client(line) for line in str(listing).splitlines() if line.strip()]
    matching = [c for c in clients if client_matches(c, filters, own)]
    addrs = ", ".join(c.get("addr", "?") for c in matching[:5])
    more = f" and {len(matching) - 5} more" if len(matching) > 5 else ""
    noun = "client" if len(matching) == 1 else "clients"
    line = f"CLIENT KILL matches {len(matching)} {noun} of {len(clients)} connected"
    return [line + (f": {addrs}{more}" if matching else "")]


def parse_client(line: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in line.split(" "):
        name, _, value = item.partition("=")
        if name:
            fields[name] = value
    return fields


def client_matches(client: dict[str, str], filters: Sequence[str], own_id: Any) -> bool:
    """CLIENT KILL's filter semantics: the old `ip:port` form, or ANDed `FILTER value` pairs."""
    if len(filters) == 1:
        return client.get("addr") == filters[0]
    skip_me = True
    pairs = list(zip(filters[0::2], filters[1::2], strict=False))
    for name, value in pairs:
        key = name.lower()
        if key == "skipme":
            skip_me = value.lower() != "no"
        elif key == "id":
            if client.get("id") != value:
                return False
        elif key in ("addr", "laddr", "user"):
            if client.get(key) != value:
                return False
        elif key == "type":
            if client_type(client) != value.lower().replace("slave", "replica"):
                return False
        elif key == "maxage" and value.isdigit() and int(client.get("age", "0")) < int(value):
            return False
    return not (skip_me and client.get("id") == str(own_id))


def client_type(client: dict[str, str]) -> str:
    flags = client.get("flags", "")
    if "M" in flags:
        return "master"
    if "S" in flags:
        return "replica"
    if client.get("sub", "0") != "0" or client.get("psub", "0") != "0":
        return "pubsub"
    return "normal"


async def preview_flushall(client: RedisClient) -> str:
    keyspace = str(await client.execute(*raw("INFO", "keyspace")))
    total, dbs = 0, 0
    for line in keyspace.splitlines():
        if line.startswith("db") and "keys=" in line:
            dbs += 1
            total += int(line.split("keys=", 1)[1].split(",", 1)[0])
    return f"FLUSHALL removes {total:,} keys in {dbs} databases"


# --- formatting replies like redis-cli ----------------------------------------------------------


def format_reply(reply: Any, indent: int = 0) -> str:
    """redis-cli's look: (nil), (integer) 3, "text", numbered (nested) lists, (error) ..."""
    if reply is None:
        return "(nil)"
    if isinstance(reply, Exception):
        return f"(error) {one_line(str(reply))}"
    if isinstance(reply, bool):
        return "(integer) 1" if reply else "(integer) 0"
    if isinstance(reply, int):
        return f"(integer) {reply}"
    if isinstance(reply, float):
        return f"(double) {reply:g}"
    if isinstance(reply, list | tuple):
        if not reply:
            return "(empty array)"
        width = len(str(len(reply)))
        lines = []
        for index, item in enumerate(reply, 1):
            prefix = f"{index:>{width}})" + " "
            body = format_reply(item, indent + len(prefix))
            pad = "" if index == 1 else " " * indent
            lines.append(f"{pad}{prefix}{body}")
        return "\n".join(lines)
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if "\n" in text:  # INFO, CLIENT LIST: redis-cli prints these raw
        return text.replace("\r\n", "\n").rstrip("\n")
    if text in ("OK", "PONG", "QUEUED"):
        return text
    return quote(text)


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    out = []
    for ch in escaped:
        if ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def summarize(reply: Any, text: str) -> str:
    """One line for the step's status: the reply itself when short, else its size."""
    if isinstance(reply, list | tuple):
        return f"{len(reply):,} items" if reply else "(empty array)"
    if "\n" in text:
        return f"{len(text.splitlines()):,} lines"
    return one_line(text, 80)


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
