"""Sandboxed templates for step fields and param defaults, and typed params.

Templates see `probes.<id>.value`, `probes.<id>.fields.<name>`, `probes.<id>.state` (from
the ProbeReader's current snapshots) and `params.<name>`. The environment is Jinja2's
sandbox with StrictUndefined, so a typo is an error naming the template, never an empty
string sent to production; nothing is ever eval'd.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, Template, Undefined
from jinja2.sandbox import SandboxedEnvironment

from opstui.config.types import Secret, shown

if TYPE_CHECKING:
    from opstui.actions.context import ProbeReader
    from opstui.config.models import Config
    from opstui.config.runbooks import ParamSpec

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_MARKERS = ("{{", "{%", "{#")
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


class RenderError(ValueError):
    """A template or a param value is wrong; the message is one line."""


def is_template(text: object) -> bool:
    return isinstance(text, str) and any(marker in text for marker in _MARKERS)


def probe_context(config: Config, probes: ProbeReader) -> dict[str, Any]:
    """`probes.<id>` for every probe: value, fields and state word (None before a reading)."""
    context: dict[str, Any] = {}
    for probe in config.probes:
        snapshot = probes.current(probe.id)
        reading = snapshot.reading if snapshot is not None else None
        context[probe.id] = {
            "value": reading.value if reading is not None else None,
            "fields": dict(reading.fields) if reading is not None else {},
            "state": snapshot.state.value if snapshot is not None else "init",
        }
    return context


@functools.lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    """Compiled once per text: compiling costs milliseconds, and a confirm modal re-renders
    its step on every param edit."""
    return _ENV.from_string(text)


@functools.lru_cache(maxsize=1024)
def _expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


def _native(text: str, context: Mapping[str, Any], where: str) -> Any:
    """A string that is exactly one `{{ expression }}` keeps the expression's type (an int
    param stays an int in a JSON body or a SQL argument); anything else renders to text."""
    match = _SINGLE_EXPRESSION.match(text)
    expr = match.group("expr") if match else None
    if expr is None or "{{" in expr or "}}" in expr or "{%" in text:
        return render_text(text, context, where)
    try:
        result = _expression(expr.strip())(**context)
        if isinstance(result, Undefined):
            str(result)  # StrictUndefined raises here, naming what is missing
    except Exception as exc:  # TemplateError, SecurityError, arithmetic on a missing reading
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise RenderError(f"{where}: template {shown(text)}: {message}") from None
    return result


def render_text(text: str, context: Mapping[str, Any], where: str) -> str:
    """Render one template string; a plain string is returned as is."""
    if not is_template(text):
        return text
    try:
        return _template(text).render(**context)
    except Exception as exc:  # TemplateError, SecurityError, arithmetic on a missing reading
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise RenderError(f"{where}: template {shown(text)}: {message}") from None


def render_value(
    value: Any, context: Mapping[str, Any], where: str, *, native: bool = False
) -> Any:
    """Render every string inside a JSON-like value (dict keys stay literal); Secrets kept.

    With `native`, a string that is a single `{{ expression }}` keeps the expression's type
    (for JSON bodies and SQL arguments); otherwise every template renders to text."""
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        if native and is_template(value):
            return _native(value, context, where)
        return render_text(value, context, where)
    if isinstance(value, Mapping):
        return {
            k: render_value(v, context, f"{where}.{k}", native=native) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            render_value(v, context, f"{where}[{i}]", native=native) for i, v in enumerate(value)
        ]
    return value


def _as_number(name: str, raw: Any, integer: bool) -> int | float:
    word = "an integer" if integer else "a number"
    if isinstance(raw, bool):
        raise RenderError(f"param {name}: expected {word}, got true/false")
    if isinstance(raw, int | float):
        number: float = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip().replace("_", ""))
        except ValueError:
            raise RenderError(f"param {name}: expected {word}, got {shown(raw)}") from None
    else:
        raise RenderError(f"param {name}: expected {word}, got {type(raw).__name__}")
    if math.isnan(number) or math.isinf(number):
        raise RenderError(f"param {name}: expected {word}, got {shown(raw)}")
    if integer:
        if number != int(number):
            raise RenderError(f"param {name}: expected an integer, got {shown(raw)}")
        return int(number)
    return number


def convert_param(name: str, spec: ParamSpec, raw: Any) -> Any:
    """A given or defaulted value as the param's type, within its bounds; RenderError if not."""
    if spec.type in ("int", "float"):
        number = _as_number(name, raw, spec.type == "int")
        if spec.min is not None and number < spec.min:
            raise RenderError(f"param {name}: must be at least {spec.min:g}, got {number:g}")
        if spec.max is not None and number > spec.max:
            raise RenderError(f"param {name}: must be at most {spec.max:g}, got {number:g}")
        return number
    if spec.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise RenderError(f"param {name}: expected true or false, got {shown(raw)}")
    text = raw if isinstance(raw, str) else str(raw)
    if spec.type == "choice":
        choices = spec.choices or []
        if text not in choices:
            raise RenderError(
                f"param {name}: must be one of {', '.join(choices)}, got {shown(text)}"
            )
        return text
    if spec.pattern is not None and re.fullmatch(spec.pattern, text) is None:
        raise RenderError(f"param {name}: {shown(text)} does not match {spec.pattern}")
    return text


def default_of(name: str, spec: ParamSpec, probes: Mapping[str, Any]) -> Any:
    """The spec's default, rendered from the readings and typed; None when it has none."""
    raw = spec.default
    if raw is None:
        return None
    if is_template(raw):
        raw = render_text(raw, {"probes": probes, "params": {}}, f"param {name} default")
        if raw.strip() in ("", "None"):
            return None
    return convert_param(name, spec, raw)
