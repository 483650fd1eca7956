"""Checks a loaded config's templates and `until` conditions before anything runs.

Every template (param defaults, paths, headers, bodies, commands, args, argv, cwd, env, ecs
fields) is compiled by the same bounded sandbox that will render it, and the names it reads
are resolved: `params.X` must be a param of that action (diagnose steps and param defaults
have none), `probes.X` a probe, `probes.X.fields.Y` a field that probe's kind reports. Every
`until` (watch steps, `then:`) is parsed and its fields checked the same way. A problem found
here at `validate` used to surface at run time, the last kind after the mutation had run.

Problems are ConfigErrors, `FILE:LINE: key.path: message`, the lines found as the loader finds
them. `load_checked` is what every command loads a config with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables

from opstui.actions.conditions import ConditionError, parse_condition
from opstui.actions.templates import compile_template, is_template, parse_template
from opstui.config.loader import (
    ConfigError,
    Loc,
    Parsed,
    _Builder,
    _compose,
    _read_text,
    format_key_path,
    load_config,
)
from opstui.config.models import Config
from opstui.config.runbooks import Then
from opstui.config.types import shown

PROBE_KEYS = frozenset({"value", "fields", "state"})
"""What `probes.<id>` holds in a template (actions/templates.py probe_context)."""
GLOBALS = frozenset({"params", "probes", "range"})

TEMPLATE_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("path", "headers", "json"),
    "redis": ("command",),
    "sql": ("args",),
    "ecs": ("cluster", "service", "task", "reason", "count"),
    "shell": ("argv", "cwd", "env"),
    "prometheus": ("query",),
}
"""The keys of each step kind that are rendered as templates (actions/prepare.py)."""


@dataclass(frozen=True, slots=True)
class Problem:
    loc: Loc
    message: str


@dataclass(frozen=True, slots=True)
class Scope:
    """What a template may name: the action's params (None: it has none) and the probes."""

    params: frozenset[str] | None
    probes: Mapping[str, frozenset[str] | None]
    """probe id -> the fields its kind reports (None: any, they depend on the query)."""


def load_checked(path: str | Path, *, defer_secrets: bool = False) -> Config:
    """load_config, then this module's checks: what every command loads a config with."""
    config = load_config(path, defer_secrets=defer_secrets)
    check_config(config, path)
    return config


def check_config(config: Config, path: str | Path) -> None:
    """Raise one ConfigError with every template and condition problem, with lines."""
    problems = list(config_problems(config))
    if not problems:
        return
    file = str(path)
    parsed = _lines_of(Path(path), file)
    raise ConfigError.group(
        [
            ConfigError(file, p.message, parsed.line_of(p.loc), format_key_path(p.loc))
            for p in problems
        ]
    )


def _lines_of(path: Path, file: str) -> Parsed:
    """The YAML's key lines again (the loader does not keep them on the Config)."""
    root = _compose(_read_text(path, file))
    return _Builder().run(root) if root is not None else Parsed()


class ProbeFields(Mapping[str, frozenset[str] | None]):
    """probe id -> the fields its kind reports (None: any), from the source kind's `fields`
    declaration. Lazy: a source module is imported only for a probe a template or an `until`
    names, so `validate` and `check` stay quick."""

    def __init__(self, config: Config) -> None:
        self._probes = {probe.id: probe for probe in config.probes}
        self._known: dict[str, frozenset[str] | None] = {}

    def __getitem__(self, probe_id: str) -> frozenset[str] | None:
        if probe_id not in self._known:
            from opstui.sources.registry import UnknownKind, source_class

            probe = self._probes[probe_id]
            try:
                self._known[probe_id] = source_class(probe.kind).fields(probe)
            except (UnknownKind, ImportError):  # the engine says so when it builds the probe
                self._known[probe_id] = None
        return self._known[probe_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._probes)

    def __len__(self) -> int:
        return len(self._probes)


def config_problems(config: Config) -> Iterator[Problem]:
    probes = ProbeFields(config)
    for r, runbook in enumerate(config.runbooks):
        at: Loc = ("runbooks", r)
        for s, step in enumerate(runbook.diagnose):
            yield from _step_problems(step, (*at, "diagnose", s), Scope(None, probes), probes)
        for a, action in enumerate(runbook.actions):
            where: Loc = (*at, "actions", a)
            scope = Scope(frozenset(action.params), probes)
            yield from _step_problems(action, where, scope, probes)
            for name, spec in action.params.items():
                if isinstance(spec.default, str):
                    loc = (*where, "params", name, "default")
                    yield from template_problems(spec.default, loc, Scope(None, probes))
            if isinstance(action.then, Then):
                yield from _until_problems(
                    action.then.watch, action.then.until, (*where, "then", "until"), probes
                )


def _step_problems(
    step: Any, at: Loc, scope: Scope, probes: Mapping[str, frozenset[str] | None]
) -> Iterator[Problem]:
    kind = str(getattr(step, "kind", ""))
    if kind == "watch":
        yield from _until_problems(step.watch, step.until, (*at, "until"), probes)
        return
    for key in TEMPLATE_KEYS.get(kind, ()):
        value = getattr(step, "json_body" if key == "json" else key, None)
        yield from _value_problems(value, (*at, key), scope)


def _value_problems(value: Any, loc: Loc, scope: Scope) -> Iterator[Problem]:
    if isinstance(value, str):
        yield from template_problems(value, loc, scope)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _value_problems(item, (*loc, key), scope)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _value_problems(item, (*loc, index), scope)


def _until_problems(
    probe: str, until: str, loc: Loc, probes: Mapping[str, frozenset[str] | None]
) -> Iterator[Problem]:
    try:
        condition = parse_condition(until)
    except ConditionError as exc:
        yield Problem(loc, str(exc))
        return
    if not condition.unknown_fields(frozenset()):
        return  # it names no field (`state == ok`, `value < 5`): no need to ask the kind
    known = probes.get(probe)
    if known is None:
        return  # an unknown probe is the model's error; a query's fields are anyone's guess
    for name in condition.unknown_fields(known):
        yield Problem(loc, f"probe {probe!r} reports no field {name!r}; {_fields_hint(known)}")


def _fields_hint(known: frozenset[str]) -> str:
    return "it has: " + ", ".join(["value", "state", *sorted(known)])


def template_problems(text: str, loc: Loc, scope: Scope) -> Iterator[Problem]:
    """Syntax, then every name the template reads."""
    if not is_template(text):
        return
    try:
        compile_template(text)
        tree = parse_template(text)
    except TemplateSyntaxError as exc:
        yield Problem(loc, f"template {shown(text)}: syntax error: {exc.message}")
        return
    except Exception as exc:  # a compile-time SecurityError, ...
        yield Problem(loc, f"template {shown(text)}: {' '.join(str(exc).split())}")
        return
    for name in sorted(find_undeclared_variables(tree) - GLOBALS):
        yield Problem(loc, f"template {shown(text)}: unknown name {name!r} (use params or probes)")
    for message in _name_problems(tree, scope):
        yield Problem(loc, f"template {shown(text)}: {message}")


def _chain(node: nodes.Node) -> tuple[str | None, list[str | None]]:
    """`probes.ecs.fields.desired` -> ("probes", ["ecs", "fields", "desired"]); a segment that
    is not a constant (`params[x]`) is None."""
    segments: list[str | None] = []
    while True:
        if isinstance(node, nodes.Getattr):
            segments.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            segments.append(arg.value if isinstance(arg, nodes.Const) else None)
            node = node.node
        else:
            break
    root = node.name if isinstance(node, nodes.Name) and node.ctx == "load" else None
    return root, segments[::-1]


def _name_problems(tree: nodes.Node, scope: Scope) -> Iterator[str]:
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            root, segments = _chain(node)
            if root in ("params", "probes"):
                yield from _chain_problems(root, segments, scope)
                inner: nodes.Node = node
                while isinstance(inner, nodes.Getattr | nodes.Getitem):
                    if isinstance(inner, nodes.Getitem):
                        stack.append(inner.arg)
                    inner = inner.node
                continue
        stack.extend(node.iter_child_nodes())


def _chain_problems(root: str, segments: list[str | None], scope: Scope) -> Iterator[str]:
    if not segments or segments[0] is None:
        return
    first = segments[0]
    if root == "params":
        if scope.params is None:
            yield f"params.{first}: this template has no params (only actions do)"
        elif first not in scope.params:
            have = ", ".join(sorted(scope.params)) or "none"
            yield f"unknown param {first!r} (the action's params: {have})"
        return
    if first not in scope.probes:
        yield f"unknown probe {first!r}"
        return
    if len(segments) < 2 or segments[1] is None:
        return
    if segments[1] not in PROBE_KEYS:
        yield (
            f"probes.{first}.{segments[1]}: a probe has value, fields and state "
            f"(did you mean probes.{first}.fields.{segments[1]}?)"
        )
        return
    known = scope.probes[first]
    field = segments[2] if segments[1] == "fields" and len(segments) > 2 else None
    if field is not None and known is not None and field not in known:
        yield f"probe {first!r} reports no field {field!r}; {_fields_hint(known)}"
