"""Turns one health response (code, body, content type) into a verdict (DESIGN.md section 7).

Pure and total: no I/O, no clock. Real health bodies come in many dialects (IETF
draft-inadarei `checks`, Spring Actuator `components`, NestJS Terminus `info`/`error`/
`details`, ad-hoc `dependencies`/`services`); garbage bodies are a fact to report, not a
crash, so they yield `verdict=None` plus a note. The only exception raised is
HealthParseError, for inputs no HTTP response can have.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from opstui.sources.base import Component
from opstui.states import Severity

OK_TOKENS = frozenset({"pass", "ok", "up", "healthy", "green", "serving", "ready", "true"})
WARN_TOKENS = frozenset({"warn", "warning", "degraded", "yellow"})
FAIL_TOKENS = frozenset(
    {
        "fail",
        "error",
        "down",
        "unhealthy",
        "red",
        "critical",
        "out_of_service",
        "shutting_down",
        "not_ready",
        "false",
    }
)

STATUS_KEYS = ("status", "state", "health", "result")
BOOLEAN_KEYS = ("healthy", "ok", "up")
COMPONENT_NAME_KEYS = ("componentId", "name", "id", "component", "check", "key")

MAX_COMPONENTS = 100  # kept in the verdict; counts cover them all
MAX_DEPTH = 8  # nesting followed in Spring composites and wrapped statuses
MAX_TEXT = 60  # observed strings and tokens on a panel
MAX_NAME = 80
MAX_TOKEN_BODY = 32  # a plain-text body this short may be a bare token ("OK")

Basis = Literal["body", "components", "http"]


class HealthParseError(ValueError):
    """The input cannot be an HTTP response (e.g. a status code outside 100-999)."""


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    """What a health response says.

    `basis` says which rule decided: the body's own status, its worst component, or (when the
    body states nothing, e.g. garbage, HTML, empty) the HTTP code, as DESIGN.md section 7
    requires; so for a real status code `verdict` is never None. `status` is the overall
    token as the service wrote it ("" if none). Counts cover every component, past the cap.
    """

    verdict: Severity | None
    status: str
    components: tuple[Component, ...] = ()
    notes: tuple[str, ...] = ()
    basis: Basis | None = None
    total_components: int = 0
    failing_components: int = 0


def token_severity(token: object) -> Severity | None:
    """The severity of a status token or boolean; None when it is not one we know."""
    if isinstance(token, bool):
        return Severity.OK if token else Severity.CRIT
    if not isinstance(token, str):
        return None
    key = token.strip().lower().replace("-", "_").replace(" ", "_")
    if key in OK_TOKENS:
        return Severity.OK
    if key in WARN_TOKENS:
        return Severity.WARN
    if key in FAIL_TOKENS:
        return Severity.CRIT
    return None


def normalize_health(
    status_code: int,
    body: bytes,
    content_type: str | None,
    *,
    expect_status: Collection[int] | None = None,
) -> HealthVerdict:
    """Judge one response: the body's own status wins, then the worst component, then HTTP."""
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise HealthParseError(f"HTTP status must be an integer, not {type(status_code).__name__}")
    if not 100 <= status_code <= 999:
        raise HealthParseError(f"HTTP status {status_code} is outside 100-999")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise HealthParseError(f"body must be bytes, not {type(body).__name__}")
    data = bytes(body)
    notes: list[str] = []

    document, parsed = _parse_json(data)
    if parsed:
        overall, token, components = _read_document(document, notes)
    else:
        components = []
        overall, token = _plain_token(data)
        if overall is None and data.strip():
            notes.append(_not_json_note(content_type))

    failing = sum(1 for c in components if c.severity is Severity.CRIT)
    kept = tuple(components[:MAX_COMPONENTS])
    if len(components) > MAX_COMPONENTS:
        notes.append(f"{len(components) - MAX_COMPONENTS} more components not shown")

    if overall is not None:
        verdict: Severity | None = overall
        basis: Basis = "body"
        _contradictions(status_code, overall, token, failing, notes)
    elif any(c.severity is not None for c in components):
        verdict = Severity.worst(*(c.severity for c in components))
        basis = "components"
        if verdict is Severity.CRIT and 200 <= status_code < 300:
            notes.append(f"HTTP {status_code} but {_plural(failing, 'component')} fail")
    else:
        verdict = _http_verdict(status_code, expect_status)
        basis = "http"
        notes.append(f"body states no status; judged by HTTP {status_code}")

    return HealthVerdict(
        verdict=verdict,
        status=token,
        components=kept,
        notes=tuple(notes),
        basis=basis,
        total_components=len(components),
        failing_components=failing,
    )


# --- body decoding ------------------------------------------------------------------------


def _parse_json(data: bytes) -> tuple[Any, bool]:
    """(document, True) when the body is JSON, whatever the content type said."""
    if not data.strip():
        return None, False
    try:
        return json.loads(data), True
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, int digits
        return None, False


def _plain_token(data: bytes) -> tuple[Severity | None, str]:
    """A short text body that is just a status word ("OK", "healthy") counts as a status."""
    text = data.decode("utf-8", "replace").strip()
    if not text or len(text) > MAX_TOKEN_BODY:
        return None, ""
    severity = token_severity(text)
    return (severity, text) if severity is not None else (None, "")


def _not_json_note(content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip()
    return f"body is not JSON ({_clip(kind, 40)})" if kind else "body is not JSON"


# --- the document ---------------------------------------------------------------------------


def _read_document(document: Any, notes: list[str]) -> tuple[Severity | None, str, list[Component]]:
    """Overall status and components of a parsed JSON body."""
    if isinstance(document, bool | str):
        severity = token_severity(document)
        token = _token_text(document) if severity is not None else ""
        if severity is None and isinstance(document, str):
            notes.append(f"unknown status {_clip(document, 30)!r}")
        return severity, token, []
    if not isinstance(document, dict):
        return None, "", []

    overall, token, used_key = _overall_status(document, notes)
    components = _components(document, exclude=used_key)
    return overall, token, components


def _overall_status(
    document: Mapping[str, Any], notes: list[str]
) -> tuple[Severity | None, str, str | None]:
    """Status under status|state|health|result, else a boolean healthy|ok|up."""
    for key in STATUS_KEYS:
        found = _get_key(document, key)
        if found is None:
            continue
        real_key, value = found
        severity, token = _status_value(value, 0)
        if severity is not None:
            return severity, token, real_key
        if token:
            notes.append(f"unknown status {token!r}")
    for key in BOOLEAN_KEYS:
        found = _get_key(document, key)
        if found is None:
            continue
        real_key, value = found
        if isinstance(value, bool | str):
            severity = token_severity(value)
            if severity is not None:
                return severity, _token_text(value), real_key
    return None, "", None


def _status_value(value: Any, depth: int) -> tuple[Severity | None, str]:
    """A token, a boolean, or a wrapper like {"status": {"code": "UP"}}."""
    if isinstance(value, bool | str):
        return token_severity(value), _token_text(value)
    if isinstance(value, dict) and depth < 2:
        for key in (*STATUS_KEYS, "code", "indicator"):
            found = _get_key(value, key)
            if found is not None:
                severity, token = _status_value(found[1], depth + 1)
                if severity is not None or token:
                    return severity, token
    return None, ""


def _get_key(document: Mapping[str, Any], key: str) -> tuple[str, Any] | None:
    """Exact key first, then a case-insensitive match ("Status", "STATE")."""
    if key in document:
        return key, document[key]
    for real_key, value in document.items():
        if isinstance(real_key, str) and real_key.lower() == key:
            return real_key, value
    return None


def _contradictions(
    status_code: int, overall: Severity, token: str, failing: int, notes: list[str]
) -> None:
    if overall is Severity.CRIT and 200 <= status_code < 300:
        notes.append(f"HTTP {status_code} but body says {token or 'fail'}")
    elif overall is Severity.OK and status_code >= 500:
        notes.append(f"HTTP {status_code} but body says {token or 'ok'}")
    if overall is Severity.OK and failing:
        notes.append(f"body says {token or 'ok'} but {_plural(failing, 'component')} fail")


def _http_verdict(status_code: int, expect_status: Collection[int] | None) -> Severity:
    """The code alone: expected (or 2xx/3xx) is ok, anything else is crit."""
    if expect_status:
        return Severity.OK if status_code in expect_status else Severity.CRIT
    return Severity.OK if 200 <= status_code < 400 else Severity.CRIT


# --- components -----------------------------------------------------------------------------


def _components(document: Mapping[str, Any], exclude: str | None) -> list[Component]:
    """Every component the body lists, from each dialect's container."""
    found: list[Component] = []
    checks = _get_key(document, "checks")
    if checks is not None:
        found.extend(_entries(checks[1]))
    spring = _get_key(document, "components")
    if spring is not None and isinstance(spring[1], dict):
        found.extend(_spring(spring[1], "", 0))
    found.extend(_terminus(document))
    for container in ("dependencies", "services"):
        entry = _get_key(document, container)
        if entry is not None:
            found.extend(_entries(entry[1]))
    if not found:
        found.extend(_top_level(document, exclude))
    return found


def _entries(value: Any) -> Iterator[Component]:
    """`checks`, `dependencies`, `services`: a dict of arrays (IETF), of objects or of
    tokens; or a list of objects."""
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, list):
                objects = [o for o in item if isinstance(o, dict)]
                for index, obj in enumerate(objects):
                    label = str(name)
                    if len(objects) > 1:
                        sub = _name_of(obj)
                        label = f"{name} {sub}" if sub else f"{name}#{index + 1}"
                    yield _component(label, obj)
            elif isinstance(item, dict):
                yield _component(str(name), item)
            elif isinstance(item, bool | str):
                yield Component(_clip(str(name), MAX_NAME), token_severity(item), _token_text(item))
    elif isinstance(value, list):
        for index, obj in enumerate(value):
            if isinstance(obj, dict):
                yield _component(_name_of(obj) or f"#{index + 1}", obj)


def _spring(components: Mapping[str, Any], prefix: str, depth: int) -> Iterator[Component]:
    """Spring Actuator: leaves of nested composites, named `redis.primary`."""
    for name, item in components.items():
        if not isinstance(item, dict):
            continue
        label = f"{prefix}{name}"
        nested = _get_key(item, "components")
        if nested is not None and isinstance(nested[1], dict) and depth < MAX_DEPTH:
            yield from _spring(nested[1], f"{label}.", depth + 1)
        else:
            yield _component(label, item)


def _terminus(document: Mapping[str, Any]) -> Iterator[Component]:
    """NestJS Terminus: `details` holds every indicator; else `info` plus `error`."""
    details = _get_key(document, "details")
    if details is not None and isinstance(details[1], dict) and _all_objects(details[1]):
        sections: list[Mapping[str, Any]] = [details[1]]
    else:
        sections = []
        for key in ("info", "error"):
            entry = _get_key(document, key)
            if entry is not None and isinstance(entry[1], dict) and _all_objects(entry[1]):
                sections.append(entry[1])
    seen: set[str] = set()
    for section in sections:
        for name, item in section.items():
            if str(name) not in seen:
                seen.add(str(name))
                yield _component(str(name), item)


def _top_level(document: Mapping[str, Any], exclude: str | None) -> Iterator[Component]:
    """Old Spring (1.x) style: components as top-level objects that carry a status."""
    for name, item in document.items():
        if name == exclude or not isinstance(item, dict):
            continue
        if any(_get_key(item, key) is not None for key in STATUS_KEYS):
            yield _component(str(name), item)


def _all_objects(section: Mapping[str, Any]) -> bool:
    """A Terminus section: every entry an object with a status (not e.g. build info)."""
    return bool(section) and all(
        isinstance(item, dict) and any(_get_key(item, key) is not None for key in STATUS_KEYS)
        for item in section.values()
    )


def _name_of(obj: Mapping[str, Any]) -> str:
    for key in COMPONENT_NAME_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(value, MAX_NAME)
    return ""


def _component(name: str, obj: Mapping[str, Any]) -> Component:
    severity: Severity | None = None
    token = ""
    for key in STATUS_KEYS:
        found = _get_key(obj, key)
        if found is not None:
            severity, token = _status_value(found[1], 0)
            if severity is not None or token:
                break
    if severity is None and not token:
        for key in BOOLEAN_KEYS:
            found = _get_key(obj, key)
            if found is not None and isinstance(found[1], bool):
                severity, token = token_severity(found[1]), _token_text(found[1])
                break
    return Component(_clip(name, MAX_NAME), severity, token, _observed(obj))


# --- observed values ------------------------------------------------------------------------

_VALUE_KEYS = (
    "observedValue",
    "value",
    "latencyMs",
    "latency_ms",
    "latency",
    "responseTimeMs",
    "responseTime",
    "response_time_ms",
    "lagMs",
    "lag",
    "delay",
    "durationMs",
    "duration",
    "heapUsed",
    "rss",
    "used",
    "usage",
    "percent",
    "free",
)
_MESSAGE_KEYS = ("output", "message", "error", "reason")
_BYTE_KEYS = frozenset({"heapused", "heaptotal", "rss", "used", "free", "total", "external"})
_MS_HINTS = ("latency", "responsetime", "response_time", "lag", "delay", "duration")


def _observed(obj: Mapping[str, Any]) -> str | None:
    """A short reading of what the component saw: "812 MiB", "12ms", or its error message."""
    try:
        for holder in (obj, obj.get("details"), obj.get("data")):
            if not isinstance(holder, dict):
                continue
            for key in _VALUE_KEYS:
                if key in holder:
                    rendered = _render_value(key, holder[key], _unit_of(holder))
                    if rendered is not None:
                        return _clip(rendered, MAX_TEXT)
        for holder in (obj, obj.get("details")):
            if not isinstance(holder, dict):
                continue
            for key in _MESSAGE_KEYS:
                value = holder.get(key)
                if isinstance(value, str) and value.strip():
                    return _clip(value, MAX_TEXT)
    except (OverflowError, ValueError):
        return None
    return None


def _unit_of(holder: Mapping[str, Any]) -> str | None:
    for key in ("observedUnit", "unit", "units"):
        value = holder.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _render_value(key: str, value: Any, unit: str | None) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _render_number(key, value, unit)
    if isinstance(value, str) and value.strip():
        return _clip(f"{value} {unit}" if unit else value, MAX_TEXT)
    return None


def _render_number(key: str, value: float, unit: str | None) -> str:
    lowered = key.lower()
    if unit is None:
        if lowered.endswith("ms") or any(h in lowered for h in _MS_HINTS):
            unit = "ms"
        elif lowered in _BYTE_KEYS or "bytes" in lowered:
            unit = "bytes"
        elif "percent" in lowered:
            unit = "percent"
    unit_key = (unit or "").lower()
    if unit_key in {"bytes", "byte", "b"}:
        return _bytes(value)
    if unit_key in {"ms", "millis", "milliseconds"}:
        return f"{_short(value)}ms"
    if unit_key in {"s", "sec", "seconds"}:
        return f"{_short(value)}s"
    if unit_key in {"percent", "%", "pct"}:
        return f"{_short(value)}%"
    return _clip(f"{_short(value)} {unit}" if unit else _short(value), MAX_TEXT)


def _bytes(value: float) -> str:
    amount = float(value)
    if not math.isfinite(amount):
        return f"{amount} B"
    for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or suffix == "TiB":
            return f"{_short(amount)} {suffix}" if suffix != "B" else f"{round(amount)} B"
        amount /= 1024
    return f"{_short(amount)} TiB"  # pragma: no cover - the loop always returns


def _short(value: float) -> str:
    """812, 12, 1.5, 0.25: few digits, no float noise."""
    if isinstance(value, int) and abs(value) < 10**15:
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if abs(number) >= 100:
        return f"{number:.0f}"
    if abs(number) >= 1:
        return f"{number:.1f}".removesuffix(".0")
    return f"{number:.2g}"


# --- text helpers ---------------------------------------------------------------------------


def _token_text(value: bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _clip(value.strip(), MAX_TEXT)


def _clip(text: str, limit: int) -> str:
    """One line, printable, at most `limit` characters."""
    if text.isprintable():
        flat = text.strip()
    else:
        flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
