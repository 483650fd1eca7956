"""Redis connections and the probe kinds that read Redis: job queues and the server itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from opstui.config.base import Model, ProbeCommon, ReferenceProblem, raise_all
from opstui.config.types import PositiveDuration, RedisUrl, SecretText, Text

QueueFlavor = Literal["bullmq", "bull", "rq", "celery", "sidekiq", "list", "stream"]

RATE_FIELDS = ("completed_per_s", "failed_per_s")
QUEUE_FIELDS: dict[str, tuple[str, ...]] = {
    "bullmq": (
        "waiting",
        "active",
        "paused",
        "prioritized",
        "delayed",
        "completed",
        "failed",
        "waiting_children",
        *RATE_FIELDS,
    ),
    "bull": ("waiting", "active", "paused", "delayed", "completed", "failed", *RATE_FIELDS),
    "rq": (
        "waiting",
        "started",
        "finished",
        "failed",
        "deferred",
        "scheduled",
        "canceled",
        *RATE_FIELDS,
    ),
    "celery": ("waiting", "unacked"),
    "sidekiq": ("waiting", "scheduled", "retry", "dead"),
    "list": ("waiting",),
    "stream": ("length", "lag", "pending", "groups"),
}
"""The numeric fields each flavor reports: what `value` and `thresholds.field` may name."""

DISCOVERABLE: tuple[str, ...] = ("bullmq", "bull", "rq", "sidekiq")
"""Flavors whose queues can be listed, so `queue: "*"` works for them."""

DEFAULT_PREFIX: dict[str, str] = {"bullmq": "bull", "bull": "bull", "rq": "rq"}

REDIS_INFO_FIELDS: tuple[str, ...] = (
    "connected_clients",
    "maxclients",
    "blocked_clients",
    "used_memory",
    "maxmemory",
    "evicted_keys",
    "instantaneous_ops_per_sec",
    "slowlog_len",
    "rejected_connections",
    "clients_ratio",
    "memory_ratio",
    "evictions_per_s",
)
"""The numeric fields a redis_info probe reports."""


def _field_problems(
    value: str, field: str | None, known: tuple[str, ...], what: str
) -> list[ReferenceProblem]:
    names = ", ".join(known)
    problems = []
    if value not in known:
        problems.append(ReferenceProblem(("value",), f"{what} has no field {value!r}; use {names}"))
    if field is not None and field not in known:
        problems.append(
            ReferenceProblem(("thresholds", "field"), f"{what} has no field {field!r}; use {names}")
        )
    return problems


class RedisConnection(Model):
    """A Redis server (or a queue's Redis); one client pool shared by its probes and actions."""

    kind: Literal["redis"]
    url: RedisUrl = Field(description="redis://host:port/db; a password only as ${ENV_VAR}")
    username: Text | None = Field(None, description="ACL user, when not in the URL")
    password: SecretText | None = Field(
        None, description="password as ${ENV_VAR} or file:/path, when not in the URL"
    )
    timeout: PositiveDuration = Field(2.0, description="connect and command timeout")
    verify_tls: bool = Field(True, description="verify the certificate of a rediss:// server")
    ca_file: Text | None = Field(None, description="PEM bundle to trust for rediss://")
    max_connections: int = Field(4, ge=1, le=100, description="pool size")


class QueueProbe(ProbeCommon):
    """Counts of one job queue (or of every queue of a flavor with `queue: "*"`)."""

    kind: Literal["queue"]
    flavor: QueueFlavor = Field(description="the job library whose key layout to read")
    queue: str = Field(description='queue name, or "*" to discover every queue of the flavor')
    prefix: str | None = Field(
        None,
        description="key prefix: BullMQ/Bull `bull` (default), RQ `rq` (default), Sidekiq a "
        "namespace (`ns` -> `ns:queue:<q>`), Celery kombu's global_keyprefix (verbatim)",
    )
    value: str = Field(
        "waiting",
        description="the field drawn in the sparkline and judged by thresholds "
        "(default: waiting; a stream's: length)",
    )
    group: str | None = Field(None, description="stream flavor: the consumer group to watch")

    @model_validator(mode="before")
    @classmethod
    def _default_value(cls, data: Any) -> Any:
        """A stream has no `waiting`: its default value is its length."""
        if isinstance(data, dict) and "value" not in data and data.get("flavor") == "stream":
            return {**data, "value": "length"}
        return data

    @model_validator(mode="after")
    def _fits_flavor(self) -> QueueProbe:
        field = self.thresholds.field if self.thresholds is not None else None
        known = QUEUE_FIELDS[self.flavor]
        if self.queue == "*":
            known = (*known, "queues")
        problems = _field_problems(self.value, field, known, f"a {self.flavor} queue")
        if not self.queue:
            problems.append(ReferenceProblem(("queue",), "queue name is empty"))
        if self.queue == "*" and self.flavor not in DISCOVERABLE:
            problems.append(
                ReferenceProblem(
                    ("queue",),
                    f'queue "*" needs a flavor whose queues can be listed '
                    f"({', '.join(DISCOVERABLE)}); name the {self.flavor} key",
                )
            )
        if self.prefix is not None and self.flavor in ("list", "stream"):
            problems.append(
                ReferenceProblem(
                    ("prefix",), f"prefix does not apply to {self.flavor}: put the key in queue"
                )
            )
        if self.group is not None and self.flavor != "stream":
            problems.append(ReferenceProblem(("group",), "group applies to the stream flavor only"))
        raise_all(problems)
        return self


class RedisInfoProbe(ProbeCommon):
    """The Redis server: clients vs maxclients, memory vs maxmemory, evictions, ops/s, slowlog."""

    kind: Literal["redis_info"]
    value: str = Field(
        "connected_clients", description="the field drawn in the sparkline and judged"
    )

    @model_validator(mode="after")
    def _known_field(self) -> RedisInfoProbe:
        field = self.thresholds.field if self.thresholds is not None else None
        raise_all(_field_problems(self.value, field, REDIS_INFO_FIELDS, "redis_info"))
        return self
