"""The reviewed Redis admin reads run as diagnose steps (no token), and CONFIG GET never shows
a password: not requirepass (the connection's own secret), not masterauth (a secret opstui
was never given, so only the output mask can hide it), whatever the pattern.

Against the password-protected server of tests/security/redis_servers.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstui.actions.static import load_checked
from opstui.cli import main
from tests.actions.support import make_runner
from tests.security.redis_servers import (
    KEY,
    PASSWORD_ENV,
    ConfiguredRedis,
    password_redis,
    reset,
)

READS: dict[str, list[str]] = {
    "config-get-maxclients": ["CONFIG", "GET", "maxclients"],
    "client-list": ["CLIENT", "LIST"],
    "client-info": ["CLIENT", "INFO"],
    "slowlog-get": ["SLOWLOG", "GET", "5"],
    "slowlog-len": ["SLOWLOG", "LEN"],
    "memory-usage": ["MEMORY", "USAGE", KEY],
    "memory-stats": ["MEMORY", "STATS"],
    "latency-latest": ["LATENCY", "LATEST"],
    "latency-history": ["LATENCY", "HISTORY", "command"],
}
"""The short reviewed list (DESIGN.md section 6 point 1): read-only, so a diagnose step."""

SECRET_READS: dict[str, list[str]] = {
    "config-get-requirepass": ["CONFIG", "GET", "requirepass"],
    "config-get-masterauth": ["CONFIG", "GET", "masterauth"],
    "config-get-star": ["CONFIG", "GET", "*"],
    "config-get-star-pass-star": ["CONFIG", "GET", "*pass*"],
    "config-get-star-auth": ["CONFIG", "GET", "*auth"],
    "config-get-several": ["CONFIG", "GET", "maxclients", "masterauth", "requirepass"],
}


@dataclass
class Setup:
    server: ConfiguredRedis
    config_path: Path
    secrets: tuple[str, str]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("redis-reads")
    with password_redis(workdir / "server") as server, pytest.MonkeyPatch.context() as mp:
        password = server.requirepass or ""
        mp.setenv(PASSWORD_ENV, password)
        admin = server.admin()
        reset(admin, password)
        admin.close()
        steps = [
            {"title": name, "kind": "redis", "connection": "cache", "command": argv}
            for name, argv in {**READS, **SECRET_READS}.items()
        ]
        data: dict[str, Any] = {
            "audit_log": str(workdir / "audit.jsonl"),
            "connections": {
                "cache": {
                    "kind": "redis",
                    "url": f"redis://127.0.0.1:{server.port}/0",
                    "password": "${" + PASSWORD_ENV + "}",
                }
            },
            "runbooks": [{"id": "look", "title": "Look around", "diagnose": steps}],
        }
        config_path = workdir / "opstui.yaml"
        config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        yield Setup(server, config_path, (password, server.masterauth))


def _index(name: str) -> int:
    return list({**READS, **SECRET_READS}).index(name)


@pytest.mark.parametrize("name", list(READS))
async def test_reviewed_admin_reads_run_as_diagnose_steps(
    setup: Setup, name: str, tmp_path: Path
) -> None:
    parts = make_runner(load_checked(setup.config_path), tmp_path)
    try:
        step = await parts.runner.prepare_diagnose("look", _index(name))
        verdict = await parts.runner.classify(step)
        assert not verdict.mutating, verdict
        outcome = await parts.runner.run(step)  # no token: the TUI runs these by itself
    finally:
        await parts.close()
    assert outcome.ok, outcome
    if name == "config-get-maxclients":
        assert '"1000"' in outcome.output


@pytest.mark.parametrize("name", list(SECRET_READS))
async def test_config_get_never_shows_a_password_in_the_runner(
    setup: Setup, name: str, tmp_path: Path
) -> None:
    parts = make_runner(load_checked(setup.config_path), tmp_path)
    try:
        step = await parts.runner.prepare_diagnose("look", _index(name))
        outcome = await parts.runner.run(step)
    finally:
        await parts.close()
    assert outcome.ok, outcome
    seen = " ".join(
        [outcome.output, outcome.summary, repr(outcome.data)]
        + [event.message for event in parts.timeline.events()]
    )
    assert "***" in outcome.output
    for secret in setup.secrets:
        assert secret not in seen
    audit = parts.audit.path
    if audit.exists():
        text = audit.read_text()
        assert all(secret not in text for secret in setup.secrets)


@pytest.mark.parametrize("name", list(SECRET_READS))
def test_config_get_never_shows_a_password_in_opstui_run(
    setup: Setup, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--config", str(setup.config_path), "run", "look", f"diagnose:{_index(name) + 1}"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "***" in out.out + out.err
    audit = setup.config_path.parent / "audit.jsonl"
    shown = out.out + out.err + (audit.read_text() if audit.exists() else "")
    for secret in setup.secrets:
        assert secret not in shown
