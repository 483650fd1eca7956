"""A view via Prometheus starts without the backends' secrets; only what needs one fails.

The config is loaded with defer_secrets (as `opstui --via-prometheus` does): a `${ENV}` that
is not set, or a `file:` that cannot be read, becomes a Secret that raises when used. The
actions gate must then still work: prepare, classify, confirm, preview and run, each ending in
a clear message rather than a traceback, with nothing sent to the server and the audit log
saying what failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opstui.actions.runner import Refused
from opstui.cli import load_for_view
from opstui.config.loader import ConfigError, load_config
from opstui.config.types import MissingSecretError, Secret
from tests.actions.support import AdminApp, make_runner
from tests.actions.test_http import config as http_config
from tests.support import ServeApp

MISSING = "OPSTUI_T_NEVER_SET"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ops.yaml"
    path.write_text(text)
    return path


SECRETS_YAML = f"""
title: ops
connections:
  app: {{kind: http, base_url: "http://127.0.0.1:9", headers: {{X-Key: "${{{MISSING}}}"}}}}
  jobs: {{kind: redis, url: "redis://:${{{MISSING}}}@127.0.0.1:6379/0"}}
  db: {{kind: postgres, dsn: "${{{MISSING}_DSN}}"}}
  keyed: {{kind: http, base_url: "http://127.0.0.1:9", headers: {{X-Key: "file:nope.key"}}}}
  fine: {{kind: http, base_url: "http://127.0.0.1:9", headers: {{X-Key: "${{{MISSING}:-dev}}"}}}}
probes:
  - {{id: api, kind: health, connection: app}}
"""


def test_missing_secrets_fail_a_normal_load_and_are_deferred_for_a_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MISSING, raising=False)
    monkeypatch.delenv(f"{MISSING}_DSN", raising=False)
    path = write(tmp_path, SECRETS_YAML)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.lines()) == 4

    config = load_config(path, defer_secrets=True)
    assert config.deferred_secrets == (
        f"environment variable {MISSING} is not set",
        f"environment variable {MISSING}_DSN is not set",
        "cannot read secret file nope.key: no such file or directory",
    )
    header = config.connections["app"].headers["X-Key"]
    assert isinstance(header, Secret) and str(header) == "***"
    with pytest.raises(MissingSecretError, match=f"{MISSING} is not set"):
        header.reveal()
    url = config.connections["jobs"].url
    assert str(url) == "redis://:***@127.0.0.1:6379/0"  # the shape still shows
    assert config.connections["fine"].headers["X-Key"].reveal() == "dev"  # a default is a value
    # Nothing else is deferred: plain text from a missing variable is still an error.
    bad = write(tmp_path, f'title: "${{{MISSING}}}"\n')
    with pytest.raises(ConfigError, match=f"{MISSING} is not set"):
        load_config(bad, defer_secrets=True)


def test_only_a_view_via_prometheus_starts_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MISSING, raising=False)
    monkeypatch.delenv(f"{MISSING}_DSN", raising=False)
    path = write(tmp_path, SECRETS_YAML)
    config, via = load_for_view(str(path), "http://prometheus:9090")
    assert via is not None and via.url == "http://prometheus:9090"
    assert len(config.deferred_secrets) == 3
    with pytest.raises(ConfigError):  # a direct view polls: it needs them all
        load_for_view(str(path), None)
    in_config = write(tmp_path, SECRETS_YAML + "via_prometheus: http://prom:9090\n")
    config, via = load_for_view(str(in_config), None)
    assert via is not None and config.deferred_secrets


async def test_an_action_needing_a_missing_secret_fails_saying_which(
    serve_app: ServeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPSTUI_T_ADMIN_KEY", raising=False)
    monkeypatch.setenv("OPSTUI_T_BEARER", "bearer-5d1e88c4aa")
    app = AdminApp()
    url = await serve_app(app.app())
    path = write(tmp_path, json.dumps(http_config(url)))
    config = load_config(path, defer_secrets=True)
    assert config.deferred_secrets == ("environment variable OPSTUI_T_ADMIN_KEY is not set",)
    parts = make_runner(config, tmp_path)
    try:
        step = await parts.runner.prepare_action("queue", "pause-low")
        assert "X-Admin-Key: ***" in step.equivalent
        verdict = await parts.runner.classify(step)
        assert verdict.mutating
        preview = await parts.runner.preview(step)
        assert preview is None or preview.error is None or "OPSTUI_T_ADMIN_KEY" in preview.error
        reason = "cannot run from here: environment variable OPSTUI_T_ADMIN_KEY is not set"
        assert parts.runner.unavailable(step) == reason
        token = parts.runner.confirm(step, via="modal")
        with pytest.raises(Refused, match=reason):
            await parts.runner.run(step, token=token)
        diagnose = await parts.runner.prepare_diagnose("queue", 0)  # a GET through admin too
        with pytest.raises(Refused, match=reason):
            await parts.runner.run(diagnose)
        assert app.requests == []  # nothing reached the server
        # nothing ran: no intent, no result; each refusal is one line saying why
        records = parts.audit.records()
        assert [(r["phase"], r["why"]) for r in records] == [
            ("refused", reason)
        ] * 2
        notes = [e.message for e in parts.timeline.events()]
        assert any(reason in note for note in notes), notes
    finally:
        await parts.close()
