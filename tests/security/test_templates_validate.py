"""The load-time template check (actions/static.py) refuses what would fail at run time, and
nothing a working config needs: the four examples load, and ordinary templates and `until`
conditions pass. The refusals themselves are in tests/config/broken/ (template_*.yaml,
until_*.yaml) and test_templates_hostile.py (they stop `opstui run` before the mutation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opstui.actions.static import Scope, config_problems, load_checked, template_problems
from tests.actions.support import make_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))

SCOPE = Scope(
    params=frozenset({"count", "org"}),
    probes={"ecs": frozenset({"desired", "running"}), "rows": None},
)

ACCEPTED = [
    "{{ probes.ecs.fields.desired * 2 }}",
    "{{ probes['ecs'].fields['running'] }}",
    "{{ probes.ecs.value }} {{ probes.ecs.state }}",
    "{{ probes.rows.fields.anything_a_query_returns }}",
    "{{ params.count|int + 1 }}",
    "rate_limit:{{ params.org|lower }}",
    "{% for i in range(3) %}{{ i }}{% endfor %}",
    "{% set n = params.count %}{{ n }}",
    "{% macro pad(s) %}[{{ s }}]{% endmacro %}{{ pad(params.org) }}",
    "{{ params }}",
]

REFUSED = {
    "{{ params.x }": "syntax error",
    "{{ params.cuont }}": "unknown param 'cuont'",
    "{{ probes.ecs.fields.desird }}": "reports no field 'desird'",
    "{{ probes.ecss.value }}": "unknown probe 'ecss'",
    "{{ probes.ecs.desired }}": "did you mean probes.ecs.fields.desired",
    "{{ lipsum(5) }}": "unknown name 'lipsum'",
    "{{ namespace(a=1) }}": "unknown name 'namespace'",
    "{{ cycler(1) }}": "unknown name 'cycler'",
    "{{ env.HOME }}": "unknown name 'env'",
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_examples_pass_the_check(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_KEY", "REDIS_PASSWORD", "PGPASSWORD", "DATABASE_URL", "DB_PASSWORD"):
        monkeypatch.setenv(name, "x")
    load_checked(path, defer_secrets=True)


@pytest.mark.parametrize("text", ACCEPTED)
def test_ordinary_templates_pass(text: str) -> None:
    assert list(template_problems(text, ("t",), SCOPE)) == []


@pytest.mark.parametrize("text", list(REFUSED))
def test_broken_templates_are_named(text: str) -> None:
    problems = list(template_problems(text, ("t",), SCOPE))
    assert problems and REFUSED[text] in problems[0].message, problems


def _watch_config(until: str) -> dict[str, Any]:
    return {
        "connections": {"cache": {"kind": "redis", "url": "redis://127.0.0.1:1/0"}},
        "probes": [
            {"id": "q", "kind": "queue", "connection": "cache", "flavor": "bullmq", "queue": "s"}
        ],
        "runbooks": [
            {
                "id": "r",
                "title": "r",
                "diagnose": [{"title": "w", "kind": "watch", "watch": "q", "until": until}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("until", "unknown"),
    [
        ("waiting < 1000", None),
        ("state == ok", None),
        ("ok == state", None),
        ("value <= 5 and not is_paused == 1", None),
        ("fields.failed > 0 or (waiting > 1 and active > 1)", None),
        ("waitng < 1000", "waitng"),
        ("fields.waitng < 1000", "fields.waitng"),
        ("paused == yes", None),
        ("pasued == 1", "pasued"),
        ("state == ok and latency > 3", "latency"),
    ],
)
def test_until_fields_are_checked(until: str, unknown: str | None) -> None:
    problems = list(config_problems(make_config(_watch_config(until))))
    if unknown is None:
        assert problems == []
    else:
        assert len(problems) == 1 and f"no field {unknown!r}" in problems[0].message
