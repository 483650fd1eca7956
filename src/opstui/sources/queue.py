"""The `queue` probe kind: job counts per state, read from the job library's own Redis keys.

Each flavor's key layout is a Layout class at the end of this module (DESIGN.md section 7).
All counts of one queue go out in one pipeline (one round trip, no MULTI); `queue: "*"` first
lists the queues (SCAN for BullMQ/Bull, the library's registry SET for RQ and Sidekiq), then
reads every queue's counts in one more pipeline. Only read commands are sent: RQ's own
registry counts clean up (write), so we never call them; we read the same ZSETs with ZCARD.

Completed/failed per second come from deltas between polls; a count that drops (a library
trimming its completed set) gives no rate for that poll, never a negative one.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.config.kinds.redis import DEFAULT_PREFIX, QUEUE_FIELDS, QueueProbe, RedisConnection
from opstui.config.types import format_duration
from opstui.sources.base import FieldValue, ProbeError, Reading, Source, Table
from opstui.sources.redis_client import Command, RedisClient, get_redis_client, redis_error

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

MAX_QUEUES = 500
"""Queues read by one `queue: "*"` poll; more are counted but not read."""
MAX_ROWS = 50
"""Rows of the discovered-queues table; the rest are summed but not listed."""

Monotonic = Callable[[], float]


@dataclass(slots=True)
class _RateState:
    at: float
    completed: int
    failed: int


class QueueSource(Source):
    """One queue probe over its connection's shared RedisClient."""

    kind: ClassVar[str] = "queue"

    @classmethod
    def fields(cls, probe: ProbeConfig) -> frozenset[str] | None:
        if not isinstance(probe, QueueProbe):
            return None
        names = set(QUEUE_FIELDS[probe.flavor])
        if probe.flavor in ("bullmq", "bull"):
            names.add("is_paused")
        if probe.queue == "*":
            names |= {"queues", "paused_queues"}
        return frozenset(names)

    def __init__(
        self,
        probe: QueueProbe,
        connection: RedisConnection,
        client: RedisClient,
        *,
        clock: Monotonic = time.monotonic,
    ) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.clock = clock
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        self.layout: Layout = layout_for(probe)
        self._rate: _RateState | None = None

    @classmethod
    def build(
        cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool
    ) -> QueueSource:
        if not isinstance(probe, QueueProbe):
            raise TypeError(f"QueueSource needs a queue probe, got {type(probe).__name__}")
        if not isinstance(connection, RedisConnection):
            raise TypeError(f"a queue probe needs a redis connection, got {connection.kind}")
        return cls(probe, connection, get_redis_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        started = time.perf_counter()
        deadline = started + self.timeout
        if self.probe.queue == "*":
            return await self._poll_all(started, deadline)
        return await self._poll_one(started, deadline)

    # --- one queue ----------------------------------------------------------------------

    async def _poll_one(self, started: float, deadline: float) -> Reading:
        shared = self.layout.shared_plan()
        plan = self.layout.plan(self.probe.queue)
        replies = await self.client.pipeline(
            [*shared.commands, *plan.commands], time_limit=_left(deadline, self.timeout)
        )
        latency_ms = (time.perf_counter() - started) * 1000.0
        shared_counts = shared.read(replies[: len(shared.commands)])
        counts = plan.read(replies[len(shared.commands) :])
        if not counts.found or counts.no_data:
            return Reading(
                value=None,
                latency_ms=latency_ms,
                no_data=counts.no_data or f"queue {self.probe.queue!r} not found",
                notes=counts.notes or (f"no {self.probe.flavor} key of it {self.layout.where()}",),
            )
        merged = {**counts.counts, **shared_counts.counts}
        fields: dict[str, FieldValue] = dict(merged)
        fields.update(counts.flags)
        fields.update(self._rates(merged))
        notes = (*counts.notes, *shared_counts.notes)
        return Reading(
            value=_value(fields, self.probe.value),
            fields=fields,
            latency_ms=latency_ms,
            facts=_facts(merged, counts.flags, fields, counts.extra_facts),
            notes=notes,
            table=counts.table,
        )

    # --- every queue of the flavor -------------------------------------------------------

    async def _poll_all(self, started: float, deadline: float) -> Reading:
        names, scan_notes = await self.layout.discover(self.client, deadline, self.timeout)
        found_total = len(names)
        names = sorted(names)[:MAX_QUEUES]
        if not names:
            return Reading(
                value=None,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                no_data=f"no {self.probe.flavor} queues found",
                notes=(f"looked {self.layout.where()}",),
            )
        shared = self.layout.shared_plan()
        plans = [self.layout.plan(name) for name in names]
        commands = [*shared.commands]
        for plan in plans:
            commands.extend(plan.commands)
        replies = await self.client.pipeline(commands, time_limit=_left(deadline, self.timeout))
        latency_ms = (time.perf_counter() - started) * 1000.0
        offset = len(shared.commands)
        shared_counts = shared.read(replies[:offset])
        per_queue: list[tuple[str, Counts]] = []
        for name, plan in zip(names, plans, strict=True):
            size = len(plan.commands)
            per_queue.append((name, plan.read(replies[offset : offset + size])))
            offset += size
        states = [s for s in QUEUE_FIELDS[self.probe.flavor] if s not in shared_counts.counts]
        states = [s for s in states if not s.endswith("_per_s") and s != "groups"]
        totals = {s: sum(c.counts.get(s, 0) for _, c in per_queue) for s in states}
        merged = {**totals, **shared_counts.counts}
        fields: dict[str, FieldValue] = {"queues": found_total, **merged}
        paused_queues = sum(1 for _, c in per_queue if c.flags.get("is_paused") is True)
        if any("is_paused" in c.flags for _, c in per_queue):
            fields["paused_queues"] = paused_queues
        fields.update(self._rates(merged))
        value_of = self.probe.value
        rows_sorted = sorted(
            per_queue, key=lambda item: (-_sort_number(item[1].counts.get(value_of)), item[0])
        )
        rows = tuple(
            (name, *(f"{c.counts.get(s, 0):,}" for s in states))
            for name, c in rows_sorted[:MAX_ROWS]
        )
        table = Table(
            columns=("queue", *states),
            rows=rows,
            title=f"{self.probe.flavor} queues",
            total_rows=found_total if found_total > len(rows) else None,
        )
        notes: list[str] = [*scan_notes, *shared_counts.notes]
        if found_total > len(names):
            notes.append(f"{found_total} queues found; counted the first {len(names)}")
        facts = [("queues", f"{found_total:,}")]
        facts.extend(_facts(merged, {}, fields, ()))
        if paused_queues:
            facts.append(("paused queues", f"{paused_queues:,}"))
        return Reading(
            value=_value(fields, value_of),
            fields=fields,
            latency_ms=latency_ms,
            facts=tuple(facts),
            notes=tuple(notes),
            table=table,
        )

    # --- rates --------------------------------------------------------------------------

    def _rates(self, counts: Mapping[str, int]) -> dict[str, float]:
        """completed/s and failed/s since the last poll; none on the first poll or after a drop."""
        completed = counts.get("completed", counts.get("finished"))
        failed = counts.get("failed")
        if completed is None or failed is None:
            return {}
        now = self.clock()
        last, self._rate = self._rate, _RateState(now, completed, failed)
        if last is None or now <= last.at:
            return {}
        elapsed = now - last.at
        rates: dict[str, float] = {}
        if completed >= last.completed:
            rates["completed_per_s"] = (completed - last.completed) / elapsed
        if failed >= last.failed:
            rates["failed_per_s"] = (failed - last.failed) / elapsed
        return rates

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "flavor": self.probe.flavor,
            "queue": self.probe.queue,
            "keys": self.layout.where(),
            "redis": self.client.shown_url,
            "timeout": format_duration(self.timeout),
        }
        if self.probe.group is not None:
            facts["group"] = self.probe.group
        return facts


def _left(deadline: float, limit: float) -> float:
    """Seconds left before `deadline`; a spent budget still sends with a sliver of time."""
    return max(0.05, min(limit, deadline - time.perf_counter()))


def _value(fields: Mapping[str, FieldValue], name: str) -> float | None:
    raw = fields.get(name)
    if raw is None or isinstance(raw, bool | str):
        return None
    return float(raw)


def _sort_number(raw: int | None) -> int:
    return raw if raw is not None else 0


def _rate_text(rate: float) -> str:
    return f"{rate:.1f}/s" if rate < 100 else f"{rate:,.0f}/s"


def _facts(
    counts: Mapping[str, int],
    flags: Mapping[str, FieldValue],
    fields: Mapping[str, FieldValue],
    extra: Sequence[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    facts = [(name.replace("_", " "), f"{count:,}") for name, count in counts.items()]
    if flags.get("is_paused") is True:
        facts.insert(0, ("state", "PAUSED"))
    for name, label in (("completed_per_s", "done"), ("failed_per_s", "failing")):
        rate = fields.get(name)
        if isinstance(rate, float):
            facts.append((label, _rate_text(rate)))
    facts.extend(extra)
    return tuple(facts)


# --- key layouts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """What one queue's replies say: counts by state, flags (paused), whether it exists."""

    found: bool
    counts: dict[str, int]
    flags: dict[str, FieldValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    extra_facts: tuple[tuple[str, str], ...] = ()
    table: Table | None = None
    no_data: str | None = None
    """Why there is nothing to show though the queue exists (a stream's group is missing)."""


class Replies:
    """A pipeline's replies for one plan; a rejected command becomes a ProbeError on read."""

    def __init__(self, commands: Sequence[Command], replies: Sequence[Any]) -> None:
        self.commands = commands
        self.replies = replies

    def raw(self, index: int) -> Any:
        reply = self.replies[index]
        if isinstance(reply, Exception):
            raise _reply_error(self.commands[index], reply)
        return reply

    def error(self, index: int) -> Exception | None:
        reply = self.replies[index]
        return reply if isinstance(reply, Exception) else None

    def int(self, index: int) -> int:
        reply = self.raw(index)
        return 0 if reply is None else int(reply)


@dataclass(frozen=True, slots=True)
class Plan:
    """Commands for one queue and the reader that turns their replies into Counts."""

    commands: list[Command]
    read: Callable[[Sequence[Any]], Counts]


class _Builder:
    def __init__(self) -> None:
        self.commands: list[Command] = []

    def add(self, *command: str | int) -> int:
        self.commands.append(command)
        return len(self.commands) - 1

    def done(self, reader: Callable[[Replies], Counts]) -> Plan:
        commands = list(self.commands)
        return Plan(commands, lambda replies: reader(Replies(commands, replies)))


def _reply_error(command: Command, exc: Exception) -> ProbeError:
    text = str(exc)
    key = str(command[1]) if len(command) > 1 else ""
    if text.startswith("WRONGTYPE"):
        return ProbeError(
            f"WRONGTYPE at {key}",
            hint="that key is not what this flavor writes: check flavor, prefix and queue",
            detail=f"{command[0]} {key}: {text}",
        )
    return redis_error(exc, 0.0)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


MAX_SCAN_CALLS = 200
"""SCAN calls (of COUNT 1000 keys each) one discovery may make before it stops looking."""


class Layout(ABC):
    """One job library's keys: what to read for a queue, and how to list its queues."""

    flavor: ClassVar[str]

    def __init__(self, probe: QueueProbe) -> None:
        self.probe = probe
        default = DEFAULT_PREFIX.get(probe.flavor, "")
        self.prefix = probe.prefix if probe.prefix is not None else default

    @abstractmethod
    def plan(self, queue: str) -> Plan:
        """Commands counting every state of `queue`, and their reader."""

    def shared_plan(self) -> Plan:
        """Counts that belong to no one queue (Sidekiq's retry set, Celery's unacked hash)."""
        return _Builder().done(lambda _: Counts(True, {}))

    def where(self) -> str:
        return f"under prefix {self.prefix!r}" if self.prefix else "at the top level"

    async def discover(
        self, client: RedisClient, deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        """Every queue name of this flavor, and notes on how complete the list is."""
        raise ProbeError(f'queue "*" is not supported for the {self.flavor} flavor')

    async def _scan(
        self, client: RedisClient, suffixes: tuple[str, ...], deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        """Queue names from keys `<prefix>:<queue><suffix>`, with SCAN (never KEYS)."""
        head = f"{self.prefix}:"
        pattern = f"{_glob_escape(head)}*:[im][de]*"
        names: set[str] = set()
        cursor: int = 0
        for _ in range(MAX_SCAN_CALLS):
            reply = await client.execute(
                "SCAN", cursor, "MATCH", pattern, "COUNT", 1000, time_limit=_left(deadline, limit)
            )
            cursor, keys = int(reply[0]), reply[1]
            for key in keys:
                for suffix in suffixes:
                    if (
                        key.startswith(head)
                        and key.endswith(suffix)
                        and len(key) > len(head) + len(suffix)
                    ):
                        names.add(key[len(head) : -len(suffix)])
            if cursor == 0:
                return sorted(names), ()
        note = f"stopped scanning after {MAX_SCAN_CALLS * 1000:,} keys; the list may be partial"
        return sorted(names), (note,)


def _paused_split(wait: int, paused_list: int, is_paused: bool) -> tuple[int, int]:
    """(waiting, paused) for both layouts: BullMQ v6 keeps a paused queue's jobs in `wait`
    (meta.paused=1); v5 and Bull v3 move them to `paused`. Either way, a paused queue's
    jobs count as paused, as BullMQ's own getJobCounts reports them."""
    if is_paused:
        return 0, wait + paused_list
    return wait, paused_list


def _without_marker(length: int, last: Any) -> int:
    """BullMQ up to v4 left a `0:<ts>` marker at the tail of wait/paused; it is not a job."""
    if isinstance(last, str) and last.startswith("0:") and length > 0:
        return length - 1
    return length


class BullMQLayout(Layout):
    flavor = "bullmq"
    LISTS = ("wait", "active", "paused")
    ZSETS = ("prioritized", "delayed", "completed", "failed", "waiting-children")

    def plan(self, queue: str) -> Plan:
        base = f"{self.prefix}:{queue}"
        b = _Builder()
        lengths = {name: b.add("LLEN", f"{base}:{name}") for name in self.LISTS}
        wait_tail = b.add("LINDEX", f"{base}:wait", -1)
        paused_tail = b.add("LINDEX", f"{base}:paused", -1)
        sizes = {name: b.add("ZCARD", f"{base}:{name}") for name in self.ZSETS}
        meta = b.add("HGET", f"{base}:meta", "paused")
        keys = [f"{base}:{s}" for s in ("meta", "id", "events", *self.LISTS, *self.ZSETS)]
        exists = b.add("EXISTS", *keys)

        def read(r: Replies) -> Counts:
            wait = _without_marker(r.int(lengths["wait"]), r.raw(wait_tail))
            paused_list = _without_marker(r.int(lengths["paused"]), r.raw(paused_tail))
            flag = r.raw(meta)
            is_paused = flag is not None and str(flag) not in ("0", "")
            waiting, paused = _paused_split(wait, paused_list, is_paused)
            counts = {
                "waiting": waiting,
                "active": r.int(lengths["active"]),
                "paused": paused,
                "prioritized": r.int(sizes["prioritized"]),
                "delayed": r.int(sizes["delayed"]),
                "completed": r.int(sizes["completed"]),
                "failed": r.int(sizes["failed"]),
                "waiting_children": r.int(sizes["waiting-children"]),
            }
            return Counts(r.int(exists) > 0, counts, {"is_paused": is_paused})

        return b.done(read)

    async def discover(
        self, client: RedisClient, deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        return await self._scan(client, (":meta", ":id"), deadline, limit)


class BullLayout(Layout):
    """Bull v3 (and v2, whose completed/failed were SETs: TYPE is read until known)."""

    flavor = "bull"
    LISTS = ("wait", "active", "paused")
    MIXED = ("completed", "failed")

    def __init__(self, probe: QueueProbe) -> None:
        super().__init__(probe)
        self._types: dict[tuple[str, str], str] = {}

    def plan(self, queue: str) -> Plan:
        base = f"{self.prefix}:{queue}"
        b = _Builder()
        lengths = {name: b.add("LLEN", f"{base}:{name}") for name in self.LISTS}
        delayed = b.add("ZCARD", f"{base}:delayed")
        mixed: dict[str, tuple[int, ...]] = {}
        for name in self.MIXED:
            key = f"{base}:{name}"
            known = self._types.get((queue, name))
            if known == "set":
                mixed[name] = (b.add("SCARD", key),)
            elif known == "zset":
                mixed[name] = (b.add("ZCARD", key),)
            else:  # one round trip still: ask both ways, TYPE says which reply counts
                mixed[name] = (b.add("TYPE", key), b.add("ZCARD", key), b.add("SCARD", key))
        flag = b.add("EXISTS", f"{base}:meta-paused")
        keys = [f"{base}:{s}" for s in ("id", "meta-paused", *self.LISTS, "delayed", *self.MIXED)]
        exists = b.add("EXISTS", *keys)

        def read(r: Replies) -> Counts:
            counts_mixed: dict[str, int] = {}
            notes: list[str] = []
            for name, indexes in mixed.items():
                if len(indexes) == 1:
                    counts_mixed[name] = r.int(indexes[0])
                    continue
                kind = str(r.raw(indexes[0]))
                if kind in ("set", "zset"):
                    self._types[(queue, name)] = kind
                counts_mixed[name] = r.int(indexes[2] if kind == "set" else indexes[1])
            if "set" in (self._types.get((queue, n)) for n in self.MIXED):
                notes.append("Bull v2 layout: completed/failed are sets")
            is_paused = r.int(flag) > 0
            waiting, paused = _paused_split(
                r.int(lengths["wait"]), r.int(lengths["paused"]), is_paused
            )
            counts = {
                "waiting": waiting,
                "active": r.int(lengths["active"]),
                "paused": paused,
                "delayed": r.int(delayed),
                **counts_mixed,
            }
            return Counts(r.int(exists) > 0, counts, {"is_paused": is_paused}, tuple(notes))

        return b.done(read)

    async def discover(
        self, client: RedisClient, deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        return await self._scan(client, (":id", ":meta-paused"), deadline, limit)


class RQLayout(Layout):
    flavor = "rq"
    REGISTRIES = (
        ("started", "wip"),
        ("finished", "finished"),
        ("failed", "failed"),
        ("deferred", "deferred"),
        ("scheduled", "scheduled"),
        ("canceled", "canceled"),
    )

    def plan(self, queue: str) -> Plan:
        p = self.prefix
        b = _Builder()
        waiting = b.add("LLEN", f"{p}:queue:{queue}")
        sizes = {field: b.add("ZCARD", f"{p}:{key}:{queue}") for field, key in self.REGISTRIES}
        member = b.add("SISMEMBER", f"{p}:queues", f"{p}:queue:{queue}")
        keys = [f"{p}:queue:{queue}", *(f"{p}:{key}:{queue}" for _, key in self.REGISTRIES)]
        exists = b.add("EXISTS", *keys)

        def read(r: Replies) -> Counts:
            counts = {"waiting": r.int(waiting)}
            counts.update({field: r.int(index) for field, index in sizes.items()})
            return Counts(r.int(member) > 0 or r.int(exists) > 0, counts)

        return b.done(read)

    async def discover(
        self, client: RedisClient, deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        head = f"{self.prefix}:queue:"
        members = await client.execute(
            "SMEMBERS", f"{self.prefix}:queues", time_limit=_left(deadline, limit)
        )
        return sorted(m[len(head) :] for m in members if m.startswith(head)), ()


CELERY_SEP = "\x06\x16"
CELERY_STEPS = (0, 3, 6, 9)


class CeleryLayout(Layout):
    """kombu's Redis transport: one LIST per priority step; unacked is one global HASH."""

    flavor = "celery"

    def plan(self, queue: str) -> Plan:
        p = self.prefix
        b = _Builder()
        lists = {
            step: b.add("LLEN", f"{p}{queue}" if step == 0 else f"{p}{queue}{CELERY_SEP}{step}")
            for step in CELERY_STEPS
        }
        keys = [f"{p}_kombu.binding.{queue}", f"{p}{queue}"]
        keys += [f"{p}{queue}{CELERY_SEP}{step}" for step in CELERY_STEPS[1:]]
        exists = b.add("EXISTS", *keys)

        def read(r: Replies) -> Counts:
            by_step = {step: r.int(index) for step, index in lists.items()}
            facts: tuple[tuple[str, str], ...] = ()
            if any(by_step[s] for s in CELERY_STEPS[1:]):
                text = " ".join(f"{s}:{n:,}" for s, n in by_step.items())
                facts = (("by priority", text),)
            return Counts(r.int(exists) > 0, {"waiting": sum(by_step.values())}, extra_facts=facts)

        return b.done(read)

    def shared_plan(self) -> Plan:
        b = _Builder()
        unacked = b.add("HLEN", f"{self.prefix}unacked")
        return b.done(lambda r: Counts(True, {"unacked": r.int(unacked)}))


class SidekiqLayout(Layout):
    """`queue:<q>` LISTs; schedule/retry/dead are ZSETs shared by every queue."""

    flavor = "sidekiq"

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{name}" if self.prefix else name

    def plan(self, queue: str) -> Plan:
        b = _Builder()
        waiting = b.add("LLEN", self._key(f"queue:{queue}"))
        member = b.add("SISMEMBER", self._key("queues"), queue)

        def read(r: Replies) -> Counts:
            found = r.int(member) > 0 or r.int(waiting) > 0
            return Counts(found, {"waiting": r.int(waiting)})

        return b.done(read)

    def shared_plan(self) -> Plan:
        b = _Builder()
        sizes = {
            name: b.add("ZCARD", self._key(key))
            for name, key in (("scheduled", "schedule"), ("retry", "retry"), ("dead", "dead"))
        }
        return b.done(lambda r: Counts(True, {n: r.int(i) for n, i in sizes.items()}))

    async def discover(
        self, client: RedisClient, deadline: float, limit: float
    ) -> tuple[list[str], tuple[str, ...]]:
        members = await client.execute(
            "SMEMBERS", self._key("queues"), time_limit=_left(deadline, limit)
        )
        return sorted(members), ()


class ListLayout(Layout):
    """A plain LIST: Redis deletes an empty list, so a missing key reads as 0 with a note."""

    flavor = "list"

    def where(self) -> str:
        return "as a key"

    def plan(self, queue: str) -> Plan:
        b = _Builder()
        length = b.add("LLEN", queue)
        exists = b.add("EXISTS", queue)

        def read(r: Replies) -> Counts:
            notes: tuple[str, ...] = ()
            if r.int(exists) == 0:
                notes = (
                    f"key {queue!r} does not exist: empty (Redis drops empty lists) or misnamed",
                )
            return Counts(True, {"waiting": r.int(length)}, notes=notes)

        return b.done(read)


class StreamLayout(Layout):
    """XLEN plus XINFO GROUPS: per group its pending entries and lag (Redis 7+)."""

    flavor = "stream"

    def where(self) -> str:
        return "as a key"

    def plan(self, queue: str) -> Plan:
        b = _Builder()
        length = b.add("XLEN", queue)
        groups = b.add("XINFO GROUPS", queue)
        exists = b.add("EXISTS", queue)
        wanted = self.probe.group

        def read(r: Replies) -> Counts:
            if r.int(exists) == 0:
                return Counts(False, {}, no_data=f"stream {queue!r} not found")
            infos = [_group_info(g) for g in (r.raw(groups) or [])]
            chosen = infos
            if wanted is not None:
                chosen = [g for g in infos if g.name == wanted]
                if not chosen:
                    known = ", ".join(g.name for g in infos) or "none"
                    return Counts(
                        True,
                        {},
                        no_data=f"group {wanted!r} not found on stream {queue!r}",
                        notes=(f"groups on the stream: {known}",),
                    )
            counts = {"length": r.int(length), "groups": len(infos)}
            notes: list[str] = []
            counts["pending"] = sum(g.pending for g in chosen)
            lags = [g.lag for g in chosen]
            if chosen and all(lag is not None for lag in lags):
                counts["lag"] = max(lag for lag in lags if lag is not None)
            elif chosen:
                unknown = ", ".join(g.name for g in chosen if g.lag is None)
                notes.append(f"lag unknown for {unknown} (Redis reports none)")
            table = None
            if infos:
                rows = tuple(
                    (
                        g.name,
                        f"{g.consumers:,}",
                        f"{g.pending:,}",
                        "?" if g.lag is None else f"{g.lag:,}",
                    )
                    for g in infos
                )
                table = Table(("group", "consumers", "pending", "lag"), rows, title="groups")
            return Counts(True, counts, notes=tuple(notes), table=table)

        return b.done(read)


@dataclass(frozen=True, slots=True)
class _Group:
    name: str
    consumers: int
    pending: int
    lag: int | None


def _group_info(raw: Any) -> _Group:
    info = dict(raw) if isinstance(raw, Mapping) else _pairs(raw)
    lag = info.get("lag")
    return _Group(
        name=str(info.get("name", "?")),
        consumers=int(info.get("consumers") or 0),
        pending=int(info.get("pending") or 0),
        lag=None if lag is None else int(lag),
    )


def _pairs(raw: Any) -> dict[str, Any]:
    items = list(raw) if isinstance(raw, list | tuple) else []
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


_LAYOUTS: dict[str, type[Layout]] = {
    cls.flavor: cls
    for cls in (
        BullMQLayout,
        BullLayout,
        RQLayout,
        CeleryLayout,
        SidekiqLayout,
        ListLayout,
        StreamLayout,
    )
}


def layout_for(probe: QueueProbe) -> Layout:
    return _LAYOUTS[probe.flavor](probe)
