"""The JSON Schema of the config file, for `opstui schema` and editors.

Point yaml-language-server at it with a first line such as
`# yaml-language-server: $schema=./opstui.schema.json`.
"""

from __future__ import annotations

from typing import Any

from opstui.config.models import Config

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """Draft 2020-12 schema of Config as written in YAML (aliases: `for`, not `for_`)."""
    body = Config.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": "https://opstui.invalid/config.schema.json",
        "title": "opstui config",
        "description": "Dashboard config for opstui: connections, probes, views. "
        "Durations as 5s/2m/250ms; secrets only as ${ENV_VAR} or file:/path.",
    }
    schema.update({key: value for key, value in body.items() if key != "title"})
    # Top-level `x-...` keys hold YAML anchors and are ignored by the loader.
    schema["patternProperties"] = {"^x-": {}}
    return schema
