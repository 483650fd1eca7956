"""Sandboxed templates for step fields and param defaults, and typed params.

Templates see `probes.<id>.value`, `probes.<id>.fields.<name>`, `probes.<id>.state` (from
the ProbeReader's current snapshots) and `params.<name>`. The environment is Jinja2's
sandbox with StrictUndefined, so a typo is an error naming the template, never an empty
string sent to production; nothing is ever eval'd.

Every render is bounded (DESIGN.md section 6 point 7): no value or output beyond MAX_OUTPUT
characters, no integer beyond MAX_INT_BITS, checked before the big thing is built (a
`{{ 'a' * 10**10 }}` used to take 15 GB); no render beyond RENDER_SECONDS, enforced between
the template's own lines (loops of loops, recursive macros). Whatever a template does, the
caller gets a one-line RenderError.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from jinja2 import StrictUndefined, Template, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from opstui.config.types import Secret, shown

if TYPE_CHECKING:
    from opstui.actions.context import ProbeReader
    from opstui.config.models import Config
    from opstui.config.runbooks import ParamSpec

MAX_OUTPUT = 64 * 1024
"""Characters a template may produce, and the most any value inside one may weigh."""
MAX_INT_BITS = 4096
"""Integers beyond this many bits (about 1,200 digits) are refused before they are computed."""
RENDER_SECONDS = 0.25
"""A render's time budget: a config's templates run on every confirm modal and poll-driven
default, and none needs more than a few milliseconds."""

_MARKERS = ("{{", "{%", "{#")
_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_T = TypeVar("_T")


class RenderError(ValueError):
    """A template or a param value is wrong; the message is one line."""


class TemplateLimit(SecurityError):
    """A template went past a size or time bound; the message says which."""


# --- sizes: checked BEFORE anything big is built ------------------------------------------


def weight(value: Any, limit: int = MAX_OUTPUT) -> int:
    """About how many characters `value` would render to, counting shared references every
    time they occur (so `[s] * n` weighs n times `s`). Stops counting past `limit`."""
    total = 0
    stack: list[Any] = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack.extend(item)
        else:
            total += 16
    return total


def _check_weight(value: Any, what: str) -> None:
    if weight(value) > MAX_OUTPUT:
        raise TemplateLimit(f"{what} would be larger than {MAX_OUTPUT // 1024} KiB")


def _check_count(number: Any, what: str) -> None:
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) > MAX_OUTPUT:
        raise TemplateLimit(f"{what} {number} is larger than {MAX_OUTPUT}")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def _check_product(left: Any, right: Any) -> None:
    """`seq * n`, `n * seq` and `int * int`, judged before Python builds the result."""
    for seq, count in ((left, right), (right, left)):
        if _is_sequence(seq) and isinstance(count, int):
            if count > 0 and weight(seq) * count > MAX_OUTPUT:
                raise TemplateLimit(f"repeating would be larger than {MAX_OUTPUT // 1024} KiB")
            return
    both_ints = isinstance(left, int) and isinstance(right, int)
    if both_ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"a product beyond {MAX_INT_BITS} bits")


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return
    if abs(base) > 1 and exponent * base.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"a power beyond {MAX_INT_BITS} bits")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*\}")


def _check_percent_format(text: str) -> None:
    """`'%999999999d' % 1` and `'%*s' % (n, x)`: the widths and precisions of all fields,
    added up, must fit, before anything is formatted."""
    total = len(text)
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*":
                raise TemplateLimit("a '*' width in a % format")
            total += int(part) if part is not None else 0
    if total > MAX_OUTPUT:
        raise TemplateLimit(f"% format widths add up to more than {MAX_OUTPUT}")


def _check_brace_format(text: str) -> None:
    """`'{:>999999999}'.format(x)` and nested `{:{}}` widths are refused before formatting."""
    if re.search(r"\{[^{}]*:[^{}]*\{", text):
        raise TemplateLimit("a nested width in a format string")
    total = len(text)
    for match in _BRACE_SPEC.finditer(text):
        spec = match.group(0)
        if ":" in spec:
            total += sum(int(n) for n in re.findall(r"\d+", spec.split(":", 1)[1]))
    if total > MAX_OUTPUT:
        raise TemplateLimit(f"format widths add up to more than {MAX_OUTPUT}")


def _bounded_list(items: Iterable[Any], what: str) -> list[Any]:
    """An iterator's items, taken while they weigh little enough (a `map` of a range can
    yield gigabytes, one item at a time)."""
    taken: list[Any] = []
    total = 0
    for item in items:
        total += weight(item) + 2
        if total > MAX_OUTPUT:
            raise TemplateLimit(f"{what} would be larger than {MAX_OUTPUT // 1024} KiB")
        taken.append(item)
    return taken


def _bounded_join(items: Iterable[Any], separator: str = "") -> str:
    """`"".join` that counts first: for `~`, macro and `{% set %}` block bodies, `join`."""
    parts: list[str] = []
    total = 0
    for item in items:
        _check_weight(item, "a joined value")
        text = item if isinstance(item, str) else str(item)
        total += len(text) + len(separator)
        if total > MAX_OUTPUT + len(separator):
            raise TemplateLimit(f"joined text would be larger than {MAX_OUTPUT // 1024} KiB")
        parts.append(text)
    return separator.join(parts)


def _finalize(value: Any) -> Any:
    """Every `{{ value }}` passes here before it becomes text."""
    _check_weight(value, "a value")
    return value


# --- str methods, binary operators, filters --------------------------------------------------

_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find",
        "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal",
        "isdigit", "isidentifier", "islower", "isnumeric", "isspace", "istitle", "isupper",
        "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix",
        "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
    }
)
_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    int: frozenset({"bit_length", "is_integer"}),
    float: frozenset({"is_integer"}),
}
"""Methods of built-in values a template may call; every other one (`to_bytes`, `encode`,
list mutators...) is refused. The width-taking ones are checked in `call`."""
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _check_str_call(text: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if name in _WIDTH_METHODS and args:
        _check_count(args[0], f"{name} width")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and len(text) + text.count("\t") * size > MAX_OUTPUT:
            raise TemplateLimit(f"expandtabs would be larger than {MAX_OUTPUT // 1024} KiB")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name in ("format", "format_map"):
        _check_brace_format(text)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = text.count(old) if old else len(text) + 1
        if len(text) + hits * len(new) > MAX_OUTPUT:
            raise TemplateLimit(f"replace would be larger than {MAX_OUTPUT // 1024} KiB")


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A built-in filter whose inputs are weighed, and whose counts and widths are checked,
    before it runs; its result is weighed after."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        own = args[skip:]
        if own and isinstance(own[0], Iterator):  # map/select output: take it, counting
            own = (_bounded_list(own[0], f"the input of filter {name}"), *own[1:])
            args = (*args[:skip], *own)
        _check_weight((own, kwargs), f"the input of filter {name}")
        for number in (*own[1:], *kwargs.values()):
            _check_count(number, f"filter {name}: a count")
        value = own[0] if own else None
        if name == "indent":
            width = own[1] if len(own) > 1 else kwargs.get("width", 4)
            pad = len(width) if isinstance(width, str) else width
            text = value if isinstance(value, str) else ""
            lines = text.count("\n") + 1
            if isinstance(pad, int) and len(text) + lines * pad > MAX_OUTPUT:
                raise TemplateLimit(f"indent would be larger than {MAX_OUTPUT // 1024} KiB")
        elif name == "wordwrap":
            wrap = own[3] if len(own) > 3 else kwargs.get("wrapstring") or "\n"
            if isinstance(value, str) and len(value) * (1 + len(str(wrap))) > MAX_OUTPUT:
                raise TemplateLimit(f"wordwrap would be larger than {MAX_OUTPUT // 1024} KiB")
        elif name == "replace" and len(own) >= 3:
            _check_replace(value, own[1], own[2])
        elif name == "format" and isinstance(value, str):
            _check_percent_format(value)
        elif name == "join":
            separator = own[1] if len(own) > 1 else kwargs.get("d", "")
            if isinstance(value, Iterable) and not isinstance(value, str):
                items = _bounded_list(value, "the input of filter join")
                if isinstance(separator, str) and len(items) * len(separator) > MAX_OUTPUT:
                    raise TemplateLimit(f"join would be larger than {MAX_OUTPUT // 1024} KiB")
                args = (*args[:skip], items, *own[1:])
        elif name == "tojson":
            indent = own[1] if len(own) > 1 else kwargs.get("indent")
            if isinstance(indent, int) and weight(value) * (1 + indent) > MAX_OUTPUT:
                raise TemplateLimit(f"tojson would be larger than {MAX_OUTPUT // 1024} KiB")
        elif name == "sum":
            start = own[2] if len(own) > 2 else kwargs.get("start", 0)
            if not isinstance(start, int | float):
                raise TemplateLimit("filter sum adds numbers only")
        result = func(*args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _check_weight(result, f"the result of filter {name}")
        return result

    return guarded


class _Generator(CodeGenerator):
    """Jinja's code generator, but `a ~ b` goes through a join that counts first."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, bounded in output size, value size and time.

    Size: `*`, `**`, `+` and `%` are intercepted and judged before they compute; `~`, macro
    and block bodies join through a counting join; every `{{ value }}` is weighed; str methods
    are an allow-list, with widths checked; every filter is weighed and checked (`indent`,
    `wordwrap`, `replace`, `join`, `format`, `center`, `batch`...). Time: `deadline` (below)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _Generator
    concat = staticmethod(_bounded_join)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        self.globals.clear()
        self.globals["range"] = safe_range  # lipsum, cycler, joiner, namespace, dict: gone
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_product(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+" and _is_sequence(left) and _is_sequence(right):
            if weight(left) + weight(right) > MAX_OUTPUT:
                raise TemplateLimit(f"a sum larger than {MAX_OUTPUT // 1024} KiB")
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
            _check_weight(right, "the values of a % format")
        return super().call_binop(context, operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(value, types.BuiltinMethodType | types.MethodWrapperType):
            allowed = next((m for t, m in _METHODS.items() if isinstance(obj, t)), None)
            return allowed is not None and attr in allowed
        return True

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_weight((args, kwargs), "call arguments")
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name == "join" and args:
                return _bounded_join(args[0], owner)
            _check_str_call(owner, name, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _check_weight(result, "a call's result")
        return result


# --- time -----------------------------------------------------------------------------------

_TEMPLATE_FILE = "<template>"
_state = threading.local()


def _line_check(frame: Any, event: str, arg: Any) -> Any:
    if time.monotonic() > _state.deadline:
        _state.expired = True
        raise TemplateLimit(f"took longer than {RENDER_SECONDS:g} s")
    return _line_check


def _calls(frame: Any, event: str, arg: Any) -> Any:
    """The thread's trace function while a template renders: only template code (compiled
    from `<template>`) gets a line-level check of the deadline, so a loop of loops stops."""
    if frame.f_code.co_filename == _TEMPLATE_FILE:
        if getattr(_state, "expired", False):
            raise TemplateLimit(f"took longer than {RENDER_SECONDS:g} s")
        return _line_check
    return None


def deadline(run: Callable[[], _T], seconds: float = RENDER_SECONDS) -> _T:
    """Run `run` (a render) under a deadline that interrupts template code between lines.

    A trace function costs a few microseconds per render; a thread we would abandon bounds
    nothing (its memory keeps growing) and a subprocess costs milliseconds."""
    previous = sys.gettrace()
    outer = getattr(_state, "deadline", None), getattr(_state, "expired", False)
    _state.deadline = time.monotonic() + seconds
    if outer[0] is not None and previous is _calls:  # nested: never extend the outer one
        _state.deadline = min(_state.deadline, outer[0])
    _state.expired = False
    sys.settrace(_calls)
    try:
        return run()
    finally:
        sys.settrace(previous)
        _state.deadline, _state.expired = outer


def _render_stream(template: Template, context: Mapping[str, Any]) -> str:
    """The top level's output, counted as it is produced."""
    parts: list[str] = []
    total = 0
    for chunk in template.generate(**context):
        total += len(chunk)
        if total > MAX_OUTPUT:
            raise TemplateLimit(f"output larger than {MAX_OUTPUT // 1024} KiB")
        parts.append(chunk)
    return "".join(parts)


_ENV = BoundedEnvironment()


def compile_template(text: str) -> Template:
    """Parse and compile (cached): TemplateSyntaxError for a broken template."""
    return _template(text)


def parse_template(text: str) -> nodes.Template:
    """The template's syntax tree, for `validate` to resolve the names it reads."""
    return _ENV.parse(text)


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
        result = deadline(lambda: _expression(expr.strip())(**context))
        if isinstance(result, Undefined):
            str(result)  # StrictUndefined raises here, naming what is missing
        _check_weight(result, "the value")
    except Exception as exc:  # TemplateError, SecurityError, arithmetic on a missing reading
        raise RenderError(f"{where}: template {shown(text)}: {_one_line(exc)}") from None
    return result


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "recursion too deep"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def render_text(text: str, context: Mapping[str, Any], where: str) -> str:
    """Render one template string; a plain string is returned as is."""
    if not is_template(text):
        return text
    try:
        return deadline(lambda: _render_stream(_template(text), context))
    except Exception as exc:  # TemplateError, SecurityError, arithmetic on a missing reading
        raise RenderError(f"{where}: template {shown(text)}: {_one_line(exc)}") from None


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
