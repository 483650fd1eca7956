"""A confirmation token runs exactly the step it was minted for (DESIGN.md section 6 point 2):
change any part of the step that decides what runs or how it was confirmed (danger, verb,
environment, timeout, connection, target, the rendered command, the params, the kind, the
action) and the same token is refused; the key on the password-protected server is untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opstui.actions.base import PreparedStep
from opstui.actions.runner import Refused
from opstui.config.models import Config
from tests.actions.support import make_config, make_runner
from tests.security.redis_servers import (
    KEY,
    PASSWORD_ENV,
    VALUE,
    ConfiguredRedis,
    password_redis_in_env,
    reset,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfiguredRedis]:
    workdir = tmp_path_factory.mktemp("redis-tokens")
    with password_redis_in_env(workdir) as started:
        yield started


def _config(server: ConfiguredRedis) -> Config:
    connection = {
        "kind": "redis",
        "url": f"redis://127.0.0.1:{server.port}/0",
        "password": "${" + PASSWORD_ENV + "}",
    }
    return make_config(
        {
            "environment": "production",
            "connections": {"cache": connection, "other": connection},
            "runbooks": [
                {
                    "id": "keys",
                    "title": "Keys",
                    "actions": [
                        {
                            "id": "overwrite",
                            "title": "Overwrite the key",
                            "kind": "redis",
                            "connection": "cache",
                            "command": ["SET", KEY, "{{ params.value }}"],
                            "params": {"value": {"type": "str"}},
                            "danger": "low",
                            "verb": "Overwrite",
                        }
                    ],
                }
            ],
        }
    )


CHANGES: dict[str, dict[str, Any]] = {
    "danger": {"danger": "high"},
    "verb": {"verb": "Inspect"},
    "environment": {"environment": "staging"},
    "timeout": {"timeout": 3600.0},
    "connection": {"connection": "other"},
    "target": {"target": "sec:other"},
    "rendered": {"rendered": {"argv": ["SET", KEY, "x"], "command": ["SET", KEY, "x"]}},
    "params": {"params": {"value": "y"}},
    "kind": {"kind": "shell"},
    "action": {"action_id": "other"},
    "title": {"title": "Looks harmless"},
}


@pytest.mark.parametrize("field", list(CHANGES))
async def test_a_token_does_not_run_a_changed_step(
    server: ConfiguredRedis, field: str, tmp_path: Path
) -> None:
    admin = server.admin()
    reset(admin, server.requirepass or "")
    parts = make_runner(_config(server), tmp_path)
    try:
        step = await parts.runner.prepare_action("keys", "overwrite", {"value": "confirmed"})
        token = parts.runner.confirm(step, via="--yes")
        changed: PreparedStep = dataclasses.replace(step, **CHANGES[field])
        assert changed.fingerprint() != step.fingerprint()
        with pytest.raises(Refused):
            await parts.runner.run(changed, token=token)
        assert admin.get(KEY) == VALUE  # the server never saw the SET
        outcome = await parts.runner.run(step, token=token)  # the token was good for `step`
        assert outcome.ok, outcome
        assert admin.get(KEY) == "confirmed"
    finally:
        await parts.close()
        admin.close()
