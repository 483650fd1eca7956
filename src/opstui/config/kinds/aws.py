"""AWS connections and the `ecs` probe kind (service task counts, rollouts, stopped tasks)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from opstui.config.base import Model, ProbeCommon
from opstui.config.types import HttpUrl, PositiveDuration, Secret, SecretText, Text


class AwsConnection(Model):
    """An AWS account and region; credentials from the standard chain unless given here."""

    kind: Literal["aws"]
    region: Text = Field(description="e.g. eu-west-1")
    profile: Text | None = Field(None, description="a named profile of ~/.aws/config")
    access_key_id: SecretText | None = Field(None, description="as ${ENV_VAR}; default: chain")
    secret_access_key: SecretText | None = Field(None, description="as ${ENV_VAR} or file:")
    session_token: SecretText | None = None
    endpoint_url: HttpUrl | None = Field(
        None, description="another endpoint (tests use moto's server on loopback)"
    )
    timeout: PositiveDuration = Field(10.0, description="per-call timeout")

    @field_validator("access_key_id", "secret_access_key", "session_token")
    @classmethod
    def _no_literal_key(cls, value: str | Secret | None) -> str | Secret | None:
        """AWS keys are credentials like any other: only from ${ENV} or file:."""
        if value is not None and not isinstance(value, Secret):
            raise ValueError(
                "an AWS key is a credential: write it as ${ENV_VAR} or file:/path, not as a "
                "literal"
            )
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> AwsConnection:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self


class EcsProbe(ProbeCommon):
    """One ECS service: running/desired/pending, rollout, latest events, last stopped tasks."""

    kind: Literal["ecs"]
    cluster: Text
    service: Text
    value: Literal["running", "desired", "pending", "running_ratio"] = Field(
        "running", description="the count drawn in the sparkline and judged"
    )
    stopped_tasks: int = Field(5, ge=0, le=20, description="last stopped tasks to describe")
