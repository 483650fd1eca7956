"""The config language as pydantic v2 models (DESIGN.md section 4).

Every model forbids unknown keys, so a typo is an error with its line, not a silent default.
Connections and probes are unions discriminated by `kind`; later kinds add members here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opstui.config.types import Duration, SecretText, Text

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )


# --- connections ------------------------------------------------------------------------


class HttpConnection(Model):
    """An HTTP service: health endpoints, admin APIs, /metrics pages."""

    kind: Literal["http"]
    base_url: Text = Field(description="scheme://host:port[/prefix] every path is joined to")
    headers: dict[str, SecretText] = Field(default_factory=dict)
    timeout: Duration = Field(5.0, description="per-request timeout unless a probe sets its own")
    verify_tls: bool = Field(True, description="verify server certificates (off only for labs)")
    ca_file: Text | None = Field(None, description="PEM bundle to trust instead of the system's")
    max_connections: int = Field(20, ge=1, le=1000)


ConnectionConfig = Annotated[HttpConnection, Field(discriminator="kind")]


# --- thresholds -------------------------------------------------------------------------


class Band(Model):
    """Warn and crit limits on one side of a value."""

    warn: float | None = None
    crit: float | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Band:
        if self.warn is None and self.crit is None:
            raise ValueError("a band needs warn, crit or both")
        return self


class Thresholds(Model):
    """Bands on a numeric field, with a `for` delay, hysteresis and flap detection."""

    field: str | None = Field(None, description="field to judge; default: the probe's value")
    above: Band | None = None
    below: Band | None = None
    for_: Duration = Field(0.0, alias="for", description="how long a breach lasts before firing")
    hysteresis: float = Field(
        0.0, ge=0, description="recovery margin, as a fraction of the limit (0.1 = 10 %)"
    )
    flap_low: float = Field(0.25, ge=0, le=1, description="flap ends below this change ratio")
    flap_high: float = Field(0.5, ge=0, le=1, description="flap starts above this change ratio")

    @model_validator(mode="after")
    def _some_band(self) -> Thresholds:
        if self.above is None and self.below is None:
            raise ValueError("thresholds need `above`, `below` or both")
        if self.flap_low > self.flap_high:
            raise ValueError("flap_low must not exceed flap_high")
        return self


# --- probes -----------------------------------------------------------------------------


class ProbeCommon(Model):
    id: str = Field(pattern=IDENT, description="unique name; views and runbooks refer to it")
    title: str | None = Field(None, description="panel title; default: the id")
    connection: str
    interval: Duration | None = Field(None, description="poll interval; default: `refresh`")
    timeout: Duration | None = Field(None, description="poll timeout; default: the connection's")
    unit: str | None = None
    thresholds: Thresholds | None = None
    runbook: str | None = Field(None, description="runbook suggested when this panel is red")
    history: int = Field(600, ge=10, le=100_000, description="readings kept for sparkline/detail")

    @property
    def display_title(self) -> str:
        return self.title or self.id


class HealthProbe(ProbeCommon):
    """An HTTP health endpoint; the body's own status wins over the HTTP code."""

    kind: Literal["health"]
    path: Text = "/health"
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, SecretText] = Field(default_factory=dict)
    expect_status: list[int] | None = Field(
        None, description="status codes counted as healthy when the body states no status"
    )
    value: Literal["latency_ms"] = Field(
        "latency_ms", description="the number drawn in the sparkline"
    )


ProbeConfig = Annotated[HealthProbe, Field(discriminator="kind")]


# --- views and the whole file ------------------------------------------------------------


class View(Model):
    name: str
    rows: list[list[str]] = Field(description="probe ids, row by row")


class Config(Model):
    title: str = "opstui"
    environment: str | None = Field(None, description="shown in the header; production = red")
    production_frame: bool | None = Field(
        None, description="red frame around the screen; default on when environment is production"
    )
    refresh: Duration = Field(5.0, description="default poll interval")
    read_only: bool = False
    bell: bool = Field(True, description="ring the terminal bell once when a panel enters crit")
    theme: str | None = None
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    probes: list[ProbeConfig] = Field(default_factory=list)
    views: list[View] = Field(default_factory=list)

    @property
    def is_production(self) -> bool:
        return (self.environment or "").lower() in {"prod", "production", "prd", "live"}

    @property
    def shows_production_frame(self) -> bool:
        return self.is_production if self.production_frame is None else self.production_frame

    def probe(self, probe_id: str) -> ProbeConfig:
        for probe in self.probes:
            if probe.id == probe_id:
                return probe
        raise KeyError(probe_id)

    def interval_of(self, probe: ProbeCommon) -> float:
        return probe.interval if probe.interval is not None else self.refresh

    def timeout_of(self, probe: ProbeCommon) -> float:
        if probe.timeout is not None:
            return probe.timeout
        return self.connections[probe.connection].timeout

    @model_validator(mode="after")
    def _references(self) -> Config:
        seen: set[str] = set()
        for index, probe in enumerate(self.probes):
            if probe.id in seen:
                raise ReferenceProblem(("probes", index, "id"), f"duplicate probe id {probe.id!r}")
            seen.add(probe.id)
            if probe.connection not in self.connections:
                raise ReferenceProblem(
                    ("probes", index, "connection"),
                    f"unknown connection {probe.connection!r}; defined: "
                    + (", ".join(sorted(self.connections)) or "none"),
                )
            conn = self.connections[probe.connection]
            if not _compatible(probe.kind, conn.kind):
                raise ReferenceProblem(
                    ("probes", index, "connection"),
                    f"a {probe.kind} probe cannot use the {conn.kind} connection "
                    f"{probe.connection!r}",
                )
        for vi, view in enumerate(self.views):
            for ri, row in enumerate(view.rows):
                for ci, pid in enumerate(row):
                    if pid not in seen:
                        raise ReferenceProblem(
                            ("views", vi, "rows", ri, ci), f"unknown probe {pid!r}"
                        )
        return self


_KIND_CONNECTIONS: dict[str, set[str]] = {"health": {"http"}}


def _compatible(probe_kind: str, connection_kind: str) -> bool:
    return connection_kind in _KIND_CONNECTIONS.get(probe_kind, {connection_kind})


class ReferenceProblem(ValueError):
    """A cross-reference error that knows the key path it belongs to, for the loader's line."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
