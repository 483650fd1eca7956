"""The markdown incident log (`x` on the timeline): pure text from the events, in time order."""

from __future__ import annotations

from pathlib import Path

from opstui.config.models import Config
from opstui.engine.events import Event, EventKind
from opstui.states import State
from opstui.ui.incident import export_file_name, incident_markdown, write_incident

WALL = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


def config(environment: str | None = "production") -> Config:
    return Config.model_validate({"title": "Anclora WhatsApp", "environment": environment})


def events() -> list[Event]:
    # given out of order: the log sorts by time
    return [
        Event(30.0, WALL + 30, EventKind.ACTION,
              "run high-queue-backlog/scale-up on anclora (via modal): aws ecs update-service "
              "--desired-count 8", runbook_id="high-queue-backlog", action_id="scale-up"),
        Event(0.0, WALL, EventKind.STATE, "queue: OK -> CRIT (waiting 12,000 > 10,000)",
              probe_id="queue", old=State.OK, new=State.CRIT),
        Event(10.0, WALL + 10, EventKind.DIAGNOSE,
              "high-queue-backlog diagnose #1 (Wait list): ok: (integer) 12000",
              runbook_id="high-queue-backlog"),
        Event(31.0, WALL + 31, EventKind.RESULT, "high-queue-backlog/scale-up: ok: desired 4 -> 8",
              runbook_id="high-queue-backlog", action_id="scale-up"),
        Event(40.0, WALL + 40, EventKind.CHECKLIST, "high-queue-backlog: done: Tell #incidents",
              runbook_id="high-queue-backlog"),
        Event(45.0, WALL + 45, EventKind.ERROR, "listener failed: a | b", probe_id="queue"),
        Event(125.0, WALL + 125, EventKind.STATE, "queue: CRIT -> OK", probe_id="queue",
              old=State.CRIT, new=State.OK),
    ]


def test_the_log_has_title_environment_range_and_every_table_in_time_order() -> None:
    text = incident_markdown(config(), events(), WALL + 600)
    assert text.startswith("# Incident log: Anclora WhatsApp\n")
    assert "- Environment: production" in text
    assert "- Time range: 2027-01-15 08:00:00Z to 2027-01-15 08:02:05Z (2m05s)" in text
    assert "- Exported: 2027-01-15 08:10:00Z" in text
    assert "- Events: 7" in text
    assert "| 2027-01-15 08:00:00Z | queue | ● OK -> ✖ CRIT | queue: OK -> CRIT" in text
    steps = text.split("## Runbook steps")[1].split("## Other events")[0]
    kinds = [line.split("|")[2].strip() for line in steps.splitlines() if line.startswith("| 2")]
    assert kinds == ["diagnose", "action", "result", "checklist"]
    assert "--desired-count 8" in steps and "desired 4 -> 8" in steps
    assert "listener failed: a \\| b" in text  # a pipe cannot break the table
    timeline = text.split("## Timeline")[1].strip().splitlines()
    assert len(timeline) == 7
    assert timeline[0].startswith("- 2027-01-15 08:00:00Z [state] queue:")
    assert timeline[-1].startswith("- 2027-01-15 08:02:05Z [state] queue:")
    assert "[action] high-queue-backlog/scale-up:" in timeline[2]


def test_an_empty_timeline_still_makes_a_log() -> None:
    text = incident_markdown(config(None), [], WALL)
    assert "- Environment: not set" in text
    assert "- Time range: no events recorded" in text
    assert "No state changes." in text
    assert "Nothing happened while opstui watched." in text


def test_the_file_is_named_by_time_and_never_overwritten(tmp_path: Path) -> None:
    first, text = write_incident(tmp_path, config(), events(), WALL)
    second, _ = write_incident(tmp_path, config(), events(), WALL)
    assert first.name == export_file_name(WALL)
    assert first.name.startswith("opstui-incident-") and first.name.endswith(".md")
    assert second != first and second.name.endswith("-2.md")
    assert first.read_text(encoding="utf-8") == text
