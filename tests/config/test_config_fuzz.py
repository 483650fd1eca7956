"""Random YAML-ish text and random structures: load_config raises ConfigError or succeeds."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opstui.config.loader import ConfigError, load_config

_NOISE = ("Traceback", "pydantic", "Input should", "errors.pydantic.dev")
_counter = itertools.count()
_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

YAMLISH = st.lists(
    st.sampled_from(
        [*"abkdi:-[]{}#&*!|>'\"%@`,? \n\t\\$0123456789.", "kind", "probes", "${X}", "<<", "  "]
    ),
    max_size=80,
).map("".join)
KEYS = st.sampled_from(
    [
        "title",
        "environment",
        "refresh",
        "connections",
        "probes",
        "views",
        "kind",
        "http",
        "health",
        "id",
        "connection",
        "base_url",
        "headers",
        "interval",
        "timeout",
        "thresholds",
        "above",
        "below",
        "warn",
        "crit",
        "for",
        "flap_low",
        "flap_high",
        "rows",
        "name",
        "app",
        "Authorization",
        "path",
        "method",
        "expect_status",
        "history",
        "x-any",
        "1",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "5s",
            "-1s",
            "0",
            "http://h",
            "https://u:p@h",
            "${HOME}",
            "${NOPE_X}",
            "file:/nonexistent",
            "health",
            "http",
            "app",
            "GET",
        ]
    ),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
GOOD: dict[str, Any] = {
    "title": "t",
    "refresh": "5s",
    "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:1"}},
    "probes": [
        {
            "id": "a",
            "kind": "health",
            "connection": "app",
            "thresholds": {"above": {"warn": 1, "crit": 2}, "for": "1m"},
        },
        {"id": "b", "kind": "health", "connection": "app"},
    ],
    "views": [{"name": "V", "rows": [["a", "b"]]}],
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


@st.composite
def mutated_good(draw: st.DrawFn) -> Any:
    """The good config with a few random values replaced: exercises deep validation."""
    data = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent = data
        for seg in path[:-1]:
            parent = parent[seg]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(STRUCTURES)
    return data


def _check(tmp: Path, payload: bytes) -> None:
    path = tmp / f"c{next(_counter)}.yaml"
    path.write_bytes(payload)
    try:
        load_config(path)
    except ConfigError as error:
        assert error.errors and str(error) == error.lines()[0]
        for line in error.lines():
            assert line.startswith(str(path)) and "\n" not in line and "\r" not in line
            assert not any(noise in line for noise in _NOISE), line


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@_SETTINGS
@given(text=st.one_of(YAMLISH, st.text(max_size=200)))
def test_random_text(tmp: Path, text: str) -> None:
    _check(tmp, text.encode("utf-8", "surrogatepass"))


@_SETTINGS
@given(data=st.one_of(STRUCTURES, mutated_good()))
def test_random_structures(tmp: Path, data: Any) -> None:
    _check(tmp, yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass"))


@_SETTINGS
@given(data=st.binary(max_size=100))
def test_random_bytes(tmp: Path, data: bytes) -> None:
    _check(tmp, data)


def test_good_base_loads(tmp: Path) -> None:
    path = tmp / "good.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    assert [p.id for p in load_config(path).probes] == ["a", "b"]
