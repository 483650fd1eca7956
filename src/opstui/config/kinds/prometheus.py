"""Prometheus connections and the `prometheus` probe kind (instant queries, alerts, targets)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from opstui.config.base import Headers, Model, ProbeCommon
from opstui.config.types import HttpUrl, PositiveDuration, Text

PrometheusPreset = Literal["alerts", "targets"]


class PrometheusConnection(Model):
    """A Prometheus (or Thanos/Mimir query) HTTP API."""

    kind: Literal["prometheus"]
    url: HttpUrl = Field(description="http://host:9090")
    headers: Headers = Field(default_factory=dict, description="credentials only as ${ENV}")
    timeout: PositiveDuration = Field(5.0, description="per-query timeout")
    verify_tls: bool = True
    ca_file: Text | None = None


class PrometheusProbe(ProbeCommon):
    """A PromQL instant query (history backfilled by a range query), or alerts/targets."""

    kind: Literal["prometheus"]
    query: str | None = Field(None, description="PromQL; a vector shows its top series")
    preset: PrometheusPreset | None = Field(
        None, description="`alerts` (firing/pending) or `targets` (down targets)"
    )
    top: int = Field(5, ge=1, le=50, description="series shown of a multi-series vector")
    backfill: bool = Field(True, description="fill the sparkline from a range query at start")

    @model_validator(mode="after")
    def _query_or_preset(self) -> PrometheusProbe:
        if (self.query is None) == (self.preset is None):
            raise ValueError("a prometheus probe needs exactly one of `query` or `preset`")
        return self
