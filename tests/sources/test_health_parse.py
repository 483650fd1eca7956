"""normalize_health on the body dialects real services send (DESIGN.md section 7)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from opstui.sources.base import Component
from opstui.sources.health_parse import (
    HealthParseError,
    HealthVerdict,
    normalize_health,
)
from opstui.states import Severity

JSON = "application/json"


def judge(body: Any, code: int = 200, content_type: str | None = JSON, **kw: Any) -> HealthVerdict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return normalize_health(code, raw, content_type, **kw)


def by_name(verdict: HealthVerdict) -> dict[str, Component]:
    return {c.name: c for c in verdict.components}


# --- IETF draft-inadarei (application/health+json) --------------------------------------

IETF_PASS = {
    "status": "pass",
    "version": "1",
    "checks": {
        "memory:utilization": [
            {
                "componentType": "system",
                "observedValue": 851443712,
                "observedUnit": "bytes",
                "status": "pass",
            }
        ],
        "postgres:responseTime": [
            {"componentId": "primary", "observedValue": 12, "observedUnit": "ms", "status": "pass"},
            {
                "componentId": "replica",
                "observedValue": 140,
                "observedUnit": "ms",
                "status": "warn",
            },
        ],
        "cpu:utilization": [{"observedValue": 85.5, "observedUnit": "percent", "status": "pass"}],
    },
}


def test_ietf_pass_with_observed_values() -> None:
    verdict = judge(IETF_PASS, content_type="application/health+json")
    assert verdict.verdict is Severity.OK
    assert verdict.status == "pass"
    assert verdict.basis == "body"
    names = by_name(verdict)
    assert names["memory:utilization"].observed == "812 MiB"
    assert names["postgres:responseTime primary"].observed == "12ms"
    assert names["postgres:responseTime replica"].severity is Severity.WARN
    assert names["cpu:utilization"].observed == "85.5%"
    assert verdict.total_components == 4
    assert verdict.failing_components == 0
    assert verdict.notes == ()


def test_ietf_warn_and_fail() -> None:
    assert judge({**IETF_PASS, "status": "warn"}).verdict is Severity.WARN
    failing = judge({**IETF_PASS, "status": "fail"}, code=503)
    assert failing.verdict is Severity.CRIT
    assert failing.notes == ()  # 503 with fail is consistent


def test_ietf_component_output_is_shown_when_no_value() -> None:
    body = {
        "status": "fail",
        "checks": {"redis:connections": [{"status": "fail", "output": "ECONNREFUSED 6379"}]},
    }
    component = judge(body, code=503).components[0]
    assert component == Component("redis:connections", Severity.CRIT, "fail", "ECONNREFUSED 6379")


# --- Spring Boot Actuator -------------------------------------------------------------------

SPRING_UP = {
    "status": "UP",
    "components": {
        "db": {
            "status": "UP",
            "details": {"database": "PostgreSQL", "validationQuery": "isValid()"},
        },
        "diskSpace": {
            "status": "UP",
            "details": {"total": 499963174912, "free": 91490615296, "threshold": 10485760},
        },
        "redis": {
            "status": "UP",
            "components": {
                "primary": {"status": "UP", "details": {"version": "7.2.4"}},
                "cache": {"status": "UP"},
            },
        },
        "ping": {"status": "UP"},
    },
}


def test_spring_nested_components_flattened() -> None:
    verdict = judge(SPRING_UP, content_type="application/vnd.spring-boot.actuator.v3+json")
    assert verdict.verdict is Severity.OK
    assert verdict.status == "UP"
    assert [c.name for c in verdict.components] == [
        "db",
        "diskSpace",
        "redis.primary",
        "redis.cache",
        "ping",
    ]
    assert by_name(verdict)["diskSpace"].observed == "85.2 GiB"


def test_spring_down_with_503() -> None:
    body = {
        "status": "DOWN",
        "components": {
            "db": {
                "status": "DOWN",
                "details": {"error": "org.postgresql.util.PSQLException: Connection refused"},
            },
            "diskSpace": {"status": "UP"},
        },
    }
    verdict = judge(body, code=503)
    assert verdict.verdict is Severity.CRIT
    assert verdict.failing_components == 1
    db = by_name(verdict)["db"]
    assert db.severity is Severity.CRIT
    assert db.observed is not None and "Connection refused" in db.observed


def test_spring_out_of_service_is_crit() -> None:
    assert judge({"status": "OUT_OF_SERVICE"}, code=503).verdict is Severity.CRIT


def test_spring_unknown_status_falls_back_to_http_with_a_note() -> None:
    verdict = judge({"status": "UNKNOWN"})
    assert verdict.verdict is Severity.OK
    assert verdict.basis == "http"
    assert "unknown status 'UNKNOWN'" in verdict.notes


# --- NestJS Terminus ---------------------------------------------------------------------------


def test_terminus_ok() -> None:
    body = {
        "status": "ok",
        "info": {"database": {"status": "up"}, "memory_heap": {"status": "up"}},
        "error": {},
        "details": {"database": {"status": "up"}, "memory_heap": {"status": "up"}},
    }
    verdict = judge(body)
    assert verdict.verdict is Severity.OK
    assert [c.name for c in verdict.components] == ["database", "memory_heap"]


def test_terminus_error() -> None:
    body = {
        "status": "error",
        "info": {"database": {"status": "up"}},
        "error": {"redis": {"status": "down", "message": "Could not connect to Redis"}},
        "details": {
            "database": {"status": "up"},
            "redis": {"status": "down", "message": "Could not connect to Redis"},
        },
    }
    verdict = judge(body, code=503)
    assert verdict.verdict is Severity.CRIT
    assert by_name(verdict)["redis"] == Component(
        "redis", Severity.CRIT, "down", "Could not connect to Redis"
    )
    assert verdict.total_components == 2


def test_terminus_without_details_merges_info_and_error() -> None:
    body = {
        "status": "shutting_down",
        "info": {"database": {"status": "up"}},
        "error": {"queue": {"status": "down"}},
    }
    verdict = judge(body, code=503)
    assert verdict.verdict is Severity.CRIT
    assert [c.name for c in verdict.components] == ["database", "queue"]


# --- the seeds ---------------------------------------------------------------------------------

SEED_000 = {
    "status": "healthy",
    "timestamp": "2026-11-21T10:00:00Z",
    "checks": {
        "memory": {"status": "ok", "heapUsed": 851443712, "heapTotal": 1073741824},
        "eventLoop": {"status": "ok", "lagMs": 12},
        "redis": {"status": "ok"},
    },
}


def test_seed_000_shape() -> None:
    verdict = judge(SEED_000)
    assert verdict.verdict is Severity.OK
    assert verdict.status == "healthy"
    names = by_name(verdict)
    assert names["memory"].observed == "812 MiB"
    assert names["eventLoop"].observed == "12ms"
    assert names["redis"].severity is Severity.OK


def test_seed_000_degraded_and_contradiction() -> None:
    degraded = {**SEED_000, "status": "degraded"}
    assert judge(degraded).verdict is Severity.WARN
    unhealthy = judge({**SEED_000, "status": "unhealthy"}, code=200)
    assert unhealthy.verdict is Severity.CRIT
    assert "HTTP 200 but body says unhealthy" in unhealthy.notes


SEED_004 = {
    "ready": False,
    "dependencies": {
        "postgres": {"status": "UNHEALTHY", "latency_ms": 5002.1, "error": "timeout"},
        "redis": {"status": "HEALTHY", "latency_ms": 0.8},
        "pms": {"status": "DEGRADED", "circuit_breaker": "half_open"},
    },
}


def test_seed_004_ready_dependencies_worst_counts() -> None:
    verdict = judge(SEED_004, code=503)
    assert verdict.verdict is Severity.CRIT
    assert verdict.basis == "components"
    assert verdict.status == ""
    names = by_name(verdict)
    assert names["postgres"] == Component("postgres", Severity.CRIT, "UNHEALTHY", "5002ms")
    assert names["redis"].observed == "0.8ms"
    assert names["pms"].severity is Severity.WARN
    assert verdict.failing_components == 1


def test_dependencies_only_warn_with_200() -> None:
    body = {"dependencies": {"redis": {"status": "healthy"}, "pms": {"status": "degraded"}}}
    verdict = judge(body)
    assert verdict.verdict is Severity.WARN
    assert verdict.notes == ()


def test_components_crit_with_200_is_flagged() -> None:
    verdict = judge({"services": {"db": "down", "cache": "up"}})
    assert verdict.verdict is Severity.CRIT
    assert "HTTP 200 but 1 component fail" in verdict.notes


# --- other shapes ---------------------------------------------------------------------------


def test_microprofile_checks_list() -> None:
    body = {
        "status": "DOWN",
        "checks": [{"name": "db", "status": "DOWN"}, {"name": "disk", "status": "UP"}],
    }
    verdict = judge(body, code=503)
    assert [c.name for c in verdict.components] == ["db", "disk"]
    assert verdict.failing_components == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"healthy": True}, Severity.OK),
        ({"healthy": False}, Severity.CRIT),
        ({"ok": True}, Severity.OK),
        ({"up": False}, Severity.CRIT),
        ({"State": "Green"}, Severity.OK),
        ({"health": "YELLOW"}, Severity.WARN),
        ({"result": "Critical"}, Severity.CRIT),
        ({"status": {"code": "UP", "description": ""}}, Severity.OK),
        ({"status": "Out-Of-Service"}, Severity.CRIT),
        ({"status": " SERVING "}, Severity.OK),
        (True, Severity.OK),
        ("down", Severity.CRIT),
    ],
)
def test_status_keys_and_tokens(body: Any, expected: Severity) -> None:
    assert judge(body).verdict is expected


# DESIGN.md section 7 plus readiness words (ready, not_ready), written out so drift is caught
OK_TOKENS = ["pass", "ok", "up", "healthy", "green", "serving", "ready", "true"]
WARN_TOKENS = ["warn", "warning", "degraded", "yellow"]
FAIL_TOKENS = [
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
]


@pytest.mark.parametrize("token", OK_TOKENS + WARN_TOKENS + FAIL_TOKENS)
def test_every_token_any_case(token: str) -> None:
    expected = (
        Severity.OK
        if token in OK_TOKENS
        else Severity.WARN
        if token in WARN_TOKENS
        else Severity.CRIT
    )
    assert judge({"status": token.upper()}).verdict is expected
    assert judge({"status": token.title()}).verdict is expected


def test_overall_ok_but_component_failing_is_noted() -> None:
    body = {"status": "ok", "checks": {"db": {"status": "fail"}}}
    verdict = judge(body)
    assert verdict.verdict is Severity.OK  # the body's own status wins
    assert "body says ok but 1 component fail" in verdict.notes


def test_5xx_with_body_saying_pass_is_noted_and_body_wins() -> None:
    verdict = judge({"status": "pass"}, code=503)
    assert verdict.verdict is Severity.OK
    assert "HTTP 503 but body says pass" in verdict.notes


def test_json_is_parsed_whatever_the_content_type() -> None:
    assert judge({"status": "fail"}, content_type="text/plain").verdict is Severity.CRIT
    assert judge({"status": "fail"}, content_type=None).verdict is Severity.CRIT


# --- bodies with no status: the HTTP code decides -------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (200, Severity.OK),
        (204, Severity.OK),
        (301, Severity.OK),
        (500, Severity.CRIT),
        (503, Severity.CRIT),
        (429, Severity.CRIT),
        (418, Severity.CRIT),
    ],
)
def test_http_code_rules(code: int, expected: Severity) -> None:
    verdict = normalize_health(code, b"", None)
    assert verdict.verdict is expected
    assert verdict.basis == "http"
    assert f"judged by HTTP {code}" in verdict.notes[-1]


def test_expect_status_replaces_2xx_rule() -> None:
    assert normalize_health(204, b"", None, expect_status=[200]).verdict is Severity.CRIT
    assert normalize_health(503, b"", None, expect_status=[200, 503]).verdict is Severity.OK
    # a body status still wins over expect_status
    assert judge({"status": "fail"}, expect_status=[200]).verdict is Severity.CRIT


def test_plain_text_ok_token() -> None:
    verdict = normalize_health(200, b"OK\n", "text/plain")
    assert (verdict.verdict, verdict.status, verdict.basis) == (Severity.OK, "OK", "body")
    assert normalize_health(200, b"unhealthy", "text/plain").verdict is Severity.CRIT


def test_html_error_page() -> None:
    html = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
    verdict = normalize_health(500, html, "text/html; charset=utf-8")
    assert verdict.verdict is Severity.CRIT
    assert "body is not JSON (text/html)" in verdict.notes


def test_garbage_is_a_note_not_an_error() -> None:
    verdict = normalize_health(200, b"\xff\xfe\x00garbage{", "application/json")
    assert verdict.verdict is Severity.OK
    assert "body is not JSON (application/json)" in verdict.notes


def test_deeply_nested_json_does_not_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert normalize_health(200, deep, JSON).basis == "http"
    nested: dict[str, Any] = {"status": "UP"}
    for _ in range(50):
        nested = {"status": "UP", "components": {"x": nested}}
    verdict = judge(nested)
    assert verdict.verdict is Severity.OK


def test_component_cap_keeps_counts() -> None:
    checks = {f"c{i}": {"status": "fail" if i % 2 else "pass"} for i in range(250)}
    verdict = judge({"checks": checks})
    assert len(verdict.components) == 100
    assert verdict.total_components == 250
    assert verdict.failing_components == 125
    assert "150 more components not shown" in verdict.notes


def test_observed_values_are_short_and_single_line() -> None:
    body = {
        "checks": {
            "huge": {"status": "pass", "value": 10**4000},
            "text": {"status": "fail", "message": "line one\nline two " + "x" * 500},
            "nan": {"status": "pass", "value": float("nan")},
        }
    }
    names = by_name(judge(body))
    for component in names.values():
        assert component.observed is None or (
            len(component.observed) <= 60 and "\n" not in component.observed
        )


@pytest.mark.parametrize("code", [0, 99, 1000, -200])
def test_impossible_status_code_is_a_typed_error(code: int) -> None:
    with pytest.raises(HealthParseError):
        normalize_health(code, b"", None)
