"""The event timeline as a markdown incident log, for the post-mortem.

Pure text (no Textual): `x` on the timeline screen writes it to a file and the clipboard.
Times are UTC, so a log written in Madrid reads the same in Singapore; everything is in time
order, as it happened.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from opstui.config.models import Config
from opstui.engine.events import Event, EventKind
from opstui.redaction import redactor_for

RUNBOOK_KINDS = (EventKind.DIAGNOSE, EventKind.ACTION, EventKind.RESULT, EventKind.CHECKLIST)
KIND_WORDS = {
    EventKind.DIAGNOSE: "diagnose",
    EventKind.ACTION: "action",
    EventKind.RESULT: "result",
    EventKind.CHECKLIST: "checklist",
    EventKind.ERROR: "error",
    EventKind.CONTROL: "control",
    EventKind.NOTE: "note",
    EventKind.STATE: "state",
}


def utc_text(wall: float) -> str:
    """`2027-01-15 08:00:05Z`: one moment, the same wherever the log is read."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(wall))


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: pipes escaped, one line."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines.extend("| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows)
    return lines


def _state_row(event: Event) -> tuple[str, str, str, str]:
    if event.old is not None and event.new is not None:
        change = f"{event.old.glyph} {event.old.word} -> {event.new.glyph} {event.new.word}"
    else:
        change = KIND_WORDS[event.kind]
    return utc_text(event.wall), event.probe_id or "", change, event.message


def _runbook_row(event: Event) -> tuple[str, str, str, str, str]:
    return (
        utc_text(event.wall),
        KIND_WORDS[event.kind],
        event.runbook_id or "",
        event.action_id or "",
        event.message,
    )


def incident_markdown(config: Config, events: Sequence[Event], now_wall: float) -> str:
    """The incident log: title, environment, time range, then state changes, runbook steps
    (diagnose results, actions with their params and results, checklist ticks) and other
    events, each table in time order, and the whole timeline interleaved at the end."""
    ordered = sorted(events, key=lambda e: (e.at, e.wall))
    lines = [f"# Incident log: {config.title}", ""]
    lines.append(f"- Environment: {config.environment or 'not set'}")
    if ordered:
        first, last = ordered[0].wall, ordered[-1].wall
        lines.append(
            f"- Time range: {utc_text(first)} to {utc_text(last)} ({_duration(last - first)})"
        )
    else:
        lines.append("- Time range: no events recorded")
    lines.append(f"- Exported: {utc_text(now_wall)}")
    lines.append(f"- Events: {len(ordered)}")

    states = [e for e in ordered if e.kind is EventKind.STATE]
    steps = [e for e in ordered if e.kind in RUNBOOK_KINDS]
    others = [e for e in ordered if e.kind not in RUNBOOK_KINDS and e.kind is not EventKind.STATE]

    lines += ["", "## State changes", ""]
    if states:
        lines += _table(("time (UTC)", "probe", "change", "detail"), map(_state_row, states))
    else:
        lines.append("No state changes.")

    lines += ["", "## Runbook steps", ""]
    if steps:
        lines += _table(
            ("time (UTC)", "kind", "runbook", "action", "what happened"),
            map(_runbook_row, steps),
        )
    else:
        lines.append("No diagnose steps, actions or checklist ticks.")

    if others:
        lines += ["", "## Other events", ""]
        lines += _table(("time (UTC)", "probe", "kind", "message"), map(_state_row, others))

    lines += ["", "## Timeline", ""]
    if ordered:
        for event in ordered:
            where = event.probe_id or event.runbook_id or ""
            if event.action_id:
                where = f"{where}/{event.action_id}" if where else event.action_id
            label = f" {where}" if where else ""
            detail = _state_row(event)[2] if event.kind is EventKind.STATE else event.message
            lines.append(
                f"- {utc_text(event.wall)} [{KIND_WORDS[event.kind]}]{label}: "
                f"{' '.join(detail.split())}"
            )
    else:
        lines.append("Nothing happened while opstui watched.")
    # events were scrubbed when recorded; the file leaves the machine, so scrub it once more
    return redactor_for(config).scrub("\n".join(lines) + "\n")


def export_file_name(now_wall: float) -> str:
    """`opstui-incident-YYYYmmdd-HHMMSS.md`, local time (the operator's own clock)."""
    return time.strftime("opstui-incident-%Y%m%d-%H%M%S.md", time.localtime(now_wall))


def write_incident(
    directory: Path, config: Config, events: Sequence[Event], now_wall: float
) -> tuple[Path, str]:
    """Write the log next to the operator (the current directory); returns (path, text).

    Never overwrites: a second export in the same second gets a numbered name.
    """
    text = incident_markdown(config, events, now_wall)
    name = export_file_name(now_wall)
    path = directory / name
    counter = 1
    while path.exists():
        counter += 1
        path = directory / name.replace(".md", f"-{counter}.md")
    path.write_text(text, encoding="utf-8")
    return path, text
