"""docs/runbook-authoring.md stays true: its YAML pieces, joined, are a valid config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opstui.actions.static import load_checked

DOC = Path(__file__).resolve().parents[2] / "docs" / "runbook-authoring.md"


def test_the_worked_example_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_KEY", "k")
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    path = tmp_path / "anclora.yaml"
    path.write_text("title: Anclora\n" + "".join(blocks), encoding="utf-8")
    config = load_checked(path)
    runbook = config.runbook("high-queue-backlog")
    assert [a.id for a in runbook.actions] == ["scale-up", "pause-low-priority", "tell-the-lead"]
    assert len(runbook.diagnose) == 3
    assert config.runbooks_for("queue") == [runbook]


def test_shell_argv_takes_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from opstui.config.models import Config

    def argv() -> list[str]:
        config = Config.model_validate(
            {
                "runbooks": [
                    {
                        "id": "r",
                        "title": "t",
                        "actions": [
                            {"id": "a", "title": "restart", "kind": "shell",
                             "argv": ["${OPS_COMPOSE:-docker}", "compose", "restart"]}
                        ],
                    }
                ]
            }
        )
        return list(config.runbooks[0].actions[0].argv)  # type: ignore[union-attr]

    monkeypatch.delenv("OPS_COMPOSE", raising=False)
    assert argv() == ["docker", "compose", "restart"]
    monkeypatch.setenv("OPS_COMPOSE", "/tmp/recorder")
    assert argv() == ["/tmp/recorder", "compose", "restart"]
