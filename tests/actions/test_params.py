"""Params: types, bounds, patterns, choices, defaults from readings; danger high."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opstui.actions.runner import ActionError, Refused
from opstui.sources.base import Reading
from tests.actions.support import make_config, make_runner


def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "environment": "production",
        "connections": {"svc": {"kind": "http", "base_url": "http://127.0.0.1:9"}},
        "probes": [{"id": "ecs", "kind": "health", "connection": "svc"}],
        "runbooks": [
            {
                "id": "scale",
                "title": "Scale",
                "actions": [
                    {
                        "id": "scale-up",
                        "kind": "shell",
                        "title": "Scale up",
                        "argv": [
                            "scale-tool",
                            "{{ params.count }}",
                            "{{ params.region }}",
                            "{{ params.dry }}",
                            "{{ params.ratio }}",
                            "{{ params.size }}",
                        ],
                        "danger": "high",
                        "verb": "Scale",
                        "params": {
                            "count": {
                                "type": "int",
                                "min": 1,
                                "max": 20,
                                "default": "{{ probes.ecs.fields.desired * 2 }}",
                            },
                            "region": {
                                "type": "str",
                                "pattern": "[a-z]+-[a-z]+-[0-9]",
                                "default": "eu-west-1",
                            },
                            "dry": {"type": "bool", "default": False},
                            "ratio": {"type": "float", "min": 0, "max": 1, "default": 0.5},
                            "size": {"type": "choice", "choices": ["s", "m", "l"], "default": "m"},
                        },
                    },
                    {
                        "id": "note",
                        "kind": "shell",
                        "title": "Note",
                        "argv": ["echo", "{{ params.text }}"],
                        "params": {"text": {"type": "str"}},
                    },
                    {
                        "id": "oops",
                        "kind": "shell",
                        "title": "Typo",
                        "argv": ["echo", "{{ probes.nope.value }}"],
                    },
                ],
            }
        ],
    }


async def test_defaults_come_from_readings_and_are_typed(tmp_path: Path) -> None:
    parts = make_runner(make_config(config(tmp_path)), tmp_path)
    try:
        assert parts.runner.default_params("scale", "scale-up")["count"] is None  # no reading
        parts.engine.ingest("ecs", Reading(value=1.0, fields={"desired": 4}))
        defaults = parts.runner.default_params("scale", "scale-up")
        assert defaults == {
            "count": 8,
            "region": "eu-west-1",
            "dry": False,
            "ratio": 0.5,
            "size": "m",
        }
        step = await parts.runner.prepare_action("scale", "scale-up")
        assert step.params["count"] == 8
        assert step.rendered["argv"] == ["scale-tool", "8", "eu-west-1", "False", "0.5", "m"]
        parts.engine.ingest("ecs", Reading(value=1.0, fields={"desired": 12}))
        with pytest.raises(ActionError, match="param count: must be at most 20, got 24"):
            await parts.runner.prepare_action("scale", "scale-up")
    finally:
        await parts.close()


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"count": "abc"}, "param count: expected an integer, got 'abc'"),
        ({"count": "2.5"}, "param count: expected an integer"),
        ({"count": "0"}, "param count: must be at least 1, got 0"),
        ({"count": 21}, "param count: must be at most 20, got 21"),
        ({"count": True}, "param count: expected an integer, got true/false"),
        ({"count": "3", "region": "EU"}, "param region: 'EU' does not match"),
        ({"count": "3", "dry": "perhaps"}, "param dry: expected true or false"),
        ({"count": "3", "ratio": "1.5"}, "param ratio: must be at most 1"),
        ({"count": "3", "size": "xl"}, "param size: must be one of s, m, l, got 'xl'"),
    ],
)
async def test_bad_params_are_refused_naming_the_param(
    tmp_path: Path, given: dict[str, Any], message: str
) -> None:
    parts = make_runner(make_config(config(tmp_path)), tmp_path)
    try:
        with pytest.raises(ActionError) as info:
            await parts.runner.prepare_action("scale", "scale-up", given)
        assert message in str(info.value) and "\n" not in str(info.value)
    finally:
        await parts.close()


async def test_strings_from_a_form_are_converted(tmp_path: Path) -> None:
    parts = make_runner(make_config(config(tmp_path)), tmp_path)
    try:
        step = await parts.runner.prepare_action(
            "scale",
            "scale-up",
            {"count": " 5 ", "dry": "yes", "ratio": "0.25", "size": "l", "region": "us-east-2"},
        )
        assert dict(step.params) == {
            "count": 5,
            "region": "us-east-2",
            "dry": True,
            "ratio": 0.25,
            "size": "l",
        }
        with pytest.raises(ActionError, match="param text: required"):
            await parts.runner.prepare_action("scale", "note")
        with pytest.raises(
            ActionError, match=r"oops: argv\[1\]: template .*has no attribute 'nope'"
        ):
            await parts.runner.prepare_action("scale", "oops")
    finally:
        await parts.close()


async def test_templates_are_sandboxed(tmp_path: Path) -> None:
    data = config(tmp_path)
    data["runbooks"][0]["actions"][1]["argv"] = [
        "echo",
        "{{ params.text.__class__.__mro__[1].__subclasses__() }}",
    ]
    parts = make_runner(make_config(data), tmp_path)
    try:
        with pytest.raises(ActionError, match="unsafe"):
            await parts.runner.prepare_action("scale", "note", {"text": "x"})
    finally:
        await parts.close()


async def test_danger_high_needs_the_target_typed(tmp_path: Path) -> None:
    parts = make_runner(make_config(config(tmp_path)), tmp_path)
    try:
        step = await parts.runner.prepare_action("scale", "scale-up", {"count": 3})
        assert step.danger == "high" and step.target == "scale-tool" and step.verb == "Scale"
        for typed in (None, "", "scale", "scale-tool2"):
            with pytest.raises(Refused, match="type the target's name exactly"):
                parts.runner.confirm(step, via="modal", typed_target=typed)
        token = parts.runner.confirm(step, via="modal", typed_target="scale-tool")
        assert token.fingerprint == step.fingerprint()
        with pytest.raises(ActionError, match="unknown confirmation channel"):
            parts.runner.confirm(step, via="api", typed_target="scale-tool")
    finally:
        await parts.close()


def test_a_single_expression_keeps_its_type_in_json_and_sql_args() -> None:
    from opstui.actions.templates import RenderError, render_value

    context = {"params": {"count": 4, "name": "q"}, "probes": {}}
    body = {
        "count": "{{ params.count }}",
        "label": "n={{ params.count }}",
        "q": ["{{ params.name }}"],
    }
    assert render_value(body, context, "json", native=True) == {
        "count": 4,
        "label": "n=4",
        "q": ["q"],
    }
    assert render_value(body, context, "json") == {"count": "4", "label": "n=4", "q": ["q"]}
    with pytest.raises(RenderError, match="missing"):
        render_value("{{ params.missing }}", context, "json", native=True)
    with pytest.raises(RenderError):
        render_value("{{ ''.__class__ }}", context, "json", native=True)
