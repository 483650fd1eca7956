"""Hostile templates (DESIGN.md section 6 point 7): whatever a template does, rendering it ends
in a one-line error, memory stays bounded and nothing is sent. `{{ 'a' * 10**10 }}` used to
take 15 GB before it was killed.

Each template sits in a redis `ECHO ...` step (a read: nothing but the render could stop it),
as a diagnose step, an action and an action's param default. Preparing the step must fail
with the render error; the server is asked afterwards: it never ran an ECHO. The peak RSS
growth of the render (VmHWM, reset before each) is asserted, never a wall-clock time.

The validate-time half: a broken template, an unknown param and an `until` on a field the
probe does not report stop `opstui run --yes` before the mutation runs (it used to run first).
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opstui.actions.runner import ActionError
from opstui.cli import main
from tests.actions.support import make_config, make_runner
from tests.security.redis_servers import (
    KEY,
    PASSWORD_ENV,
    VALUE,
    ConfiguredRedis,
    password_redis_in_env,
    reset,
)

TARGET = "sec:tpl"
RSS_GROWTH_LIMIT_MB = 256

HOSTILE: dict[str, str] = {
    "repeat-string": "{{ 'a' * 10**10 }}",
    "repeat-list": "{{ ([1] * 10**9)|length }}",
    "huge-power": "{{ 7 ** (10 ** 9) }}",
    "product-of-powers": "{{ (2**4000) * (2**4000) }}",
    "ljust": "{{ 'a'.ljust(10**9) }}",
    "center-filter": "{{ 'a'|center(10**9) }}",
    "indent-filter": "{{ ('a\\n' * 20000)|indent(60000) }}",
    "format-width": "{{ '{:>999999999}'.format(1) }}",
    "percent-width": "{{ '%0999999999d' % 1 }}",
    "percent-star": "{{ '%*s' % (10**9, 'a') }}",
    "format-filter": "{{ '%999999999s'|format('a') }}",
    "wordwrap": "{{ ('a' * 60000)|wordwrap(1, wrapstring='bbbbbbbbbbbbbbbbbbbb') }}",
    "join-range": "{{ range(100000)|join('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }}",
    "str-join": "{{ ('x' * 30000).join(range(100000)|map('string')) }}",
    "replace-blowup": "{{ ('a' * 60000).replace('a', 'bbbbbbbbbbbbbbbbbbbb') }}",
    "lipsum": "{{ lipsum(100000) }}",
    "cycler": "{{ cycler(*range(100000)) }}",
    "to-bytes": "{{ (1).to_bytes(10**9, 'big') }}",
    "nested-loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "recursive-macro": "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}",
    "doubling-macro": "{% macro d(s) %}{{ d(s ~ s) }}{% endmacro %}{{ d('ab') }}",
    "macro-body-loop": "{% macro m() %}{% for i in range(100000) %}"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA{% endfor %}{% endmacro %}{{ m()|length }}",
    "set-block-loop": "{% set big %}{% for i in range(100000) %}"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA{% endfor %}{% endset %}{{ big|length }}",
    "shared-references": "{% set s = 'a' * 60000 %}{% set l = [s, s, s, s] %}"
    "{% set m = [l, l, l, l] %}{{ m|tojson }}",
    "sum-of-lists": "{% set l = [1] * 30000 %}{{ ([l] * 2)|sum(start=[])|length }}",
    "batch-fill": "{% set s = 'a' * 30000 %}{{ [s]|batch(60000, s)|list }}",
    "dunder-escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "format-widths-add-up": "{{ ('{:>65000}' * 5000).format(*range(5000)) }}",
    "percent-widths-add-up": "{{ ('%65000s' * 2) % ('a', 'b') }}",
    "map-center-join": "{{ range(100000)|map('center', 60000)|join }}",
    "map-center-list": "{{ range(100000)|map('center', 60000)|list|length }}",
    "tojson-indent": "{{ ([1] * 10000)|tojson(60000) }}",
}
"""Each one would allocate gigabytes, loop for hours or reach Python's internals."""

PLACES = ["diagnose", "action", "param-default"]


def _config_data(server: ConfiguredRedis, template: str) -> dict[str, Any]:
    step = {"kind": "redis", "connection": "cache", "title": "hostile"}
    return {
        "connections": {
            "cache": {
                "kind": "redis",
                "url": f"redis://127.0.0.1:{server.port}/0",
                "password": "${" + PASSWORD_ENV + "}",
            }
        },
        "runbooks": [
            {
                "id": "tpl",
                "title": "Templates",
                "diagnose": [{**step, "command": ["ECHO", template]}],
                "actions": [
                    {**step, "id": "action", "command": ["ECHO", template]},
                    {
                        **step,
                        "id": "default",
                        "command": ["ECHO", "{{ params.v }}"],
                        "params": {"v": {"type": "str", "default": template}},
                    },
                ],
            }
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfiguredRedis]:
    workdir = tmp_path_factory.mktemp("redis-templates")
    with password_redis_in_env(workdir) as started:
        yield started


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _echoes(server: ConfiguredRedis) -> int:
    admin = server.admin()
    try:
        entry = admin.info("commandstats").get("cmdstat_echo")
        return int(entry["calls"]) if isinstance(entry, dict) else 0
    finally:
        admin.close()


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_template_is_one_line_and_sends_nothing(
    server: ConfiguredRedis, name: str, place: str, tmp_path: Path
) -> None:
    parts = make_runner(make_config(_config_data(server, HOSTILE[name])), tmp_path)
    echoes = _echoes(server)
    _reset_peak()
    peak = _peak_mb()
    try:
        with pytest.raises(ActionError) as raised:
            if place == "diagnose":
                step = await parts.runner.prepare_diagnose("tpl", 0)
            else:
                action = "action" if place == "action" else "default"
                step = await parts.runner.prepare_action("tpl", action, {})
            await parts.runner.run(step)  # a read: it would run, and ECHO would be counted
        grown = _peak_mb() - peak
        message = str(raised.value)
        assert "template" in message, message
        assert "\n" not in message and len(message) < 800, message
        assert grown < RSS_GROWTH_LIMIT_MB, f"peak RSS grew {grown:.0f} MB"
        assert _echoes(server) == echoes, "the step was sent"
    finally:
        await parts.close()


def test_a_param_value_is_text_never_a_template(
    server: ConfiguredRedis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--param v="{{ 'a' * 10**10 }}"` sets that text: a value is never rendered again."""
    admin = server.admin()
    reset(admin, server.requirepass or "")
    path = tmp_path / "opstui.yaml"
    data = _config_data(server, "{{ params.v }}")
    runbook = data["runbooks"][0]
    runbook["diagnose"] = []
    runbook["actions"] = [
        {
            **runbook["actions"][0],
            "command": ["SET", TARGET, "{{ params.v }}"],
            "params": {"v": {"type": "str"}},
        }
    ]
    data["audit_log"] = str(tmp_path / "audit.jsonl")
    path.write_text(yaml.safe_dump(data))
    hostile = HOSTILE["repeat-string"]
    peak = _peak_mb()
    code = main(["--config", str(path), "run", "tpl", "action", "--yes", "-p", f"v={hostile}"])
    assert code == 0, capsys.readouterr().err
    assert admin.get(TARGET) == hostile
    assert _peak_mb() - peak < RSS_GROWTH_LIMIT_MB
    admin.close()


BROKEN: dict[str, tuple[dict[str, Any], str]] = {
    "syntax-error": (
        {"command": ["SET", KEY, "{{ params.v }"], "params": {"v": {"type": "str"}}},
        "syntax error",
    ),
    "unknown-param": (
        {"command": ["SET", KEY, "{{ params.w }}"], "params": {"v": {"type": "str"}}},
        "unknown param 'w'",
    ),
    "until-unknown-field": (
        {
            "command": ["SET", KEY, "{{ params.v }}"],
            "params": {"v": {"type": "str"}},
            "then": {"watch": "backlog", "until": "waitng < 1000", "timeout": "5s"},
        },
        "reports no field 'waitng'",
    ),
    "until-syntax-error": (
        {
            "command": ["SET", KEY, "{{ params.v }}"],
            "params": {"v": {"type": "str"}},
            "then": {"watch": "backlog", "until": "waiting <", "timeout": "5s"},
        },
        "ends too soon",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_step_stops_run_before_the_mutation(
    server: ConfiguredRedis, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config is refused at load (FILE:LINE, exit 2), so the SET never reaches Redis."""
    admin = server.admin()
    reset(admin, server.requirepass or "")
    action, says = BROKEN[name]
    data = _config_data(server, "x")
    data["probes"] = [
        {"id": "backlog", "kind": "queue", "connection": "cache", "flavor": "bullmq",
         "queue": "sends"}
    ]
    data["audit_log"] = str(tmp_path / "audit.jsonl")
    data["runbooks"][0]["actions"] = [
        {"kind": "redis", "connection": "cache", "title": "t", "id": "broken", **action}
    ]
    path = tmp_path / "opstui.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["--config", str(path), "run", "tpl", "broken", "--yes", "-p", "v=changed"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"{path}:") and says in err, err
    assert admin.get(KEY) == VALUE
    assert main(["--config", str(path), "validate"]) == 2
    admin.close()
