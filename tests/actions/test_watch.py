"""Watch steps and `then`: a real health server whose body and latency the test changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from opstui.actions.audit import AuditLog
from opstui.actions.base import Progress
from opstui.actions.conditions import parse_condition
from opstui.actions.executors.watch import progress_line
from opstui.actions.probe_readers import EngineProbeReader, PollingProbeReader
from opstui.actions.runner import Runner
from opstui.engine.scheduler import Engine
from opstui.sources.base import Reading
from opstui.sources.registry import ClientPool
from tests.actions.support import make_config
from tests.support import ServeApp


@dataclass
class Health:
    status: str = "fail"
    delay: float = 0.0
    polls: int = 0
    pass_after: int | None = None

    def app(self) -> web.Application:
        async def health(request: web.Request) -> web.Response:
            self.polls += 1
            if self.pass_after is not None and self.polls > self.pass_after:
                self.status = "pass"
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.json_response({"status": self.status})

        app = web.Application()
        app.router.add_get("/health", health)
        return app


def watch_config(url: str, until: str, timeout: str = "10s") -> dict[str, Any]:
    return {
        "connections": {"svc": {"kind": "http", "base_url": url, "timeout": "2s"}},
        "probes": [{"id": "api", "kind": "health", "connection": "svc", "interval": "0.5s"}],
        "runbooks": [
            {
                "id": "api",
                "title": "API down",
                "diagnose": [
                    {
                        "kind": "watch",
                        "title": "Wait",
                        "watch": "api",
                        "until": until,
                        "timeout": timeout,
                    },
                ],
                "actions": [
                    {
                        "id": "restart",
                        "kind": "shell",
                        "title": "Restart",
                        "argv": ["true"],
                        "then": {"watch": "api", "until": until, "timeout": timeout},
                    },
                ],
            }
        ],
    }


async def test_watch_until_holds_through_a_polling_reader(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    health = Health(pass_after=2)
    url = await serve_app(health.app())
    config = make_config(watch_config(url, "status == pass and state == ok"))
    pool = ClientPool()
    runner = Runner(
        config,
        pool=pool,
        probes=PollingProbeReader(config, pool),
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )
    try:
        step = await runner.prepare_diagnose("api", 0)
        assert step.equivalent == "watch api until status == pass and state == ok (timeout 10s)"
        lines: list[str] = []
        progress = Progress()
        outcome = await runner.run(step, output=lines.append, progress=progress)
        assert outcome.ok, outcome
        assert health.polls == 3
        assert (
            len(
                [
                    line
                    for line in lines
                    if line.startswith("status == pass and state == ok: not yet")
                ]
            )
            == 2
        )
        assert lines[-1].startswith("status == pass and state == ok: holds after ")
        assert progress.fraction == 1.0
    finally:
        await runner.aclose()
        await pool.aclose()


async def test_watch_times_out_with_progress(serve_app: ServeApp, tmp_path: Path) -> None:
    health = Health(status="pass", delay=0.15)
    url = await serve_app(health.app())
    config = make_config(watch_config(url, "latency_ms < 100", timeout="1.2s"))
    pool = ClientPool()
    runner = Runner(
        config,
        pool=pool,
        probes=PollingProbeReader(config, pool),
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )
    try:
        step = await runner.prepare_diagnose("api", 0)
        lines: list[str] = []
        outcome = await runner.run(step, output=lines.append)
        assert not outcome.ok and outcome.error == "timeout"
        assert outcome.summary.startswith("timed out after 1.2s: latency_ms < 100 not reached")
        waiting = [line for line in lines if line.startswith("latency_ms ")]
        assert waiting and all("(target < 100)" in w and w.endswith(" left") for w in waiting)
    finally:
        await runner.aclose()
        await pool.aclose()


async def test_then_watch_through_the_engine_and_cancel(
    serve_app: ServeApp, tmp_path: Path
) -> None:
    health = Health(pass_after=1)
    url = await serve_app(health.app())
    config = make_config(watch_config(url, "status == pass"))
    engine = Engine(config)
    await engine.start()
    runner = Runner(
        config,
        pool=engine.clients,
        probes=EngineProbeReader(engine),
        audit=AuditLog(tmp_path / "audit.jsonl"),
        timeline=engine.timeline,
    )
    try:
        step = await runner.prepare_action("api", "restart")
        outcome = await runner.run(step, token=runner.confirm(step, via="modal"))
        assert outcome.ok
        then = await runner.run_then(step)
        assert then is not None and then.ok, then
        assert await runner.run_then(await runner.prepare_diagnose("api", 0)) is None

        health.status, health.pass_after = "fail", None  # now it never holds: cancel it
        progress = Progress()
        task = asyncio.create_task(runner.run_then(step, progress=progress))
        for _ in range(200):
            if progress.message.startswith("status == pass: not yet"):
                break
            await asyncio.sleep(0.02)
        progress.cancel.set()
        cancelled = await asyncio.wait_for(task, 5)
        assert cancelled is not None and cancelled.cancelled
    finally:
        await runner.aclose()
        await engine.stop()


def test_progress_line_names_start_now_target_and_time_left() -> None:
    config = make_config(
        {
            "connections": {"svc": {"kind": "http", "base_url": "http://127.0.0.1:1"}},
            "probes": [{"id": "q", "kind": "health", "connection": "svc"}],
        }
    )
    engine = Engine(config, sources={})
    snapshot = engine.ingest("q", Reading(value=3120, fields={"waiting": 3120}))
    condition = parse_condition("waiting < 1000")
    assert progress_line(condition, 12408, snapshot, 130) == (
        "waiting 12,408 -> 3,120 (target < 1000), 2m10s left"
    )
    assert progress_line(condition, None, snapshot, 5) == "waiting 3,120 (target < 1000), 5s left"


@pytest.mark.parametrize(
    ("source", "fields", "expected"),
    [
        ("waiting < 1000", {"waiting": 999}, True),
        ("waiting < 1000", {"waiting": 1000}, False),
        ("running >= desired", {"running": 4, "desired": 4}, True),
        ("running >= desired", {"running": 3, "desired": 4}, False),
        ("state == ok", {}, True),
        ("state != ok or waiting > 5", {"waiting": 6}, True),
        ("not (a > 1 and b > 1)", {"a": 2, "b": 2}, False),
        ("fields.status == 'pass'", {"status": "pass"}, True),
        ("missing < 5", {}, False),
        ("value <= 42", {}, True),
    ],
)
def test_conditions(source: str, fields: dict[str, Any], expected: bool) -> None:
    config = make_config(
        {
            "connections": {"svc": {"kind": "http", "base_url": "http://127.0.0.1:1"}},
            "probes": [{"id": "q", "kind": "health", "connection": "svc"}],
        }
    )
    snapshot = Engine(config, sources={}).ingest("q", Reading(value=42, fields=fields))
    assert snapshot.state.value == "ok"
    assert parse_condition(source).holds(snapshot) is expected


@pytest.mark.parametrize(
    "bad", ["", "waiting <", "waiting 5", "a < 1 and", "(a < 1", "__import__('os')"]
)
def test_bad_conditions_are_one_line_errors(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_condition(bad)
    assert "\n" not in str(info.value) and "condition" in str(info.value)
