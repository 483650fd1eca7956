"""PostgreSQL connections and the `sql` probe kind (provable reads, in read-only transactions)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from opstui.config.base import Model, ProbeCommon
from opstui.config.types import (
    PositiveDuration,
    PostgresDsn,
    Secret,
    SecretText,
    Text,
    is_reference,
)

SqlPreset = Literal["pg_connections", "pg_longest_transaction", "pg_slow_queries"]


class PostgresConnection(Model):
    """A PostgreSQL server; one asyncpg pool shared by its probes and actions."""

    kind: Literal["postgres"]
    dsn: PostgresDsn = Field(description="postgresql://user@host:port/db; password via ${ENV}")
    password: SecretText | None = Field(
        None, description="password as ${ENV_VAR} or file:/path, when not in the DSN"
    )
    timeout: PositiveDuration = Field(5.0, description="connect and statement timeout")
    pool_min: int = Field(1, ge=0, le=5)
    pool_max: int = Field(3, ge=1, le=5)
    statement_cache_size: int = Field(100, ge=0, description="0 for PgBouncer in transaction mode")
    ssl: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    ca_file: Text | None = None

    @field_validator("password")
    @classmethod
    def _password_is_a_reference(cls, value: str | Secret | None) -> str | Secret | None:
        if value is not None and not is_reference(value):
            raise ValueError("write the password as ${ENV_VAR} or file:/path, not as a literal")
        return value


class SqlProbe(ProbeCommon):
    """A query (or a built-in preset) run in a read-only transaction: a scalar or a small table."""

    kind: Literal["sql"]
    query: str | None = Field(None, description="SQL text; one row of one number is a scalar")
    preset: SqlPreset | None = Field(None, description="a built-in query instead of `query`")
    value: str | None = Field(
        None, description="column (or preset field) drawn in the sparkline and judged"
    )
    max_rows: int = Field(20, ge=1, le=500, description="rows kept of a table result")

    @field_validator("query")
    @classmethod
    def _plain_read(cls, value: str | None) -> str | None:
        """A probe only reads: one statement whose shape is a plain read (the server's catalog
        clears its functions before the first poll)."""
        if value is not None:
            from opstui.sqlcheck import check_plain_read

            check_plain_read(value)
        return value

    @model_validator(mode="after")
    def _query_or_preset(self) -> SqlProbe:
        if (self.query is None) == (self.preset is None):
            raise ValueError("an sql probe needs exactly one of `query` or `preset`")
        return self
