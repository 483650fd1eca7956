"""`opstui check` output: the stable JSON shape and a plain table, from engine snapshots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from opstui.engine.snapshot import ProbeSnapshot
from opstui.states import State, rollup


def _number(value: float | None) -> float | None:
    """JSON has no NaN or Infinity: such values become null rather than invalid output."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, 3)


def _field(value: float | int | str | bool) -> float | int | str | bool | None:
    if isinstance(value, float):
        return _number(value)
    return value


def probe_entry(snapshot: ProbeSnapshot) -> dict[str, Any]:
    """One probe in the stable shape; later kinds only add keys under `fields`."""
    reading = snapshot.reading
    fresh = snapshot.state is not State.ERROR
    return {
        "id": snapshot.probe_id,
        "kind": snapshot.kind,
        "state": snapshot.state.value,
        "value": _number(reading.value) if reading is not None and fresh else None,
        "unit": snapshot.unit,
        "fields": (
            {name: _field(v) for name, v in reading.fields.items()}
            if reading is not None and fresh
            else {}
        ),
        "error": snapshot.error if snapshot.state is State.ERROR else _nodata_reason(snapshot),
        "latency_ms": (
            _number(reading.latency_ms) if reading is not None and fresh else None
        ),
    }


def _nodata_reason(snapshot: ProbeSnapshot) -> str | None:
    return snapshot.no_data if snapshot.state is State.NODATA else None


def check_document(title: str, snapshots: Sequence[ProbeSnapshot]) -> dict[str, Any]:
    worst = rollup([s.state for s in snapshots]) if snapshots else State.OK
    return {
        "title": title,
        "worst": worst.value,
        "probes": [probe_entry(s) for s in snapshots],
    }


def check_json(title: str, snapshots: Sequence[ProbeSnapshot]) -> str:
    return json.dumps(check_document(title, snapshots), indent=2, ensure_ascii=False)


def _value_text(snapshot: ProbeSnapshot) -> str:
    reading = snapshot.reading
    if reading is None or reading.value is None or snapshot.state is State.ERROR:
        return "-"
    unit = f" {snapshot.unit}" if snapshot.unit else ""
    return f"{reading.value:.4g}{unit}"


def _detail_text(snapshot: ProbeSnapshot) -> str:
    if snapshot.state is State.ERROR:
        hint = f" ({snapshot.error_hint})" if snapshot.error_hint else ""
        return f"{snapshot.error or 'error'}{hint}"
    reading = snapshot.reading
    if reading is None:
        return ""
    if snapshot.state is State.NODATA and snapshot.no_data:
        return snapshot.no_data
    bad = [c for c in reading.components if c.severity is not None and c.severity.rank > 0]
    parts = [f"{c.name}: {c.status}" for c in bad]
    parts.extend(reading.notes)
    return "; ".join(parts)


def check_table(title: str, snapshots: Sequence[ProbeSnapshot]) -> str:
    """A fixed-width table for people: state first, so a glance down the left edge is enough."""
    worst = rollup([s.state for s in snapshots]) if snapshots else State.OK
    rows = [("STATE", "PROBE", "KIND", "VALUE", "DETAIL")]
    for s in snapshots:
        rows.append(
            (f"{s.state.glyph} {s.state.word}", s.probe_id, s.kind, _value_text(s), _detail_text(s))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{title}: {worst.glyph} {worst.word}"]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)
