"""Hypothesis: normalize_health is total (typed errors only) and never calls a fail body OK."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from opstui.sources.health_parse import (
    HealthParseError,
    HealthVerdict,
    normalize_health,
)
from opstui.states import Severity

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["pass", "UP", "down", "Degraded", "fail", "OK", "status", "checks"])
)
keys = st.sampled_from(
    [
        "status",
        "state",
        "health",
        "result",
        "healthy",
        "ok",
        "up",
        "checks",
        "components",
        "info",
        "error",
        "details",
        "dependencies",
        "services",
        "observedValue",
        "observedUnit",
        "componentId",
        "name",
        "message",
        "value",
        "free",
        "lagMs",
    ]
) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)
status_codes = st.integers(min_value=-1000, max_value=2000)
content_types = (
    st.none()
    | st.sampled_from(
        ["application/json", "application/health+json", "text/html", "text/plain", ""]
    )
    | st.text(max_size=30)
)


def _judge(code: int, body: bytes, content_type: str | None) -> HealthVerdict | None:
    try:
        verdict = normalize_health(code, body, content_type)
    except HealthParseError:
        assert not 100 <= code <= 999, "a real status code must never be refused"
        return None
    assert isinstance(verdict, HealthVerdict)
    assert verdict.verdict is None or isinstance(verdict.verdict, Severity)
    assert len(verdict.components) <= verdict.total_components
    assert verdict.failing_components <= verdict.total_components
    for component in verdict.components:
        assert component.observed is None or len(component.observed) <= 60
    return verdict


@given(status_codes, st.binary(max_size=2000), content_types)
def test_arbitrary_bytes(code: int, body: bytes, content_type: str | None) -> None:
    _judge(code, body, content_type)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@settings(max_examples=300)
@given(status_codes, json_values, content_types)
def test_arbitrary_json(code: int, value: Any, content_type: str | None) -> None:
    _judge(code, _dumps(value), content_type)


# DESIGN.md section 7, written out here so a change to the module's lists is caught
DESIGN_FAIL = [
    "fail",
    "error",
    "down",
    "unhealthy",
    "red",
    "critical",
    "out_of_service",
    "shutting_down",
    "false",
]
fail_tokens = st.sampled_from(DESIGN_FAIL).flatmap(
    lambda t: st.sampled_from([t, t.upper(), t.title(), f" {t} ", t.replace("_", "-")])
)


@settings(max_examples=150)
@given(
    st.integers(min_value=100, max_value=999),
    fail_tokens,
    st.dictionaries(keys, json_values, max_size=6),
)
def test_top_level_fail_status_is_never_ok(code: int, token: str, rest: dict[str, Any]) -> None:
    body = {**rest, "status": token}
    verdict = normalize_health(code, _dumps(body), "application/json")
    assert verdict.verdict is Severity.CRIT
    assert verdict.verdict is not Severity.OK


@given(st.integers(min_value=100, max_value=999), st.dictionaries(keys, json_values, max_size=6))
def test_a_verdict_is_always_given_for_a_real_status_code(code: int, body: dict[str, Any]) -> None:
    # with a real status code the HTTP rules always apply as the last resort
    assert normalize_health(code, _dumps(body), None).verdict is not None
