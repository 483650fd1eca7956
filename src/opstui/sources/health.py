"""The `health` probe kind: poll an HTTP health endpoint, report latency and its verdict.

The body's own status wins over the HTTP code (health_parse.py has the rules). 401/403/404
are errors, not crit: the collector probably has the wrong path or key, which says nothing
about the service. Transport failures are errors too (http.py maps their reasons).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from opstui.config.models import HealthProbe, HttpConnection
from opstui.config.types import format_duration
from opstui.sources.base import FieldValue, ProbeError, Reading, Source
from opstui.sources.health_parse import HealthParseError, HealthVerdict, normalize_health
from opstui.sources.http import HINT_CONFIG, MAX_BODY, HttpClient, HttpResponse, get_http_client

if TYPE_CHECKING:
    from opstui.config.models import ConnectionConfig, ProbeConfig
    from opstui.sources.registry import ClientPool

RAW_LIMIT = 4096  # bytes of the body kept for the detail screen
CONFIG_CODES = frozenset({401, 403, 404})
MEMO_LIMIT = RAW_LIMIT  # bodies up to this size: the last one's verdict is kept for the next


class HealthSource(Source):
    """One health probe over its connection's shared HttpClient."""

    kind: ClassVar[str] = "health"

    @classmethod
    def fields(cls, probe: ProbeConfig) -> frozenset[str] | None:
        names = ("http_status", "latency_ms", "status", "components", "components_failing")
        return frozenset(names)

    def __init__(self, probe: HealthProbe, connection: HttpConnection, client: HttpClient) -> None:
        self.probe = probe
        self.connection = connection
        self.client = client
        self.timeout = probe.timeout if probe.timeout is not None else connection.timeout
        # The last small response and what it meant: most services answer the same body
        # poll after poll, and normalize_health is pure, so an equal body has an equal verdict.
        self._last: tuple[int, str | None, bytes, HealthVerdict, str] | None = None

    @classmethod
    def build(
        cls, probe: ProbeConfig, connection: ConnectionConfig, pool: ClientPool
    ) -> HealthSource:
        if not isinstance(probe, HealthProbe):
            raise TypeError(f"HealthSource needs a health probe, got {type(probe).__name__}")
        if not isinstance(connection, HttpConnection):
            raise TypeError(f"a health probe needs an http connection, got {connection.kind}")
        return cls(probe, connection, get_http_client(pool, probe.connection, connection))

    async def poll(self) -> Reading:
        response = await self.client.fetch(
            self.probe.method,
            self.probe.path,
            headers=self.probe.headers,
            time_limit=self.timeout,
        )
        expected = self.probe.expect_status
        code = response.status_code
        if code in CONFIG_CODES and not (expected and code in expected):
            raise ProbeError(
                f"HTTP {response.status_code}",
                hint=HINT_CONFIG,
                detail=f"{self.probe.method} {self.client.shown_url(self.probe.path)}"
                f" -> {response.status_code} {response.reason}".rstrip(),
            )
        last = self._last
        if (
            last is not None
            and last[0] == code
            and last[1] == response.content_type
            and last[2] == response.body
        ):
            judged, raw = last[3], last[4]
        else:
            try:
                judged = normalize_health(
                    code, response.body, response.content_type, expect_status=expected
                )
            except HealthParseError as exc:
                raise ProbeError(f"bad response: {exc}") from exc
            raw = _raw(response)
            if len(response.body) <= MEMO_LIMIT:
                self._last = (code, response.content_type, response.body, judged, raw)
        notes = judged.notes
        if response.truncated:
            notes = (f"body larger than {MAX_BODY // 1024} KiB; read the first part only", *notes)
        fields: dict[str, FieldValue] = {
            "http_status": response.status_code,
            "latency_ms": response.latency_ms,
            "status": judged.status,
            "components": judged.total_components,
            "components_failing": judged.failing_components,
        }
        return Reading(
            value=response.latency_ms,
            fields=fields,
            latency_ms=response.latency_ms,
            verdict=judged.verdict,
            components=judged.components,
            notes=notes,
            raw=raw,
        )

    def describe(self) -> Mapping[str, Any]:
        facts: dict[str, Any] = {
            "kind": self.kind,
            "request": f"{self.probe.method} {self.client.shown_url(self.probe.path)}",
            "headers": self.client.shown_headers(self.probe.headers),
            "timeout": format_duration(self.timeout),
            "tls": _tls_words(self.connection),
            "transport": self.client.transport,
        }
        if self.probe.expect_status:
            facts["expect_status"] = list(self.probe.expect_status)
        return facts


def _raw(response: HttpResponse) -> str:
    return response.body[:RAW_LIMIT].decode("utf-8", "replace")


def _tls_words(connection: HttpConnection) -> str:
    if not connection.verify_tls:
        return "not verified"
    if connection.ca_file:
        return f"verified against {connection.ca_file}"
    return "verified"
