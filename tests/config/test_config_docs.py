"""docs/config.md stays true: its example loads and every model key is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from opstui.config.loader import load_config
from opstui.config.models import (
    AwsConnection,
    Band,
    Config,
    EcsProbe,
    HealthProbe,
    HttpConnection,
    ParamSpec,
    PostgresConnection,
    PrometheusConnection,
    PrometheusProbe,
    QueueProbe,
    RedisConnection,
    RedisInfoProbe,
    Runbook,
    ScrapeProbe,
    SqlProbe,
    Then,
    Thresholds,
    ViaPrometheus,
    View,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_annotated_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_KEY", "a")
    monkeypatch.setenv("EVOLUTION_API_KEY", "b")
    monkeypatch.delenv("ANCLORA_URL", raising=False)
    example = max(_yaml_blocks(), key=len)
    path = tmp_path / "anclora.yaml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path)
    assert [p.id for p in config.probes] == ["health", "queue-api", "evolution"]
    assert config.connections["app"].base_url == "http://localhost:3000"
    assert config.probe("queue-api").unit == "ms" and config.is_production


MODELS = [
    Config,
    HttpConnection,
    RedisConnection,
    PostgresConnection,
    AwsConnection,
    PrometheusConnection,
    HealthProbe,
    ScrapeProbe,
    QueueProbe,
    RedisInfoProbe,
    SqlProbe,
    EcsProbe,
    PrometheusProbe,
    Thresholds,
    Band,
    View,
    Runbook,
    ParamSpec,
    Then,
    ViaPrometheus,
]


@pytest.mark.parametrize("model", MODELS)
def test_every_key_is_in_a_table(model: type[BaseModel]) -> None:
    text = DOC.read_text(encoding="utf-8")
    for name, info in model.model_fields.items():
        assert f"| `{info.alias or name}` |" in text, f"{model.__name__}.{name} undocumented"
