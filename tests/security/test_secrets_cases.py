"""The individual leak and audit cases of issue 10, each against the echo scenario's servers.

- `${SECRET}` in a shell step: reaches the process, shown and audited as `***` (command line,
  output, both audit lines, timeline); `${VAR:-default}` stays plain, visible text;
- `${ENV}` in redis command items and SQL args is substituted (the server holds the value)
  and shown `***`; a redis command name from `${ENV}` is a config error;
- refusals (read-only, no token, a spent token, a wrong typed target) and cancellations (the
  prompt answered no, Ctrl+C at the prompt, the modal's Cancel and Escape) are audit lines;
- an audit file that cannot be opened stops `opstui run` and the TUI with one line, exit 2,
  before anything runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstui.cli import main
from tests.security.secrets_servers import (
    RECEIVED_BODIES,
    REDIS_ARG,
    REDIS_KEY,
    SHELL_ARG,
    SHELL_ENV,
    SQL_ARG,
    TOKEN,
    Scenario,
    echo_scenario,
    leaks,
    notes,
)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with echo_scenario() as started:
        yield started


def _cli(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, str, str]:
    code = main([args[0], "--config", str(config), *args[1:]]) if args else main(
        ["--config", str(config)]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _new_records(scenario: Scenario, before: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in scenario.audit_text()[len(before):].splitlines()]


def _reset(scenario: Scenario) -> None:
    scenario.marker.unlink(missing_ok=True)
    with scenario.redis.sync_client() as client:
        client.set(REDIS_KEY, "before")


# --- secrets in steps ---------------------------------------------------------------------


def test_shell_secret_reaches_the_process_and_shows_as_stars_everywhere(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(scenario)
    before = scenario.audit_text()
    code, out, err = _cli(capsys, scenario.config_path, "run", "leak", "shell", "--yes")
    assert code == 0, err
    assert scenario.marker.read_text() == f"{SHELL_ARG} {SHELL_ENV}"  # revealed to the process
    assert "command:     SEC_SHELL_ENV=*** sh -c" in err and "sh '***'" in err, err
    assert out.strip() == "argv=*** env=***"
    intent, result = _new_records(scenario, before)
    assert (intent["phase"], result["phase"]) == ("intent", "result")
    for record in (intent, result):
        assert "sh '***'" in record["equivalent"]
    assert result["summary"] == "exit 0"
    assert leaks(out + err + scenario.audit_text()) == []


def test_shell_default_is_plain_text(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, scenario.config_path, "run", "leak", "diagnose:5")
    assert code == 0, err
    assert out.strip() == "visible-default"  # a ${VAR:-default} is configuration, not hidden


def test_redis_command_item_is_substituted_and_shown_as_stars(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(scenario)
    code, _, err = _cli(capsys, scenario.config_path, "run", "leak", "set", "--yes")
    assert code == 0, err
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == REDIS_ARG  # sent revealed, not as "${SEC_REDIS_ARG}"
    assert f"SET {REDIS_KEY} '***'" in err, err
    assert "Redis flags SET" in err or "mutating" in err  # classification still works
    assert leaks(err) == []


def test_redis_secret_key_is_read_only_and_sent_revealed(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """GET ${SECRET}: classified by the literal name (read-only: no token needed), the key
    sent revealed (the server found it), shown as ***."""
    code, out, err = _cli(capsys, scenario.config_path, "run", "leak", "diagnose:6")
    assert code == 0, err
    assert out.strip() == '"found-by-secret-name"'
    assert leaks(out + err) == []


def test_preview_of_a_secret_key_shows_stars_and_deletes_nothing(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The redis preview reads the keys the server names (COMMAND GETKEYS echoes the secret
    key back); the runner scrubs preview lines like every other output."""
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, out, err = _cli(capsys, scenario.config_path, "run", "leak", "del-secret")
    assert code == 3, err
    assert "preview:     DEL ***: string" in err, err
    assert leaks(out + err) == []
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_ARG) == "found-by-secret-name"  # the preview only read


def test_http_json_body_secret_is_sent_revealed_and_shown_as_stars(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """`json: {token: "${SEC_TOKEN}"}`: the server gets the token (not "${SEC_TOKEN}"), and
    its 500 echoing the body back shows ***."""
    RECEIVED_BODIES.clear()
    code, out, err = _cli(capsys, scenario.config_path, "run", "leak", "post-json", "--yes")
    assert code == 1, err  # the echo server answers 500
    assert [json.loads(b) for b in RECEIVED_BODIES] == [{"token": TOKEN, "note": "plain"}]
    assert '"token": "***"' in err, err
    assert leaks(out + err + scenario.audit_text()) == []


def test_sql_arg_is_substituted_and_shown_as_stars(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    before = notes(scenario.postgres)
    code, _, err = _cli(capsys, scenario.config_path, "run", "leak", "note", "--yes")
    assert code == 0, err
    assert notes(scenario.postgres) == [*before, SQL_ARG]  # bound revealed
    assert "$1=***" in err, err
    assert leaks(err + scenario.audit_text()) == []


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["${SEC_REDIS_ARG}", "k"], "the command name (first item of `command`) must be literal"),
        (["GET", "{{ params.x }}${SEC_REDIS_ARG}"], "cannot share one item"),
    ],
    ids=["name-from-env", "secret-in-a-template"],
)
def test_secret_where_it_would_hide_or_be_evaluated_is_a_config_error(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    command: list[str], says: str,
) -> None:
    config = yaml.safe_load(scenario.config_path.read_text())
    config["runbooks"][0]["diagnose"][2]["command"] = command
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    code, _, err = _cli(capsys, path, "validate")
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"{path}:") and says in line, line
    assert "Traceback" not in err and leaks(err) == []


# --- refusals and cancellations -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--read-only", "--yes"], "read-only mode"),
        ([], "no terminal to confirm and no --yes"),
    ],
    ids=["read-only", "no-token"],
)
def test_refusal_is_one_audit_line(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], args: list[str], why: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _reset(scenario)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    before = scenario.audit_text()
    code, _, err = _cli(capsys, scenario.config_path, "run", "leak", "set", *args)
    assert code == 3, err
    [record] = _new_records(scenario, before)
    assert (record["phase"], record["why"], record["action"]) == ("refused", why, "set")
    assert record["user"] and record["host"] and record["equivalent"].endswith("'***'")
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == "before"


def test_wrong_typed_target_is_refused_and_audited(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    _reset(scenario)
    before = scenario.audit_text()
    code, _, err = _cli(
        capsys, scenario.config_path, "run", "leak", "nuke", "--yes", "--confirm-target", "tuoch"
    )
    assert code == 3, err
    [record] = _new_records(scenario, before)
    assert record["phase"] == "refused" and "typed target does not match" in record["why"]
    assert not scenario.marker.exists()


async def test_spent_token_is_refused_and_audited(scenario: Scenario, tmp_path: Path) -> None:
    from opstui.actions.runner import Refused
    from opstui.config.loader import load_config
    from tests.actions.support import make_runner

    parts = make_runner(load_config(scenario.config_path), tmp_path)
    try:
        step = await parts.runner.prepare_action("leak", "set")
        token = parts.runner.confirm(step, via="modal")
        assert (await parts.runner.run(step, token=token)).ok
        with scenario.redis.sync_client() as client:
            client.set(REDIS_KEY, "after")
        with pytest.raises(Refused):
            await parts.runner.run(step, token=token)  # double Enter
    finally:
        await parts.close()
    phases = [r["phase"] for r in parts.audit.records()]
    assert phases == ["intent", "result", "refused"]
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == "after"
    assert leaks(parts.audit.path.read_text()) == []


async def test_foreign_token_is_refused_and_audited(scenario: Scenario, tmp_path: Path) -> None:
    from opstui.actions.runner import Refused
    from opstui.config.loader import load_config
    from tests.actions.support import make_runner

    parts = make_runner(load_config(scenario.config_path), tmp_path)
    try:
        harmless = await parts.runner.prepare_action("leak", "set")
        token = parts.runner.confirm(harmless, via="modal")
        other = await parts.runner.prepare_action("leak", "del-secret")
        with pytest.raises(Refused):
            await parts.runner.run(other, token=token)  # a token for another step
    finally:
        await parts.close()
    [record] = parts.audit.records()
    assert (record["phase"], record["action"], record["via"]) == ("refused", "del-secret", "modal")
    assert leaks(parts.audit.path.read_text()) == []
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_ARG) == "found-by-secret-name"


@pytest.mark.parametrize("answer", ["no", "ctrl-c"])
def test_prompt_cancel_is_one_audit_line(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    _reset(scenario)

    def ask(prompt: str) -> str:
        if answer == "ctrl-c":
            raise KeyboardInterrupt
        return answer

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("opstui.cli._ask", ask)
    before = scenario.audit_text()
    code, _, err = _cli(capsys, scenario.config_path, "run", "leak", "set")
    assert code == (130 if answer == "ctrl-c" else 3), err
    assert "cancelled: nothing was run" in err
    [record] = _new_records(scenario, before)
    assert (record["phase"], record["via"], record["action"]) == ("cancelled", "prompt", "set")
    assert record["why"] == (
        "Ctrl+C at the prompt" if answer == "ctrl-c" else "the prompt was not answered yes"
    )
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == "before"


@pytest.mark.parametrize("how", ["escape", "cancel-button"])
async def test_modal_cancel_is_one_audit_line(
    scenario: Scenario, tmp_path: Path, how: str
) -> None:
    from opstui.actions.audit import AuditLog
    from opstui.actions.probe_readers import EngineProbeReader
    from opstui.actions.runner import Runner
    from opstui.config.loader import load_config
    from opstui.engine.scheduler import Engine
    from opstui.ui.app import OpstuiApp
    from opstui.ui.confirm import ConfirmModal

    _reset(scenario)
    config = load_config(scenario.config_path)
    engine = Engine(config, sources={})
    audit = AuditLog(tmp_path / "audit.jsonl")
    runner = Runner(config, pool=engine.clients, probes=EngineProbeReader(engine), audit=audit,
                    timeline=engine.timeline, clock=engine.clock)
    app = OpstuiApp(engine, runner=runner, poll=False)
    answers: list[Any] = []
    async with app.run_test(size=(100, 30)) as pilot:
        step = await runner.prepare_action("leak", "set")
        verdict = await runner.classify(step)
        await app.push_screen(ConfirmModal(runner, step, verdict), answers.append)
        await pilot.pause()
        if how == "escape":
            await pilot.press("escape")
        else:
            await pilot.click("#confirm-cancel")
        await pilot.pause()
    await runner.aclose()
    assert answers == [None]
    [record] = audit.records()
    assert (record["phase"], record["via"], record["action"]) == ("cancelled", "modal", "set")
    assert record["equivalent"].endswith("'***'")
    assert any("cancelled" in e.message for e in engine.timeline.events())
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_KEY) == "before"


# --- an audit file that cannot be written ------------------------------------------------


def _unwritable(kind: str, root: Path) -> Path:
    if kind == "directory":
        (root / "is-a-dir").mkdir()
        return root / "is-a-dir"
    if kind == "under-a-file":
        (root / "plain-file").write_text("x")
        return root / "plain-file" / "audit.jsonl"
    return Path("/proc/opstui-no-such-dir/audit.jsonl")  # cannot be created, even by root


@pytest.mark.parametrize("kind", ["directory", "under-a-file", "cannot-create"])
@pytest.mark.parametrize("command", ["run", "tui"])
def test_unwritable_audit_file_is_one_line_and_nothing_runs(
    scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str,
    command: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _reset(scenario)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the TUI's log file
    config = yaml.safe_load(scenario.config_path.read_text())
    config["audit_log"] = str(_unwritable(kind, tmp_path))
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    if command == "run":
        code, out, err = _cli(capsys, path, "run", "leak", "shell", "--yes")
    else:
        code, out, err = _cli(capsys, path)  # the dashboard: no sub-command
    assert code == 2, out + err
    [line] = err.strip().splitlines()
    assert line.startswith("opstui: cannot write the audit log ") and "Traceback" not in err
    assert not scenario.marker.exists()  # nothing ran
    assert out == ""
    assert os.path.realpath(config["audit_log"]) in line or config["audit_log"] in line


async def test_modal_preview_of_a_secret_key_shows_stars(
    scenario: Scenario, tmp_path: Path
) -> None:
    """The confirm modal measures the preview itself (the runner scrubs it): the screen says
    `DEL ***`, never the key, and nothing is deleted."""
    from opstui.actions.audit import AuditLog
    from opstui.actions.probe_readers import EngineProbeReader
    from opstui.actions.runner import Runner
    from opstui.config.loader import load_config
    from opstui.engine.scheduler import Engine
    from opstui.ui.app import OpstuiApp
    from opstui.ui.confirm import ConfirmModal

    config = load_config(scenario.config_path)
    engine = Engine(config, sources={})
    runner = Runner(config, pool=engine.clients, probes=EngineProbeReader(engine),
                    audit=AuditLog(tmp_path / "audit.jsonl"), timeline=engine.timeline,
                    clock=engine.clock)
    app = OpstuiApp(engine, runner=runner, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        step = await runner.prepare_action("leak", "del-secret")
        modal = ConfirmModal(runner, step, await runner.classify(step))
        await app.push_screen(modal)
        for _ in range(50):
            await pilot.pause(0.1)
            if modal.settled and "DEL ***:" in _screen(app):
                break
        text = _screen(app)
        await pilot.press("escape")
        await pilot.pause()
    await runner.aclose()
    assert "DEL ***: string" in text, text
    assert leaks(text) == []
    with scenario.redis.sync_client() as client:
        assert client.get(REDIS_ARG) == "found-by-secret-name"


def _screen(app: Any) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
