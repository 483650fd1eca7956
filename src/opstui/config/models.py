"""The config language as pydantic v2 models (DESIGN.md section 4).

Every model forbids unknown keys, so a typo is an error with its line, not a silent default.
Connections and probes are unions discriminated by `kind`. Each backend's models live in
config/kinds/<backend>.py (its connection and its probe kinds, built on config/base.py); a new
kind is one class there, one member of `ConnectionConfig` / `ProbeConfig` here and, for probes,
one line in `_KIND_CONNECTIONS` (which connection kinds it may use).

Validators raise ValueError with short plain messages; where the problem belongs to a key
below the validated value, they raise ReferenceProblem(s) carrying that key's relative path,
so the loader can point at the right line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, model_validator

from opstui.config.base import (
    IDENT,
    IDENT_HINT,
    IDENT_RE,
    Band,
    Headers,
    Model,
    ProbeCommon,
    ReferenceProblem,
    ReferenceProblems,
    Thresholds,
    is_sensitive_header,
    raise_all,
)
from opstui.config.kinds.aws import AwsConnection, EcsProbe
from opstui.config.kinds.http import (
    HealthProbe,
    HttpConnection,
    OffOrigin,
    ScrapeProbe,
    StatusCode,
    check_host_header,
    join_on_origin,
    method_override,
)
from opstui.config.kinds.postgres import PostgresConnection, SqlProbe
from opstui.config.kinds.prometheus import PrometheusConnection, PrometheusProbe, ViaPrometheus
from opstui.config.kinds.redis import QueueProbe, RedisConnection, RedisInfoProbe
from opstui.config.runbooks import (
    RUNBOOK_KIND_CONNECTIONS,
    ActionConfig,
    ParamSpec,
    Runbook,
    StepConfig,
    Then,
    step_connection,
)
from opstui.config.serve import ServeConfig
from opstui.config.types import PositiveDuration, Secret, Text

__all__ = [
    "IDENT",
    "IDENT_HINT",
    "ActionConfig",
    "AwsConnection",
    "Band",
    "Config",
    "ConnectionConfig",
    "EcsProbe",
    "Headers",
    "HealthProbe",
    "HttpConnection",
    "Model",
    "ParamSpec",
    "PostgresConnection",
    "ProbeCommon",
    "ProbeConfig",
    "PrometheusConnection",
    "PrometheusProbe",
    "QueueProbe",
    "RedisConnection",
    "RedisInfoProbe",
    "ReferenceProblem",
    "ReferenceProblems",
    "Runbook",
    "ScrapeProbe",
    "SqlProbe",
    "StatusCode",
    "StepConfig",
    "Then",
    "Thresholds",
    "ViaPrometheus",
    "View",
    "is_sensitive_header",
]

# --- the unions: a new kind is one member more, plus its line in _KIND_CONNECTIONS ---------

ConnectionConfig = Annotated[
    HttpConnection | RedisConnection | PostgresConnection | AwsConnection | PrometheusConnection,
    Field(discriminator="kind"),
]

ProbeConfig = Annotated[
    HealthProbe
    | ScrapeProbe
    | QueueProbe
    | RedisInfoProbe
    | SqlProbe
    | EcsProbe
    | PrometheusProbe,
    Field(discriminator="kind"),
]

# Which connection kinds each probe kind may use.
_KIND_CONNECTIONS: dict[str, set[str]] = {
    "health": {"http"},
    "scrape": {"http"},
    "queue": {"redis"},
    "redis_info": {"redis"},
    "sql": {"postgres"},
    "ecs": {"aws"},
    "prometheus": {"prometheus"},
}


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
        raise_all(problems)
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
    runbooks: list[Runbook] = Field(
        default_factory=list, description="procedures with diagnose steps and keybound actions"
    )
    audit_log: Text | None = Field(
        None, description="JSONL audit file; default: opstui/audit.jsonl in the user state dir"
    )
    via_prometheus: ViaPrometheus | None = Field(
        None,
        description="draw panels from `opstui export` series in this Prometheus instead of "
        "polling the backends (a URL, or a mapping with url, match, headers, timeout)",
    )
    serve: ServeConfig | None = Field(
        None, description="`opstui serve` authentication; without it serve is read-only"
    )

    _deferred_secrets: tuple[str, ...] = PrivateAttr(default=())
    _redactor: Any = PrivateAttr(default=None)  # opstui.redaction.redactor_for's cache

    @property
    def deferred_secrets(self) -> tuple[str, ...]:
        """Why some secrets have no value (loaded with defer_secrets: a view that polls
        nothing); an action that needs one fails saying so. Empty for a normal load."""
        return self._deferred_secrets

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

    def runbook(self, runbook_id: str) -> Runbook:
        for runbook in self.runbooks:
            if runbook.id == runbook_id:
                return runbook
        raise KeyError(runbook_id)

    def runbooks_for(self, probe_id: str) -> list[Runbook]:
        """Runbooks linked to a probe: its own `runbook:` first, then those listing it."""
        linked: list[Runbook] = []
        own = next((p.runbook for p in self.probes if p.id == probe_id), None)
        if own is not None:
            linked.extend(r for r in self.runbooks if r.id == own)
        linked.extend(r for r in self.runbooks if probe_id in r.probes and r not in linked)
        return linked

    def interval_of(self, probe: ProbeCommon) -> float:
        return probe.interval if probe.interval is not None else self.refresh

    def effective_probe(self, probe: ProbeConfig) -> ProbeConfig:
        """The probe with its interval and timeout filled in from the defaults, so a source
        knows its real cadence (a Prometheus backfill picks its step from it)."""
        return probe.model_copy(
            update={"interval": self.interval_of(probe), "timeout": self.timeout_of(probe)}
        )

    def timeout_of(self, probe: ProbeCommon) -> float:
        if probe.timeout is not None:
            return probe.timeout
        return self.connections[probe.connection].timeout

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = list(_connection_names(self.connections))
        problems += _probe_references(self.probes, self.connections)
        problems += _view_references(self.views, {p.id for p in self.probes})
        problems += _runbook_references(self)
        problems += _http_requests(self)
        raise_all(problems)
        return self


def _connection_names(connections: Mapping[str, object]) -> Iterable[ReferenceProblem]:
    for name in connections:
        if not IDENT_RE.match(name):
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


def _runbook_references(config: Config) -> Iterable[ReferenceProblem]:
    probe_ids = {p.id for p in config.probes}
    runbook_ids: dict[str, int] = {}
    for ri, runbook in enumerate(config.runbooks):
        if runbook.id in runbook_ids:
            yield ReferenceProblem(("runbooks", ri, "id"), f"duplicate runbook id {runbook.id!r}")
        runbook_ids.setdefault(runbook.id, ri)
        for pi, pid in enumerate(runbook.probes):
            if pid not in probe_ids:
                yield ReferenceProblem(("runbooks", ri, "probes", pi), f"unknown probe {pid!r}")
        steps: list[tuple[str, int, object]] = [
            ("diagnose", i, s) for i, s in enumerate(runbook.diagnose)
        ]
        steps += [("actions", i, a) for i, a in enumerate(runbook.actions)]
        for section, index, step in steps:
            yield from _step_references(config, probe_ids, ("runbooks", ri, section, index), step)
    for index, probe in enumerate(config.probes):
        if probe.runbook is not None and probe.runbook not in runbook_ids and config.runbooks:
            yield ReferenceProblem(
                ("probes", index, "runbook"), f"unknown runbook {probe.runbook!r}"
            )


def _step_references(
    config: Config, probe_ids: set[str], at: tuple[str | int, ...], step: object
) -> Iterable[ReferenceProblem]:
    kind = str(getattr(step, "kind", ""))
    name = step_connection(step)
    if name is not None:
        connection = config.connections.get(name)
        wanted = RUNBOOK_KIND_CONNECTIONS.get(kind)
        if connection is None:
            yield ReferenceProblem(
                (*at, "connection"),
                f"unknown connection {name!r}; defined: "
                + (", ".join(sorted(config.connections)) or "none"),
            )
        elif wanted is not None and connection.kind != wanted:
            yield ReferenceProblem(
                (*at, "connection"),
                f"a {kind} step needs a {wanted} connection, {name!r} is {connection.kind}",
            )
    watched = getattr(step, "watch", None)
    if isinstance(watched, str) and watched not in probe_ids:
        yield ReferenceProblem((*at, "watch"), f"unknown probe {watched!r}")
    then = getattr(step, "then", None)
    if isinstance(then, Then) and then.watch not in probe_ids:
        yield ReferenceProblem((*at, "then", "watch"), f"unknown probe {then.watch!r}")


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def _known_base(connection: HttpConnection) -> str | None:
    """The base URL as far as validate may use it: None when a secret in it is not set."""
    base = connection.base_url
    if isinstance(base, Secret):
        return None if base.missing is not None else base.reveal()
    return base


def _http_requests(config: Config) -> Iterable[ReferenceProblem]:
    """DESIGN.md section 6, points 1 and 5, for what is known at validate: a literal path
    (steps and probes) stays on its connection's origin, and a probe's request names no
    method but its own (a probe only reads)."""
    for index, probe in enumerate(config.probes):
        connection = config.connections.get(probe.connection)
        if not isinstance(probe, HealthProbe | ScrapeProbe) or not isinstance(
            connection, HttpConnection
        ):
            continue
        yield from _path_on_origin(connection, probe.path, ("probes", index, "path"))
        own = probe.headers if isinstance(probe, HealthProbe) else {}
        yield from _host_on_origin(connection, own, ("probes", index, "headers"))
        override = method_override(_header_pairs(own), probe.path)
        if override is not None:
            yield ReferenceProblem(
                ("probes", index, "headers" if own else "path"),
                f"{override}; a probe only reads",
            )
        override = method_override(_header_pairs(connection.headers), "")
        if override is not None:
            yield ReferenceProblem(
                ("probes", index, "connection"),
                f"connection {probe.connection!r}: {override}; a probe only reads",
            )
    for ri, runbook in enumerate(config.runbooks):
        sections = (("diagnose", runbook.diagnose), ("actions", runbook.actions))
        for section, steps in sections:
            for index, step in enumerate(steps):
                connection = config.connections.get(step_connection(step) or "")
                path = getattr(step, "path", None)
                if step.kind != "http" or not isinstance(connection, HttpConnection):
                    continue
                if isinstance(path, str) and not _is_template(path):
                    at = ("runbooks", ri, section, index, "path")
                    yield from _path_on_origin(connection, path, at)
                own = {
                    k: v
                    for k, v in (getattr(step, "headers", None) or {}).items()
                    if isinstance(v, Secret) or not _is_template(v)
                }
                at = ("runbooks", ri, section, index, "headers")
                yield from _host_on_origin(connection, own, at)
    for name, connection in config.connections.items():
        if isinstance(connection, HttpConnection):
            where = ("connections", name, "headers")
            yield from _host_on_origin(connection, connection.headers, where)


def _host_on_origin(
    connection: HttpConnection, headers: Mapping[str, str | Secret], at: tuple[str | int, ...]
) -> Iterable[ReferenceProblem]:
    base = _known_base(connection)
    if base is None:
        return
    try:
        check_host_header(base, _header_pairs(headers))
    except OffOrigin as exc:
        yield ReferenceProblem(at, str(exc))


def _header_pairs(headers: Mapping[str, str | Secret]) -> list[tuple[str, str | None]]:
    return [(k, None if isinstance(v, Secret) else v) for k, v in headers.items()]


def _path_on_origin(
    connection: HttpConnection, path: str, at: tuple[str | int, ...]
) -> Iterable[ReferenceProblem]:
    base = _known_base(connection)
    if base is None:
        return
    try:
        join_on_origin(base, path)
    except OffOrigin as exc:
        yield ReferenceProblem(at, f"path {exc}")
