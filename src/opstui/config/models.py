"""The config language as pydantic v2 models (DESIGN.md section 4).

Every model forbids unknown keys, so a typo is an error with its line, not a silent default.
Connections and probes are unions discriminated by `kind`: a later kind is one more class
with its own `kind: Literal[...]`, added to `ConnectionConfig` / `ProbeConfig` and, for probes,
to `_KIND_CONNECTIONS` (which connection kinds it may use).

Validators raise ValueError with short plain messages; where the problem belongs to a key
below the validated value, they raise ReferenceProblem(s) carrying that key's relative path,
so the loader can point at the right line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    model_validator,
)

from opstui.config.types import (
    Duration,
    HttpUrl,
    PositiveDuration,
    Secret,
    SecretText,
    Text,
    is_reference,
)

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_IDENT_RE = re.compile(IDENT)
IDENT_HINT = "use letters, digits, _ . - and start with a letter or digit"


class ReferenceProblem(ValueError):
    """An error that knows the key path it belongs to, for the loader's line.

    `loc` is relative to the value whose validator raised it (the whole Config for
    cross-references, the headers mapping for a literal secret, ...).
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class ReferenceProblems(ValueError):
    """Several ReferenceProblems found by one validator, reported together."""

    def __init__(self, problems: list[ReferenceProblem]) -> None:
        super().__init__(problems[0].message if problems else "invalid")
        self.problems = problems


def _raise_all(problems: list[ReferenceProblem]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ReferenceProblems(problems)


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        populate_by_name=True,
        serialize_by_alias=True,
    )


# --- headers ------------------------------------------------------------------------------

_SENSITIVE = ("authorization", "cookie", "token", "key", "secret", "password")


def is_sensitive_header(name: str) -> bool:
    """Header names whose values are credentials: they must come from `${ENV}` or `file:`."""
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE)


def _no_literal_secrets(headers: dict[str, str | Secret]) -> dict[str, str | Secret]:
    problems = [
        ReferenceProblem(
            (name,),
            f"header {name!r} carries a credential: write it as ${{ENV_VAR}} or file:/path, "
            "not as a literal",
        )
        for name, value in headers.items()
        if is_sensitive_header(name) and not is_reference(value)
    ]
    _raise_all(problems)
    return headers


Headers = Annotated[dict[str, SecretText], AfterValidator(_no_literal_secrets)]


# --- connections ------------------------------------------------------------------------


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


ConnectionConfig = Annotated[HttpConnection, Field(discriminator="kind")]


# --- thresholds -------------------------------------------------------------------------


class Band(Model):
    """Warn and crit limits on one side of a value."""

    warn: FiniteFloat | None = Field(None, description="limit for warn")
    crit: FiniteFloat | None = Field(None, description="limit for crit")

    @model_validator(mode="after")
    def _one_limit(self) -> Band:
        if self.warn is None and self.crit is None:
            raise ValueError("a band needs warn, crit or both")
        return self


class Thresholds(Model):
    """Bands on a numeric field, with a `for` delay, hysteresis and flap detection."""

    field: str | None = Field(None, description="field to judge; default: the probe's value")
    above: Band | None = Field(None, description="breached when the value is above a limit")
    below: Band | None = Field(None, description="breached when the value is below a limit")
    for_: Duration = Field(0.0, alias="for", description="how long a breach lasts before firing")
    hysteresis: FiniteFloat = Field(
        0.0, ge=0, description="recovery margin, as a fraction of the limit (0.1 = 10 %)"
    )
    flap_low: FiniteFloat = Field(
        0.25, ge=0, le=1, description="flapping ends below this change ratio"
    )
    flap_high: FiniteFloat = Field(
        0.5, ge=0, le=1, description="flapping starts above this change ratio"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Thresholds:
        if self.above is None and self.below is None:
            raise ValueError("thresholds need `above`, `below` or both")
        problems: list[ReferenceProblem] = []
        if self.flap_low > self.flap_high:
            problems.append(
                ReferenceProblem(
                    ("flap_low",),
                    f"flap_low ({self.flap_low:g}) must not exceed flap_high ({self.flap_high:g})",
                )
            )
        above, below = self.above, self.below
        if above and above.warn is not None and above.crit is not None and above.warn > above.crit:
            problems.append(
                ReferenceProblem(
                    ("above", "warn"),
                    f"above: warn ({above.warn:g}) must not exceed crit ({above.crit:g})",
                )
            )
        if below and below.warn is not None and below.crit is not None and below.warn < below.crit:
            problems.append(
                ReferenceProblem(
                    ("below", "warn"),
                    f"below: warn ({below.warn:g}) must not be under crit ({below.crit:g})",
                )
            )
        _raise_all(problems)
        return self


# --- probes -----------------------------------------------------------------------------


class ProbeCommon(Model):
    id: str = Field(pattern=IDENT, description="unique name; views and runbooks refer to it")
    title: Text | None = Field(None, description="panel title; default: the id")
    connection: str = Field(description="name of the connection to poll through")
    interval: PositiveDuration | None = Field(None, description="poll interval; default: `refresh`")
    timeout: PositiveDuration | None = Field(
        None, description="poll timeout; default: the connection's"
    )
    unit: str | None = Field(None, description="unit shown after the value")
    thresholds: Thresholds | None = Field(None, description="bands that turn the panel warn/crit")
    runbook: str | None = Field(None, description="runbook suggested when this panel is red")
    history: int = Field(600, ge=10, le=100_000, description="readings kept for sparkline/detail")

    @property
    def display_title(self) -> str:
        return self.title or self.id


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


ProbeConfig = Annotated[HealthProbe, Field(discriminator="kind")]

# Which connection kinds each probe kind may use.
_KIND_CONNECTIONS: dict[str, set[str]] = {"health": {"http"}}


def _compatible(probe_kind: str, connection_kind: str) -> bool:
    return connection_kind in _KIND_CONNECTIONS.get(probe_kind, {connection_kind})


# --- views and the whole file ------------------------------------------------------------

Row = Annotated[list[str], Field(min_length=1)]


class View(Model):
    name: str = Field(min_length=1, description="shown in the header; keys 1-9 pick views")
    rows: list[Row] = Field(min_length=1, description="probe ids, row by row")

    @model_validator(mode="after")
    def _each_probe_once(self) -> View:
        seen: set[str] = set()
        problems: list[ReferenceProblem] = []
        for ri, row in enumerate(self.rows):
            for ci, pid in enumerate(row):
                if pid in seen:
                    problems.append(
                        ReferenceProblem(("rows", ri, ci), f"probe {pid!r} is twice in this view")
                    )
                seen.add(pid)
        _raise_all(problems)
        return self


class Config(Model):
    title: Text = Field("opstui", description="shown in the header")
    environment: Text | None = Field(None, description="shown in the header; production = red")
    production_frame: bool | None = Field(
        None, description="red frame around the screen; default on when environment is production"
    )
    refresh: PositiveDuration = Field(5.0, description="default poll interval")
    read_only: bool = Field(False, description="refuse every mutating action")
    bell: bool = Field(True, description="ring the terminal bell once when a panel enters crit")
    theme: str | None = Field(None, description="theme name (a YAML file in themes/)")
    connections: dict[str, ConnectionConfig] = Field(
        default_factory=dict, description="named backends, shared by probes and actions"
    )
    probes: list[ProbeConfig] = Field(default_factory=list, description="the panels")
    views: list[View] = Field(
        default_factory=list, description="grids of panels; default: one view of all probes"
    )

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
        problems = list(_connection_names(self.connections))
        problems += _probe_references(self.probes, self.connections)
        problems += _view_references(self.views, {p.id for p in self.probes})
        _raise_all(problems)
        return self


def _connection_names(connections: Mapping[str, object]) -> Iterable[ReferenceProblem]:
    for name in connections:
        if not _IDENT_RE.match(name):
            yield ReferenceProblem(
                ("connections", name), f"bad connection name {name!r}: {IDENT_HINT}"
            )


def _probe_references(
    probes: list[ProbeConfig], connections: Mapping[str, ConnectionConfig]
) -> Iterable[ReferenceProblem]:
    first_at: dict[str, int] = {}
    for index, probe in enumerate(probes):
        if probe.id in first_at:
            yield ReferenceProblem(
                ("probes", index, "id"),
                f"duplicate probe id {probe.id!r} (also probes[{first_at[probe.id]}])",
            )
        else:
            first_at[probe.id] = index
        conn = connections.get(probe.connection)
        if conn is None:
            yield ReferenceProblem(
                ("probes", index, "connection"),
                f"unknown connection {probe.connection!r}; defined: "
                + (", ".join(sorted(connections)) or "none"),
            )
        elif not _compatible(probe.kind, conn.kind):
            yield ReferenceProblem(
                ("probes", index, "connection"),
                f"a {probe.kind} probe cannot use the {conn.kind} connection {probe.connection!r}",
            )


def _view_references(views: list[View], probe_ids: set[str]) -> Iterable[ReferenceProblem]:
    names: set[str] = set()
    for vi, view in enumerate(views):
        if view.name in names:
            yield ReferenceProblem(("views", vi, "name"), f"duplicate view name {view.name!r}")
        names.add(view.name)
        for ri, row in enumerate(view.rows):
            for ci, pid in enumerate(row):
                if pid not in probe_ids:
                    yield ReferenceProblem(("views", vi, "rows", ri, ci), f"unknown probe {pid!r}")
