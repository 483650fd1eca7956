"""Secrets never show: not in repr, str, dumps, JSON, nor in any ConfigError line."""

from __future__ import annotations

import copy
import pickle
import textwrap
from pathlib import Path

import pytest

from opstui.config.loader import ConfigError, load_config
from opstui.config.models import is_sensitive_header
from opstui.config.types import Secret, redact, reveal

VALUES = ("tok-ADMIN-7f3a", "pw-EVO-91b2", "file-SECRET-44c1", "dflt-TOKEN-0d9e")


@pytest.fixture
def secret_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADMIN_KEY", VALUES[0])
    monkeypatch.setenv("EVO_PASS", VALUES[1])
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    (tmp_path / "bearer").write_text(VALUES[2] + "\n", encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            connections:
              app:
                kind: http
                base_url: "http://localhost:3000"
                headers: {{X-Admin-Key: "${{ADMIN_KEY}}", Authorization: "file:{tmp_path}/bearer"}}
              evo:
                kind: http
                base_url: "https://bot:${{EVO_PASS}}@evolution.example:8443/api"
            probes:
              - id: jobs
                kind: health
                connection: app
                headers: {{X-Metrics-Token: "${{METRICS_TOKEN:-{VALUES[3]}}}"}}
              - {{id: evo, kind: health, connection: evo}}
            """
        ),
        encoding="utf-8",
    )
    return path


def test_secrets_load_and_reveal(secret_config: Path) -> None:
    config = load_config(secret_config)
    app, evo = config.connections["app"], config.connections["evo"]
    assert reveal(app.headers["X-Admin-Key"]) == VALUES[0]
    assert reveal(app.headers["Authorization"]) == VALUES[2]
    assert reveal(evo.base_url) == f"https://bot:{VALUES[1]}@evolution.example:8443/api"
    assert redact(evo.base_url) == "https://bot:***@evolution.example:8443/api"
    assert reveal(config.probes[0].headers["X-Metrics-Token"]) == VALUES[3]


def test_nothing_printed_contains_a_secret(secret_config: Path) -> None:
    config = load_config(secret_config)
    renderings = [
        repr(config),
        str(config),
        repr(config.model_dump()),
        config.model_dump_json(),
        config.model_dump_json(by_alias=False),
        repr(config.connections),
        f"{config.connections['evo'].base_url}",
        str(config.probes[0].headers["X-Metrics-Token"]),
    ]
    for text in renderings:
        for value in VALUES:
            assert value not in text
    # The reference itself is shown, with a default's literal masked.
    assert "Secret('${METRICS_TOKEN:-***}')" in repr(config)


def test_errors_never_contain_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVO_PASS", VALUES[1])
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            connections:
              evo: {{kind: http, base_url: "ftp://bot:${{EVO_PASS}}@evolution.example"}}
              app:
                kind: http
                base_url: "https://bot:{VALUES[0]}@app.example"
                headers: {{Cookie: "session={VALUES[2]}", X-Api-Key: 12345678}}
            probes: [{{id: p, kind: health, connection: app}}]
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = info.value.lines()
    assert len(lines) == 3, lines  # url scheme, url literal password, header type
    assert "got ftp://bot:***@evolution.example" in lines[0]
    assert "12345678" not in " ".join(lines)
    for value in VALUES:
        assert all(value not in line for line in lines)
    assert all(value not in repr(info.value) for value in VALUES)


def test_secret_value_semantics() -> None:
    secret = Secret("v", "${V}")
    assert str(secret) == "***" and repr(secret) == "Secret('${V}')" and f"{secret:>5}" == "  ***"
    assert secret == Secret("v", "${W}") and secret != "v"
    assert copy.deepcopy(secret) is secret and copy.copy(secret) is secret
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_config_with_secrets_deep_copies(secret_config: Path) -> None:
    config = load_config(secret_config)
    assert config.model_copy(deep=True) == config


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("Proxy-Authorization", True),
        ("Cookie", True),
        ("X-Admin-Key", True),
        ("X-API-KEY", True),
        ("X-Metrics-Token", True),
        ("Client-Secret", True),
        ("X-Password", True),
        ("Accept", False),
        ("User-Agent", False),
        ("X-Request-Id", False),
    ],
)
def test_sensitive_header_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_header(name) is sensitive
