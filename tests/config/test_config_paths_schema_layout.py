"""Where the config is found, the JSON Schema, and the default view."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from opstui.config import paths
from opstui.config.layout import effective_views
from opstui.config.loader import ConfigError
from opstui.config.models import Config
from opstui.config.paths import resolve_config_path
from opstui.config.schema import json_schema


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $OPSTUI_CONFIG, and a default path inside tmp_path (not the user's real one)."""
    monkeypatch.delenv("OPSTUI_CONFIG", raising=False)
    default = tmp_path / "home" / "opstui" / "config.yaml"
    monkeypatch.setattr(paths, "default_config_path", lambda: default)
    return default


def test_cli_value_wins(no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, from_env = tmp_path / "given.yaml", tmp_path / "env.yaml"
    given.write_text("{}", encoding="utf-8")
    from_env.write_text("{}", encoding="utf-8")
    monkeypatch.setenv("OPSTUI_CONFIG", str(from_env))
    assert resolve_config_path(str(given)) == given
    assert resolve_config_path(None) == from_env


def test_default_path_is_last(no_env: Path) -> None:
    no_env.parent.mkdir(parents=True)
    no_env.write_text("{}", encoding="utf-8")
    assert resolve_config_path(None) == no_env


def test_nothing_found_says_where_it_looked(no_env: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_config_path(None)
    text = str(info.value)
    assert text.startswith(f"{no_env}: no config file")
    assert "--config" in text and "$OPSTUI_CONFIG" in text and info.value.line is None


def test_explicit_missing_file_does_not_fall_back(
    no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_env.parent.mkdir(parents=True)
    no_env.write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no such file \(given with --config\)$"):
        resolve_config_path(str(tmp_path / "typo.yaml"))
    monkeypatch.setenv("OPSTUI_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(ConfigError, match=r"gone\.yaml: no such file \(named by \$OPSTUI_CONFIG\)"):
        resolve_config_path(None)
    with pytest.raises(ConfigError, match="is a directory"):
        resolve_config_path(str(tmp_path))


def test_default_location_is_the_user_config_dir() -> None:
    path = paths.default_config_path()
    assert path.name == "config.yaml" and path.parent.name == "opstui"


def test_schema_shape() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "opstui config" and schema["type"] == "object"
    assert schema["additionalProperties"] is False and "^x-" in schema["patternProperties"]
    defs = schema["$defs"]
    thresholds = defs["Thresholds"]["properties"]
    assert "for" in thresholds and "for_" not in thresholds
    assert set(schema["properties"]) == {f.alias or n for n, f in Config.model_fields.items()}
    probes = schema["properties"]["probes"]["items"]
    assert probes["discriminator"]["propertyName"] == "kind"
    assert probes["discriminator"]["mapping"]["health"] == "#/$defs/HealthProbe"
    # Every $ref resolves, so editors can follow them.
    text = json.dumps(schema)
    for ref in re.findall(r'"\$ref": "#/\$defs/([^"]+)"', text):
        assert ref in defs
    duration = defs["HealthProbe"]["properties"]["interval"]["anyOf"][0]["anyOf"][0]
    pattern = re.compile(duration["pattern"])
    assert pattern.match("250ms") and pattern.match("2m") and not pattern.match("fast")
    header = defs["HttpConnection"]["properties"]["headers"]["additionalProperties"]
    assert header["type"] == "string" and "${ENV_VAR}" in header["description"]


def _config(probe_ids: list[str], views: list[dict[str, object]] | None = None) -> Config:
    return Config.model_validate(
        {
            "connections": {"app": {"kind": "http", "base_url": "http://127.0.0.1:1"}},
            "probes": [{"id": pid, "kind": "health", "connection": "app"} for pid in probe_ids],
            "views": views or [],
        }
    )


def test_auto_view_lists_every_probe_two_per_row() -> None:
    (view,) = effective_views(_config(["a", "b", "c", "d", "e"]))
    assert view.name == "All" and view.rows == [["a", "b"], ["c", "d"], ["e"]]


def test_configured_views_are_kept() -> None:
    config = _config(["a", "b"], [{"name": "Mine", "rows": [["b"]]}])
    assert [v.name for v in effective_views(config)] == ["Mine"]
    assert effective_views(config)[0].rows == [["b"]]


def test_no_probes_no_views() -> None:
    assert effective_views(Config.model_validate({})) == []
