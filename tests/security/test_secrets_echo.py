"""Every backend echoes what it received; no sink shows any secret in any encoding.

One module-scoped scenario (tests/security/secrets_servers.py): an HTTP server quoting the
request headers (basic auth, token) in a 500 body, PostgreSQL quoting the DSN password and a
bound SQL arg in its errors, redis returning a `${SECRET}` value it was sent, a shell step
printing its secret argv and env. Each test reads one sink and asserts zero hits, that the
echo really happened (a `***` where the secret was), and the server's state where the step
changes one (the secret reached the backend revealed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from opstui.cli import main
from tests.security.secrets_servers import (
    REDIS_ARG,
    REDIS_KEY,
    SHELL_ARG,
    SHELL_ENV,
    Scenario,
    echo_scenario,
    leaks,
)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with echo_scenario() as started:
        yield started


def _cli(scenario: Scenario, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([args[0], "--config", str(scenario.config_path), *args[1:]])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_check_output_has_no_secret(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    _, text = _cli(scenario, capsys, "check", *(["--json"] if as_json else []))
    assert leaks(text) == [], text
    assert "invalid input syntax for type integer" in text  # PostgreSQL did echo
    assert "***" in text


@pytest.mark.parametrize(
    ("index", "echo"),
    [(1, "500"), (2, "invalid input syntax"), (3, "***"), (4, "argv=*** env=***")],
    ids=["http", "sql-arg", "redis-reply", "shell-argv-env"],
)
def test_run_diagnose_output_has_no_secret(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], index: int, echo: str
) -> None:
    _, text = _cli(scenario, capsys, "run", "leak", f"diagnose:{index}")
    assert leaks(text) == [], text
    assert echo in text, text


def _fresh_state(scenario: Scenario) -> str:
    """No shell marker, the redis key at "before"; the audit text so far (to diff against)."""
    scenario.marker.unlink(missing_ok=True)
    with scenario.redis.sync_client() as client:
        client.set(REDIS_KEY, "before")
    return scenario.audit_text()


@pytest.mark.parametrize("action", ["post", "set", "shell", "sql"])
def test_run_action_output_and_audit_have_no_secret(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    before = _fresh_state(scenario)
    code, text = _cli(scenario, capsys, "run", "leak", action, "--yes")
    assert leaks(text) == [], text
    assert "***" in text, text
    written = scenario.audit_text()[len(before):]
    assert leaks(written) == [], written
    records = [json.loads(line) for line in written.splitlines()]
    assert [r["phase"] for r in records] == ["intent", "result"]
    # the secrets reached the backends revealed: the server's state says so
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == (REDIS_ARG if action == "set" else "before")
    if action == "shell":
        assert code == 0, text
        assert scenario.marker.read_text() == f"{SHELL_ARG} {SHELL_ENV}"
        assert "argv=*** env=***" in text


@pytest.mark.parametrize("action", ["post", "set", "shell", "sql"])
def test_read_only_refusal_is_audited_without_secret(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    before = _fresh_state(scenario)
    code, text = _cli(scenario, capsys, "run", "leak", action, "--read-only", "--yes")
    assert code == 3, text
    assert leaks(text) == [], text
    written = scenario.audit_text()[len(before):]
    [record] = [json.loads(line) for line in written.splitlines()]
    assert (record["phase"], record["why"]) == ("refused", "read-only mode")
    assert record["action"] == action
    assert leaks(written) == [], written
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == "before"
    assert not scenario.marker.exists()


def test_exporter_metrics_have_no_secret(scenario: Scenario) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "opstui", "export", "--config", str(scenario.config_path),
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **scenario.env},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:"), line
        body = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
            if 'probe="echo_sql",reason=' in body and 'probe="health"' in body:
                break
            time.sleep(0.3)
        assert 'probe="echo_sql",reason=' in body, body
        assert leaks(body) == [], body
        assert "***" in body
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert leaks(err.decode()) == []


def _screen(app: object) -> str:
    compositor = app.screen._compositor  # type: ignore[attr-defined]
    return "\n".join(strip.text for strip in compositor.render_strips())


async def test_tui_panels_detail_timeline_and_incident_export_have_no_secret(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opstui.config.loader import load_config
    from opstui.engine.scheduler import Engine
    from opstui.ui.app import OpstuiApp, build_runner

    monkeypatch.chdir(tmp_path)  # the incident export lands here
    with scenario.redis.sync_client() as client:
        client.set(REDIS_KEY, REDIS_ARG)  # what the Redis echo diagnose reads back
    config = load_config(scenario.config_path)
    engine = Engine(config)
    runner = build_runner(engine, read_only=False)
    app = OpstuiApp(engine, runner=runner)
    seen: list[str] = []
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the SQL probe failed, the health probe answered
            health = engine.snapshot("health")
            answered = health.reading is not None or health.error is not None
            if engine.snapshot("echo_sql").error and answered:
                break
            await pilot.pause(0.2)
        snapshots = {s.probe_id: s for s in engine.snapshots()}
        assert "invalid input syntax" in (snapshots["echo_sql"].error or "")
        for index in range(4):  # the diagnose steps, as the runbook screen runs them
            await runner.run(await runner.prepare_diagnose("leak", index))
        await pilot.pause()
        seen.append(_screen(app))  # the panels
        for _ in range(3):  # each panel's detail screen
            await pilot.press("enter")
            await pilot.pause(0.3)
            seen.append(_screen(app))
            await pilot.press("escape")
            await pilot.pause()
            await pilot.press("l")
        await pilot.press("e")  # the timeline, then its incident export
        await pilot.pause(0.3)
        seen.append(_screen(app))
        await pilot.press("x")
        await pilot.pause(0.3)
    exported = _incident_text(tmp_path)
    seen.append(exported)
    text = "\n".join(seen)
    assert leaks(text) == [], [leaks(part) for part in seen]
    assert '(Redis echo): ok: "***"' in exported  # the redis reply, as recorded
    assert any("***" in part for part in seen[1:4])  # a detail screen shows the redacted echo


def _incident_text(directory: Path) -> str:
    exported = sorted(directory.glob("opstui-incident-*.md"))
    assert exported, "the incident log was not written"
    return exported[0].read_text()
