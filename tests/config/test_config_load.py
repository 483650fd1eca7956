"""Good configs load; several problems are all reported; the error's one-line contract."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from opstui.config import models
from opstui.config.loader import ConfigError, format_key_path, load_config
from opstui.config.models import Config, HealthProbe, HttpConnection
from opstui.config.types import Secret, format_duration, parse_duration

ANCLORA = """\
title: Anclora WhatsApp - production
environment: production
refresh: 5s
x-probe: &probe
  kind: health
  connection: app
connections:
  app:
    kind: http
    base_url: "${APP_URL:-http://localhost:3000}"
    headers: {X-Admin-Key: "${ADMIN_KEY}", Accept: application/json}
    timeout: 2s
probes:
  - <<: *probe
    id: health
    title: App health
    path: /health
    thresholds: {above: {warn: 200, crit: 1000}, for: 1m}
  - <<: *probe
    id: ready
    interval: 250ms
views:
  - {name: Overview, rows: [[health, ready]]}
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_anclora_like_config_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_URL", raising=False)
    monkeypatch.setenv("ADMIN_KEY", "k-123")
    text = ANCLORA.replace("x-probe: &probe", "x-probe: &probe")
    config = load_config(write(tmp_path, ANCLORA))
    assert "x-probe" not in text or config  # the anchor host key is a real (unknown) key below
    conn = config.connections["app"]
    assert isinstance(conn, HttpConnection)
    assert conn.base_url == "http://localhost:3000"  # ${VAR:-default} with VAR unset
    assert isinstance(conn.headers["X-Admin-Key"], Secret)
    assert conn.headers["X-Admin-Key"].reveal() == "k-123"
    assert conn.headers["Accept"] == "application/json"
    health, ready = config.probes
    assert isinstance(health, HealthProbe) and health.display_title == "App health"
    assert health.thresholds is not None and health.thresholds.for_ == 60.0
    assert config.interval_of(health) == 5.0 and config.interval_of(ready) == 0.25
    assert config.timeout_of(health) == 2.0
    assert config.probe("ready") is ready
    assert config.is_production and config.shows_production_frame
    with pytest.raises(KeyError):
        config.probe("nope")


def test_env_default_is_replaced_by_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_URL", "http://127.0.0.1:4000")
    monkeypatch.setenv("ADMIN_KEY", "k")
    config = load_config(write(tmp_path, ANCLORA))
    assert config.connections["app"].base_url == "http://127.0.0.1:4000"


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            connections: {app: {kind: http, base_url: "http://127.0.0.1:1"}}
            probes: [{id: h, kind: health, connection: app}]
            """,
        )
    )
    assert config.title == "opstui" and config.refresh == 5.0 and config.views == []
    assert not config.is_production and not config.shows_production_frame
    probe = config.probes[0]
    assert probe.path == "/health" and probe.method == "GET" and probe.display_title == "h"
    assert config.timeout_of(probe) == 5.0


def test_file_secret_relative_to_config_dir(tmp_path: Path) -> None:
    (tmp_path / "admin.key").write_text("from-file\n", encoding="utf-8")
    config = load_config(
        write(
            tmp_path,
            """\
            connections:
              app:
                kind: http
                base_url: "http://127.0.0.1:1"
                headers: {Authorization: "file:admin.key"}
            probes: [{id: h, kind: health, connection: app}]
            """,
        )
    )
    secret = config.connections["app"].headers["Authorization"]
    assert isinstance(secret, Secret) and secret.reveal() == "from-file"
    assert secret.source == "file:admin.key"


def test_every_problem_is_reported_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        refresh: soon
        connections: {app: {kind: http, base_url: "http://127.0.0.1:1", colour: red}}
        probes:
          - {id: h, kind: health, connection: app, interval: -1s}
          - {id: g, kind: health}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = info.value.lines()
    assert lines == [
        f"{path}:1: refresh: expected a duration like 5s, 2m or 250ms, got 'soon'",
        f"{path}:2: connections.app.colour: unknown key 'colour'",
        f"{path}:4: probes[0].interval: a duration cannot be negative, got '-1s'",
        f"{path}:5: probes[1].connection: missing required key 'connection'",
    ]
    assert str(info.value) == lines[0]


def test_all_cross_reference_problems_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        connections: {app: {kind: http, base_url: "http://127.0.0.1:1"}}
        probes:
          - {id: h, kind: health, connection: app}
          - {id: h, kind: health, connection: nope}
        views:
          - {name: A, rows: [[h, x]]}
          - {name: A, rows: [[h]]}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(e.line, e.key_path) for e in info.value.errors] == [
        (4, "probes[1].id"),
        (4, "probes[1].connection"),
        (6, "views[0].rows[0][1]"),
        (7, "views[1].name"),
    ]


def test_incompatible_connection_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only http connections exist today; pretend health probes need another kind.
    monkeypatch.setitem(models._KIND_CONNECTIONS, "health", {"redis"})
    path = write(
        tmp_path,
        """\
        connections: {app: {kind: http, base_url: "http://127.0.0.1:1"}}
        probes:
          - id: h
            kind: health
            connection: app
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:5: probes[0].connection: a health probe cannot use the http connection 'app'"
    )


@pytest.mark.parametrize(
    ("text", "line", "key_path", "says"),
    [
        ("title: [unclosed\n", 2, "", "invalid YAML"),
        ("{title: a,\n title: b}\n", 2, "title", "duplicate key 'title' (first on line 1)"),
        (
            "x-a: &a {kind: http}\nconnections:\n  c:\n    <<: *a\n    base_url: nope\n",
            5,
            "connections.c.base_url",
            "expected an http:// or https:// URL",
        ),
        (
            "x-a: &a {kind: http, base_url: 'http://h', colour: red}\nconnections: {c: {<<: *a}}\n",
            1,
            "connections.c.colour",
            "unknown key 'colour'",
        ),
        ("x-a: &a 5\nconnections: {c: {<<: *a}}\n", 2, "connections.c", "`<<` merges a mapping"),
        ("x-a: &a {k: 1}\nc:\n  <<: [*a, 5]\n", 3, "c", "`<<` merges a mapping"),
        ("a: &x [*x]\n", 1, "a[0]", "alias refers to the collection"),
        ("title: !shout hi\n", 1, "title", "unsupported YAML tag '!shout'"),
        ("title: !!int abc\n", 1, "title", "cannot read 'abc' as a whole number"),
        ("? [a, b]\n: c\n", 1, "", "a key must be a plain value"),
        ("1: x\n", 1, "[1]", "keys must be text"),
        ("connections: {1: {kind: http}}\n", 1, "connections[1]", "expected text"),
        ("title: ok\x1b\n", 1, "", "control character (0x1b)"),
        ("just text\n", 1, "", "top level must be a mapping"),
        ("probes: [5]\n", 1, "probes[0]", "expected a mapping (key: value), got 5"),
        ("refresh: 0\n", 1, "refresh", "must be longer than 0s"),
        ("refresh: .nan\n", 1, "refresh", "expected a duration"),
        ("refresh: 1" + "0" * 400 + "\n", 1, "refresh", "too large"),
        ("bell: maybe\n", 1, "bell", "expected true or false, got 'maybe'"),
        ("views: [{name: V, rows: [[]]}]\n", 1, "views[0].rows[0]", "must not be empty"),
        ("views: [{name: V, rows: [[a, a]]}]\n", 1, "views[0].rows[0][1]", "twice in this view"),
        (
            "connections: {bad name: {kind: http, base_url: 'http://h'}}\n",
            1,
            'connections["bad name"]',
            "bad connection name",
        ),
    ],
)
def test_small_problems(tmp_path: Path, text: str, line: int, key_path: str, says: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert (error.line, error.key_path) == (line, key_path), str(error)
    assert says in error.message, str(error)


def test_file_problems_have_no_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: no such file" and info.value.line is None
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a config file"


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(
        "\ufefftitle: T\nconnections: {a: {kind: http, base_url: 'http://h'}}\n"
        "probes: [{id: p, kind: health, connection: a}]\n".encode()
    )
    assert load_config(path).title == "T"


def test_error_renders_one_line() -> None:
    error = ConfigError("c.yaml", "first\nsecond", 3, "probes[0]")
    assert str(error) == "c.yaml:3: probes[0]: first second"
    assert ConfigError("c.yaml", "gone").lines() == ["c.yaml: gone"]
    group = ConfigError.group(
        [
            ConfigError("c.yaml", "b", 9, "x"),
            ConfigError("c.yaml", "a", 2),
            ConfigError("c.yaml", "a", 2),
        ]
    )
    assert group.lines() == ["c.yaml:2: a", "c.yaml:9: x: b"] and str(group) == "c.yaml:2: a"


def test_key_paths() -> None:
    assert format_key_path(("probes", 2, "thresholds", "for")) == "probes[2].thresholds.for"
    assert format_key_path(("connections", "a", "headers", "X.Y")) == 'connections.a.headers["X.Y"]'
    assert format_key_path(()) == ""


def test_durations() -> None:
    assert parse_duration("250ms") == 0.25 and parse_duration("2m") == 120.0
    assert parse_duration("1.5h") == 5400.0 and parse_duration(3) == 3.0
    for bad in ("fast", "5 parsecs", "-1s", -2, True, None, [1], float("inf")):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(s) for s in (0.25, 5, 90, 3600, 5400)] == [
        "250ms",
        "5s",
        "1m30s",
        "1h",
        "1h30m",
    ]


def test_model_dump_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_KEY", "k")
    config = load_config(write(tmp_path, ANCLORA))
    dumped = config.model_dump(mode="json")
    assert dumped["probes"][0]["thresholds"]["for"] == "1m"  # the alias, as written in YAML
    assert dumped["connections"]["app"]["headers"]["X-Admin-Key"] == "***"
    dumped["connections"]["app"]["headers"]["X-Admin-Key"] = "${ADMIN_KEY}"
    assert Config.model_validate(dumped) == config


def test_merge_explicit_keys_win(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """\
            x-http: &http {kind: http, base_url: "http://a", timeout: 9s}
            connections:
              c: {<<: *http, timeout: 1s}
            probes: [{id: p, kind: health, connection: c}]
            """,
        )
    )
    assert config.connections["c"].timeout == 1.0
    assert config.connections["c"].base_url == "http://a"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\n")
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read: permission denied"


def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)
    config = write(
        tmp_path,
        f"""\
        connections:
          app: {{kind: http, base_url: "http://h", headers: {{Authorization: "file:{fifo}"}}}}
        probes: [{{id: p, kind: health, connection: app}}]
        """,
    )
    with pytest.raises(ConfigError, match="not a regular file") as info:
        load_config(config)
    assert info.value.key_path == "connections.app.headers.Authorization"


def test_merged_after_explicit_keeps_the_explicit_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        x-http: &http {kind: http, base_url: "http://a", timeout: 9s}
        connections:
          c:
            timeout: fast
            <<: *http
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.key_path) == (4, "connections.c.timeout")
