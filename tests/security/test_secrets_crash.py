"""The last sink: an unexpected exception (a bug) is one scrubbed line on stderr, exit 70, and
its traceback goes to a file only the user can read, scrubbed too. A traceback printed raw
would carry whatever the exception quoted: a DSN, a header, a backend's echo."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

import opstui.cli as cli
from opstui import redaction

SECRET = "crash-secret-Zq81vX"


def test_an_unexpected_error_is_one_scrubbed_line_and_a_private_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRASH_TOKEN", SECRET)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "opstui.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "connections": {
                    "app": {
                        "kind": "http",
                        "base_url": "http://127.0.0.1:9",
                        "headers": {"Authorization": "Bearer ${CRASH_TOKEN}"},
                    }
                },
                "probes": [{"id": "health", "kind": "health", "connection": "app"}],
            }
        )
    )

    def broken_check(config_arg: str | None, as_json: bool) -> int:
        cli._load(config_arg)  # the config (and its redactor) is loaded, then a bug strikes
        raise RuntimeError(f"bug while talking to Bearer {SECRET}\x1b[2J\nsecond line")

    monkeypatch.setattr(cli, "cmd_check", broken_check)
    for n in range(100):  # a process that loaded many configs before (a test run does)
        redaction._BUILT.append(redaction.Redactor([f"other-secret-{n}"]))
    code = cli.main(["check", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERNAL
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert SECRET not in err and "\x1b" not in err, err
    assert "opstui: internal error: RuntimeError: bug while talking to ***" in err, err
    reports = list((tmp_path / "state").rglob("crash-*.txt"))
    assert len(reports) == 1, reports
    report = reports[0].read_text()
    assert "Traceback" in report and "broken_check" in report
    assert SECRET not in report
    assert stat.S_IMODE(reports[0].stat().st_mode) == 0o600
