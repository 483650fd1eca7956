"""Redis connections and the probe kinds that read Redis: job queues and the server itself."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from opstui.config.base import Model, ProbeCommon
from opstui.config.types import PositiveDuration, RedisUrl, SecretText, Text

QueueFlavor = Literal["bullmq", "bull", "rq", "celery", "sidekiq", "list", "stream"]


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
        None, description="key prefix (BullMQ/Bull: `bull`; Sidekiq: a namespace)"
    )
    value: str = Field(
        "waiting", description="the state count drawn in the sparkline and judged by thresholds"
    )
    group: str | None = Field(None, description="stream flavor: the consumer group to watch")


class RedisInfoProbe(ProbeCommon):
    """The Redis server: clients vs maxclients, memory vs maxmemory, evictions, ops/s, slowlog."""

    kind: Literal["redis_info"]
    value: str = Field(
        "connected_clients", description="the field drawn in the sparkline and judged"
    )
