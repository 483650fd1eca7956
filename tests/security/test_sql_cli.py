"""SQL attacks through the command line: `opstui validate` refuses several statements with
FILE:LINE, `opstui run` (a child process) refuses without --yes and under --read-only --yes,
and answering "no" at its prompt leaves the server as it was although the preview was shown
first; `opstui runbooks` says why; `opstui check` shows a volatile probe as ERR and never
sends it (a victim backend survives)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from opstui.cli import main
from tests.security.sql_servers import (  # noqa: F401 (the fixture armed)
    VICTIM,
    Armed,
    armed_server,
    attack_data,
    snapshot,
    untouched,
)
from tests.servers.postgres import postgres_bin
from tests.support import run_on_pty


def write_config(tmp_path: Path, dsn: str, sql: str, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "environment": "production",
        "audit_log": str(tmp_path / "audit.jsonl"),
        **attack_data(dsn, sql, **extra),
    }
    path = tmp_path / "opstui.yaml"
    path.write_text(json.dumps(data, indent=1))  # JSON is YAML
    return path


def state(armed: Armed) -> dict[str, Any]:
    return asyncio.run(snapshot(armed))


def clean(armed: Armed) -> dict[str, Any]:
    return asyncio.run(untouched(armed))


def run_child(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opstui", "run", "--config", str(config), "attack", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CLI_ATTACKS = {
    "copy_to_program": "COPY (SELECT 1) TO PROGRAM 'touch {markers}/copy'",
    "dblink_function": "SELECT side_effect()",
    "nextval": "SELECT nextval('seq')",
    "stat_reset": "SELECT pg_stat_reset()",
    "reload_conf": "SELECT pg_reload_conf()",
    "update": "UPDATE t SET v = 'x' WHERE id = 3",
}


@pytest.mark.parametrize("attack", sorted(CLI_ATTACKS))
@pytest.mark.parametrize("step", ["go", "diagnose:1"])
def test_run_without_yes_refuses(armed: Armed, tmp_path: Path, attack: str, step: str) -> None:
    before = clean(armed)
    sql = CLI_ATTACKS[attack].replace("{markers}", str(armed.markers))
    done = run_child(write_config(tmp_path, armed.dsn, sql), step)
    assert done.returncode == 3, done.stderr
    assert "refused: a mutation needs a terminal to confirm, or --yes" in done.stderr
    assert state(armed) == before


@pytest.mark.parametrize("attack", ["update", "copy_to_program", "dblink_function"])
def test_run_read_only_yes_refuses(armed: Armed, tmp_path: Path, attack: str) -> None:
    before = clean(armed)
    sql = CLI_ATTACKS[attack].replace("{markers}", str(armed.markers))
    config = write_config(tmp_path, armed.dsn, sql, mutating=True)
    argv = [sys.executable, "-m", "opstui", "--read-only", "run", "--config", str(config)]
    done = subprocess.run(
        [*argv, "attack", "go", "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "read-only mode" in done.stderr
    assert state(armed) == before


PROMPT_ATTACKS = {
    "insert_trigger": ("INSERT INTO trig_t VALUES (1)", "not run: trig_t has trigger"),
    "insert_serial": ("INSERT INTO counter_t (v) VALUES ('x')", "not run: default of column"),
    "update_calls_dblink": (
        "UPDATE t SET v = side_effect()::text WHERE id = 1",
        "not run: calls public.side_effect (volatile)",
    ),
    "copy_to_program": (
        "COPY (SELECT 1) TO PROGRAM 'touch {markers}/copy'",
        "no preview: COPY cannot be measured without running it",
    ),
}


@pytest.mark.parametrize("attack", sorted(PROMPT_ATTACKS))
def test_answering_no_leaves_the_server_alone(armed: Armed, tmp_path: Path, attack: str) -> None:
    before = clean(armed)
    sql, shown = PROMPT_ATTACKS[attack]
    config = write_config(
        tmp_path, armed.dsn, sql.replace("{markers}", str(armed.markers)), mutating=True
    )
    code, screen = run_on_pty(["--config", str(config), "attack", "go"], "no")
    assert code == 3, screen
    assert "cancelled: nothing was run" in screen and shown in screen
    assert "measured in a rolled-back transaction" not in screen
    assert state(armed) == before


SCRIPTS = {
    "commit_update": "COMMIT; UPDATE t SET v = 'x' WHERE id = 3",
    "rollback_insert": "ROLLBACK; INSERT INTO t VALUES (99, 'x')",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_several_statements_are_a_validate_error(
    armed: Armed, tmp_path: Path, capsys: pytest.CaptureFixture[str], script: str
) -> None:
    before = clean(armed)
    config = write_config(tmp_path, armed.dsn, SCRIPTS[script])
    assert main(["--config", str(config), "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{config}:" in err[0] and "runbooks[0].diagnose[0].sql: SQL has 2 statements" in err[0]
    assert any("runbooks[0].actions[0].sql: SQL has 2 statements" in line for line in err)
    done = run_child(config, "diagnose:1")
    assert done.returncode == 2 and "SQL has 2 statements" in done.stderr
    assert state(armed) == before


def test_runbooks_says_why(
    armed: Armed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT count(*) FROM pg_stat_activity"
    config = write_config(tmp_path, armed.dsn, sql)
    data = json.loads(config.read_text())
    data["runbooks"][0]["diagnose"].append(
        {
            "title": "kill",
            "kind": "sql",
            "connection": "db",
            "sql": "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE false",
        }
    )
    config.write_text(json.dumps(data))
    assert main(["--config", str(config), "runbooks"]) == 0
    out = capsys.readouterr().out
    assert "diagnose 1  look  [sql]  read-only: one SELECT, functions stable" in out
    assert (
        "diagnose 2  kill  [sql]  mutating: calls pg_terminate_backend (volatile) "
        "(overruled: the config did not declare it)"
    ) in out


def test_check_shows_a_volatile_probe_as_err_and_never_sends_it(
    armed: Armed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = clean(armed)
    victim = subprocess.Popen(
        [postgres_bin("psql"), armed.dsn, "-qc", "SELECT pg_sleep(60)"],
        env={**os.environ, "PGAPPNAME": VICTIM},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        data = {
            "connections": {"db": {"kind": "postgres", "dsn": armed.dsn, "timeout": "5s"}},
            "probes": [
                {
                    "id": "killer",
                    "kind": "sql",
                    "connection": "db",
                    "query": "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE application_name = '{VICTIM}'",
                }
            ],
        }
        config = tmp_path / "check.yaml"
        config.write_text(json.dumps(data))
        code = main(["--config", str(config), "check"])
        out = capsys.readouterr().out
        assert code != 0
        assert "not a provable read: calls pg_terminate_backend (volatile)" in out
        time.sleep(0.3)
        assert victim.poll() is None  # the victim's backend still runs its pg_sleep
    finally:
        victim.kill()
        victim.wait(timeout=10)
    assert state(armed) == before

