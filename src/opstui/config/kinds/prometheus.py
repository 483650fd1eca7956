"""Prometheus connections and the `prometheus` probe kind (instant queries, alerts, targets)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

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


LABEL_MATCHERS = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)'
    r'(,\s*[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$'
)


class ViaPrometheus(Model):
    """Where the Prometheus-backed view reads `opstui export` series from.

    Written as a URL, or as a mapping when the Prometheus needs headers, TLS settings or
    label matchers to pick one exporter job out of a shared server.
    """

    url: HttpUrl = Field(description="the Prometheus (or Thanos/Mimir query) base URL")
    match: str = Field(
        "",
        description='label matchers added to every query, e.g. job="opstui",env="prod"',
    )
    headers: Headers = Field(default_factory=dict, description="credentials only as ${ENV}")
    timeout: PositiveDuration = Field(5.0, description="per-query timeout")
    verify_tls: bool = True
    ca_file: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _url_shorthand(cls, data: object) -> object:
        return {"url": data} if isinstance(data, str) else data

    @field_validator("match")
    @classmethod
    def _label_matchers(cls, value: str) -> str:
        if value.strip() and not LABEL_MATCHERS.match(value):
            raise ValueError(
                'expected PromQL label matchers without braces, e.g. job="opstui",env="prod"'
            )
        return value.strip().rstrip(",")

    def connection(self) -> PrometheusConnection:
        """The same settings as a connection, so the view shares PrometheusClient."""
        return PrometheusConnection(
            kind="prometheus",
            url=self.url,
            headers=self.headers,
            timeout=self.timeout,
            verify_tls=self.verify_tls,
            ca_file=self.ca_file,
        )
