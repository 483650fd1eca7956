"""The drawing rules for the backends' readings: facts wrapped in order, tables cut to the
panel with `…` and `+N more`, counts as `1,204 waiting`, the state word kept however narrow,
and the detail screen's target lines for every kind with secrets redacted."""

from __future__ import annotations

from typing import Any

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult

from opstui.config.models import Config
from opstui.engine.clock import ManualClock
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading, Table
from opstui.ui.detail import DetailScreen, describe_probe
from opstui.ui.panel import ProbePanel, value_text
from opstui.ui.panel_palette import PanelPalette
from opstui.ui.table_view import fact_lines, table_lines
from opstui.ui.themes import STATE_DEFAULTS

FACTS = (
    ("waiting", "1,204"),
    ("active", "24"),
    ("delayed", "310"),
    ("failed", "1,877"),
    ("oldest waiting", "14m"),
)
QUEUES = Table(
    ("queue", "waiting", "failed"),
    tuple((f"queue-number-{i}-with-a-long-name", f"{i * 1000:,}", str(i)) for i in range(6)),
    title="queues",
    total_rows=40,
)


def test_facts_wrap_in_source_order_and_mark_what_is_left_out() -> None:
    lines = [line.plain for line in fact_lines(FACTS, 30, 5)]
    assert lines == [
        "waiting 1,204 · active 24",
        "delayed 310 · failed 1,877",
        "oldest waiting 14m",
    ]
    two = [line.plain for line in fact_lines(FACTS, 30, 2)]
    assert two[0] == lines[0]
    assert two[1].startswith("delayed 310 · failed 1,877") and two[1].endswith("…")
    assert all(cell_len(line) <= 30 for line in two)
    # One item wider than the panel is cut, never split.
    assert [t.plain for t in fact_lines((("query", "x" * 40),), 12, 3)] == ["query xxxxx…"]


def test_table_is_cut_to_the_width_and_counts_hidden_rows_of_the_whole_result() -> None:
    lines = [line.plain for line in table_lines(QUEUES, 34, 5)]
    assert len(lines) == 5
    assert lines[0].split() == ["queue", "waiting", "failed"]
    assert lines[1].startswith("queue-number-0") and "…" in lines[1]
    assert lines[2].split()[-2:] == ["1,000", "1"]  # numbers kept whole, text cut
    assert lines[2].endswith("1") and lines[0].endswith("failed")  # right-aligned
    assert lines[-1] == "+37 more"  # 40 rows in the result, 3 shown
    assert all(cell_len(line) <= 34 for line in lines)
    # With room for every row, the title comes first and nothing says "more" but the total.
    tall = [line.plain for line in table_lines(QUEUES, 80, 20)]
    assert tall[0] == "queues" and tall[-1] == "+34 more" and len(tall) == 9
    whole = Table(("a", "b"), (("x", "1"), ("y", "2")))
    assert [line.plain for line in table_lines(whole, 20, 3)] == ["a  b", "x  1", "y  2"]
    assert [line.plain for line in table_lines(whole, 20, 2)] == ["a  b", "+2 more"]


@pytest.mark.parametrize(
    ("value", "unit", "name", "text"),
    [
        (1204.0, None, "waiting", "1,204 waiting"),
        (12408.0, None, "connected_clients", "12,408 connected clients"),
        (812.0, "%", "used_pct", "812%"),
        (0.62, "s", None, "0.62 s"),
        (2.0, None, None, "2"),
        (None, None, "waiting", "—"),
    ],
)
def test_value_text_names_unit_less_counts(
    value: float | None, unit: str | None, name: str | None, text: str
) -> None:
    assert value_text(value, unit, name) == text


# --- panels in an app -------------------------------------------------------------------


def queue_engine(**extra: Any) -> tuple[Engine, ManualClock]:
    config = Config.model_validate(
        {
            "connections": {"jobs": {"kind": "redis", "url": "redis://127.0.0.1:9/0"}},
            "probes": [
                {
                    "id": "emails",
                    "kind": "queue",
                    "connection": "jobs",
                    "flavor": "bullmq",
                    "queue": "emails",
                    "thresholds": {"above": {"warn": 1000, "crit": 10000}},
                    **extra,
                },
                {"id": "all", "kind": "queue", "connection": "jobs", "flavor": "rq", "queue": "*"},
            ],
        }
    )
    clock = ManualClock()
    engine = Engine(config, clock=clock)
    for step in range(12):
        clock.advance(5)
        engine.ingest("emails", Reading(1204.0 + step * 1000, facts=FACTS))
        engine.ingest("all", Reading(300.0 + step, facts=FACTS[:2], table=QUEUES))
    return engine, clock


class Harness(App[None]):
    CSS = "Screen { layout: vertical; }"

    def __init__(self, engine: Engine, *panels: ProbePanel) -> None:
        self.engine = engine
        self._panels = panels
        super().__init__()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **STATE_DEFAULTS}

    def compose(self) -> ComposeResult:
        yield PanelPalette()  # where panels take their text styles from, as on a dashboard
        yield from self._panels


async def test_a_dashboard_sized_panel_shows_state_value_facts_and_sparkline() -> None:
    engine, clock = queue_engine()
    panel = ProbePanel(engine.snapshot("emails"), clock)
    panel.styles.width = 38
    panel.styles.height = 6
    async with Harness(engine, panel).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = panel.visible_lines()
        assert len(lines) == 4
        assert lines[0] == " ✖ CRIT "  # 12,204 waiting is over the crit limit
        assert lines[1].startswith("12,204 waiting") and lines[1].endswith("0s ago")
        assert lines[2].startswith("waiting 1,204 · active 24")
        assert set(lines[3]) <= set("▁▂▃▄▅▆▇█ ")  # the sparkline keeps its line
        assert panel.value_name == "waiting"  # read from the app's engine config


async def test_a_tall_panel_shows_every_fact_then_the_table_with_more() -> None:
    engine, clock = queue_engine()
    panel = ProbePanel(engine.snapshot("all"), clock)
    panel.styles.width = 40
    panel.styles.height = 12
    async with Harness(engine, panel).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = panel.visible_lines()
        inner = panel.content_size.width
        assert lines[1].startswith("311 waiting")
        assert lines[2] == "waiting 1,204 · active 24"
        assert lines[4].split()[:1] == ["queue"]
        assert lines[5].startswith("queue-number-0")
        assert lines[-1] == "+36 more"  # 10 lines: 4 rows shown of the 40
        assert all(cell_len(line) <= inner for line in lines)
        assert len(lines) == panel.content_size.height


@pytest.mark.parametrize("width", [10, 14, 20, 30])
async def test_narrow_panels_with_facts_and_tables_keep_the_state_word(width: int) -> None:
    engine, clock = queue_engine()
    crit = ProbePanel(engine.snapshot("emails"), clock)
    table = ProbePanel(engine.snapshot("all"), clock)
    for panel in (crit, table):
        panel.styles.width = width
        panel.styles.height = 9
    async with Harness(engine, crit, table).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for panel, word in ((crit, "✖ CRIT"), (table, "● OK")):
            lines = panel.visible_lines()
            assert word in lines[0]
            assert all(cell_len(line) <= panel.content_size.width for line in lines)


async def test_nodata_reason_is_cut_not_dropped_and_repeated_below_when_cut() -> None:
    engine, clock = queue_engine()
    engine.ingest("all", Reading(None, no_data="pg_stat_statements is not installed"))
    panel = ProbePanel(engine.snapshot("all"), clock)
    panel.styles.width = 40
    panel.styles.height = 7
    async with Harness(engine, panel).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = panel.visible_lines()
        assert "NO DATA · pg_stat" in lines[0] and lines[0].endswith("…")
        assert lines[2] == "pg_stat_statements is not installed"


async def test_facts_and_tables_repaint_only_when_they_change() -> None:
    engine, clock = queue_engine()
    panel = ProbePanel(engine.snapshot("all"), clock)
    panel.styles.height = 12
    async with Harness(engine, panel).run_test(size=(60, 14)) as pilot:
        await pilot.pause()
        before = list(panel._lines)
        clock.advance(0.2)
        panel.tick()
        assert panel._lines == before  # same reading, same age: nothing to send
        same = Reading(311.0, facts=FACTS[:2], table=QUEUES)
        clock.advance(0.2)
        panel.update_snapshot(engine.ingest("all", same))
        # A new point moves the sparkline; the facts and table lines are the same
        # text, so only the sparkline's line is sent.
        assert panel._lines[2] == before[2] and panel._lines[4:] == before[4:]
        assert panel._lines[3] != before[3]
        changed = Table(QUEUES.columns, QUEUES.rows[:1], total_rows=1)
        panel.update_snapshot(engine.ingest("all", Reading(311.0, table=changed)))
        assert panel._lines != before
        assert not any("more" in line.plain for line in panel._lines)


# --- what each kind targets ---------------------------------------------------------------

KINDS_CONFIG: dict[str, Any] = {
    "connections": {
        "app": {"kind": "http", "base_url": "http://127.0.0.1:9/base"},
        "jobs": {"kind": "redis", "url": "redis://:${OPSTUI_TEST_REDIS_PW}@127.0.0.1:9/0"},
        "db": {"kind": "postgres", "dsn": "postgresql://ops:${OPSTUI_TEST_PG_PW}@127.0.0.1:9/app"},
        "aws": {"kind": "aws", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"},
        "prom": {"kind": "prometheus", "url": "http://127.0.0.1:9"},
    },
    "probes": [
        {"id": "h", "kind": "health", "connection": "app"},
        {
            "id": "q",
            "kind": "queue",
            "connection": "jobs",
            "flavor": "bullmq",
            "queue": "mail",
            "prefix": "bq",
        },
        {"id": "r", "kind": "redis_info", "connection": "jobs"},
        {"id": "s", "kind": "sql", "connection": "db", "query": "SELECT 1 AS one", "value": "one"},
        {"id": "p", "kind": "sql", "connection": "db", "preset": "pg_connections"},
        {"id": "e", "kind": "ecs", "connection": "aws", "cluster": "prod", "service": "api"},
        {"id": "pq", "kind": "prometheus", "connection": "prom", "query": "up == 0"},
        {"id": "pa", "kind": "prometheus", "connection": "prom", "preset": "alerts"},
        {
            "id": "sc",
            "kind": "scrape",
            "connection": "app",
            "metric": "req_seconds",
            "labels": {"job": "api"},
            "mode": "quantile",
            "quantile": 0.95,
        },
    ],
}


def test_describe_probe_covers_every_kind_and_redacts_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSTUI_TEST_REDIS_PW", "hunter2-redis")
    monkeypatch.setenv("OPSTUI_TEST_PG_PW", "hunter2-pg")
    config = Config.model_validate(KINDS_CONFIG)
    described = {
        probe.id: dict(describe_probe(probe, config.connections.get(probe.connection)))
        for probe in config.probes
    }
    assert described["h"]["request"] == "GET http://127.0.0.1:9/base/health"
    assert described["q"]["flavor"] == "bullmq" and described["q"]["queue"] == "mail"
    assert described["q"]["prefix"] == "bq" and described["q"]["value"] == "waiting"
    assert "***" in described["r"]["url"]
    assert described["s"]["query"] == "SELECT 1 AS one"
    assert described["p"]["preset"] == "pg_connections" and "***" in described["p"]["dsn"]
    assert described["e"]["cluster"] == "prod" and described["e"]["service"] == "api"
    assert described["e"]["region"] == "eu-west-1"
    assert described["pq"]["promql"] == "up == 0"
    assert described["pa"]["preset"].startswith("alerts")
    assert described["sc"]["metric"] == "req_seconds"
    assert described["sc"]["labels"] == '{job="api"}'
    assert described["sc"]["mode"].startswith("quantile 0.95")
    text = repr(described)
    assert "hunter2" not in text


async def test_detail_screen_lists_facts_and_every_row_of_the_table() -> None:
    engine, _ = queue_engine()
    app = Harness(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.push_screen(DetailScreen(engine, "all"))
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        text = "\n".join(
            strip.text
            for strip in screen.query_one("#detail-reading").render_lines(
                screen.query_one("#detail-reading").region.reset_offset
            )
        )
        assert "Queues (6 of 40 rows)" in text
        for index in range(6):
            assert f"queue-number-{index}-with-a-long-name" in text
        assert "active" in text and "24" in text
        assert "* (every queue found)" in text
