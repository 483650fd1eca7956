"""HTTP connections and the probe kinds that read HTTP services (health)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from opstui.config.base import Headers, Model, ProbeCommon
from opstui.config.types import HttpUrl, PositiveDuration, Text


class HttpConnection(Model):
    """An HTTP service: health endpoints, admin APIs, /metrics pages."""

    kind: Literal["http"]
    base_url: HttpUrl = Field(
        description="scheme://host:port[/prefix] every path is joined to; a password in it "
        "only as ${ENV_VAR} (then the whole URL is a Secret)"
    )
    headers: Headers = Field(
        default_factory=dict,
        description="sent with every request; credential headers only as ${ENV} or file:",
    )
    timeout: PositiveDuration = Field(
        5.0, description="per-request timeout unless a probe sets its own"
    )
    verify_tls: bool = Field(True, description="verify server certificates (off only for labs)")
    ca_file: Text | None = Field(None, description="PEM bundle to trust instead of the system's")
    max_connections: int = Field(20, ge=1, le=1000, description="pool size for this service")


StatusCode = Annotated[int, Field(ge=100, le=599)]


class HealthProbe(ProbeCommon):
    """An HTTP health endpoint; the body's own status wins over the HTTP code."""

    kind: Literal["health"]
    path: Text = Field("/health", description="joined to the connection's base_url")
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: Headers = Field(
        default_factory=dict,
        description="added to the connection's headers; credentials only as ${ENV} or file:",
    )
    expect_status: list[StatusCode] | None = Field(
        None,
        min_length=1,
        description="status codes counted as healthy when the body states no status",
    )
    value: Literal["latency_ms"] = Field(
        "latency_ms", description="the number drawn in the sparkline"
    )


class ScrapeProbe(ProbeCommon):
    """A Prometheus text exposition (/metrics) read directly: series by name and labels."""

    kind: Literal["scrape"]
    path: Text = Field("/metrics", description="joined to the connection's base_url")
    metric: str = Field(description="metric name (a histogram's base name for a quantile)")
    labels: dict[str, str] = Field(default_factory=dict, description="label values to match")
    mode: Literal["value", "rate", "quantile"] = Field(
        "value", description="the value as is, its rate per second, or a histogram quantile"
    )
    quantile: float | None = Field(None, gt=0, lt=1, description="with mode quantile: e.g. 0.95")
    aggregate: Literal["sum", "max", "min", "avg"] = Field(
        "sum",
        description="how several matching series (or their rates) combine into one value; "
        "a quantile always sums the buckets by le",
    )

    @model_validator(mode="after")
    def _quantile_with_mode(self) -> ScrapeProbe:
        if self.mode == "quantile" and self.quantile is None:
            raise ValueError("mode quantile needs `quantile` (e.g. 0.95)")
        if self.mode != "quantile" and self.quantile is not None:
            raise ValueError("`quantile` is only used with mode quantile")
        return self
