"""Load a YAML config into a Config, or fail with one plain line per problem.

Every problem becomes a ConfigError naming file, line and key path (`probes[2].interval`):
unreadable or non-UTF-8 files, YAML syntax, duplicate keys (PyYAML would silently keep the
last), validation errors (rephrased from pydantic's wording), missing `${ENV}` variables,
unreadable `file:` secrets and cross-references. No traceback ever reaches the user, and no
message contains a secret's value.

The YAML is composed into nodes (which keep their line) and turned into plain data here, so
every key and item has a line, duplicates are seen, and pydantic's error locations can be
mapped back to the deepest node that exists.
"""

from __future__ import annotations

import difflib
import re
import stat
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from opstui.config.models import (
    IDENT,
    IDENT_HINT,
    Config,
    ConnectionConfig,
    ProbeConfig,
    ReferenceProblem,
    ReferenceProblems,
)
from opstui.config.types import deferred_secrets, shown

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

Loc = tuple[Any, ...]


# --- the error ------------------------------------------------------------------------------


class ConfigError(Exception):
    """A config problem: `FILE:LINE: key.path: message`, exactly one line.

    `errors` holds every problem found (each one line, sorted by line); `str()` is the first.
    `line` is None when the problem is the file itself (missing, unreadable); `key_path` is
    empty when no key is involved (then the line reads `FILE:LINE: message`).
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        line: int | None = None,
        key_path: str = "",
        errors: Sequence[ConfigError] | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.key_path = key_path
        self.message = message
        self.errors: list[ConfigError] = list(errors) if errors else [self]
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where, self.key_path, self.message] if self.key_path else [where, self.message]
        return " ".join(": ".join(parts).splitlines())

    def __str__(self) -> str:
        return self._render()

    def lines(self) -> list[str]:
        """Every problem, one line each, as the CLI prints them."""
        return [str(error) for error in self.errors]

    @classmethod
    def group(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error standing for several: sorted by line, duplicates dropped."""
        unique: dict[str, ConfigError] = {}
        for error in sorted(errors, key=lambda e: e.line or 0):
            unique.setdefault(str(error), error)
        ordered = list(unique.values())
        first = ordered[0]
        return cls(first.file, first.message, first.line, first.key_path, errors=ordered)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_key_path(loc: Loc) -> str:
    """`probes[2].thresholds.for`; odd keys quoted: `headers["X.Y"]`, `connections[1]`."""
    out = ""
    for seg in loc:
        if seg == "[key]":
            continue
        if isinstance(seg, str) and _PLAIN_KEY.match(seg):
            out += f".{seg}" if out else seg
        elif isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
        elif isinstance(seg, str):
            out += "[" + '"' + seg.encode("unicode_escape").decode("ascii")[:40] + '"]'
        else:
            out += f"[{shown(seg)}]"
    return out


# --- YAML to data, remembering lines -----------------------------------------------------


class _YamlProblem(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class _Problem:
    line: int
    loc: Loc
    message: str


@dataclass
class Parsed:
    """Plain data from the YAML, with the line of every key and item."""

    data: Any = None
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[_Problem] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest node on `loc` that exists (for a missing key: its mapping)."""
        for end in range(len(loc), -1, -1):
            try:
                line = self.lines.get(loc[:end])
            except TypeError:  # an unhashable segment cannot be a key we recorded
                line = None
            if line is not None:
                return line
        return 1

    def strip_tags(self, loc: Loc) -> Loc:
        """Drop the `kind` tags pydantic puts in locations inside discriminated unions."""
        out: list[Any] = []
        current: Any = self.data
        skipped_at: Any = None
        for seg in loc:
            if isinstance(current, dict):
                if current.get("kind") == seg and skipped_at is not current:
                    skipped_at = current
                    continue
                out.append(seg)
                current = current.get(seg) if _hashable(seg) else None
            elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
                out.append(seg)
                current = current[seg]
            else:
                out.append(seg)
                current = None
        return tuple(out)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_TAB = "'\\t'"
_DEFAULT_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_MERGE_TAG = "tag:yaml.org,2002:merge"


_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)
"""libyaml's parser with PyYAML's resolver: the same node tree (tags, values, lines) ten
times faster. Only a text both read without a complaint takes this path; anything libyaml
objects to is read again by the pure-Python parser, whose messages the corpus pins."""


def _compose(text: str) -> Node | None:
    """YAML text to a node tree; syntax errors become _YamlProblem with their line."""
    if _FAST_LOADER is not None:
        try:
            yaml.reader.Reader(text)  # the pure-Python reader's character checks, first
            node: Node | None = yaml.compose(text, Loader=_FAST_LOADER)
            return node
        except Exception:  # RecursionError too: the slow path below says what is wrong
            pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "not valid YAML"
        if _TAB in problem:
            message = "a tab character: indent YAML with spaces, never tabs"
        elif "expected a single document" in (exc.context or ""):
            message = "several YAML documents (---) in one file; put everything in one"
        else:
            message = f"invalid YAML: {problem}"
        raise _YamlProblem(message, line) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise _YamlProblem(
            f"a control character (0x{exc.character:02x}) YAML does not allow", line
        ) from None
    except yaml.YAMLError as exc:
        raise _YamlProblem(f"invalid YAML: {exc}", 1) from None
    except RecursionError:
        raise _YamlProblem("nested too deeply to read", 1) from None


class _Builder:
    """Turns nodes into dicts, lists and scalars; records lines; finds duplicate keys."""

    def __init__(self) -> None:
        self.parsed = Parsed()
        self._scalars = SafeConstructor()
        self._active: set[int] = set()
        self._count = 0
        self._stopped = False

    def run(self, root: Node) -> Parsed:
        self.parsed.lines[()] = root.start_mark.line + 1
        self.parsed.data = self._value(root, ())
        return self.parsed

    def _problem(self, node: Node, loc: Loc, message: str) -> None:
        self.parsed.problems.append(_Problem(node.start_mark.line + 1, loc, message))

    def _value(self, node: Node, loc: Loc) -> Any:
        self._count += 1
        if self._stopped:
            return None
        if self._count > MAX_NODES or len(loc) > MAX_DEPTH:
            self._stopped = True
            self._problem(node, loc, "too large or nested too deeply (an alias loop?)")
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, loc)
        if id(node) in self._active:
            self._problem(node, loc, "an alias refers to the collection that contains it")
            return None
        if node.tag not in _DEFAULT_TAGS:
            self._problem(node, loc, f"unsupported YAML tag {shown(node.tag)}")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, loc)
            assert isinstance(node, MappingNode)
            return self._mapping(node, loc)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: ScalarNode, loc: Loc) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            problem = exc.problem or "cannot read this value"
            if "could not determine a constructor" in problem:
                problem = f"unsupported YAML tag {shown(node.tag)}"
            self._problem(node, loc, problem)
        except Exception:  # PyYAML raises ValueError, KeyError, ... on odd scalars
            self._problem(node, loc, f"cannot read {shown(node.value)} as {_tag_word(node.tag)}")
        return None

    def _sequence(self, node: SequenceNode, loc: Loc) -> list[Any]:
        items: list[Any] = []
        for index, item in enumerate(node.value):
            self.parsed.lines[(*loc, index)] = item.start_mark.line + 1
            items.append(self._value(item, (*loc, index)))
        return items

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        own: dict[Any, int] = {}
        # Merges first, so the keys written here (and their lines) override merged ones.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(key_node, value_node, loc, result)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, loc, "a key must be a plain value, not a list or mapping")
                continue
            key = self._scalar(key_node, loc)
            if not _hashable(key):
                self._problem(key_node, loc, "a key must be a plain value")
                continue
            line = key_node.start_mark.line + 1
            if key in own:
                self._problem(
                    key_node, (*loc, key), f"duplicate key {shown(key)} (first on line {own[key]})"
                )
                continue
            own[key] = line
            self.parsed.lines[(*loc, key)] = line
            result[key] = self._value(value_node, (*loc, key))
        return result

    def _merge(self, key: Node, node: Node, loc: Loc, into: dict[Any, Any]) -> None:
        """`<<: *defaults` (or a list of them): keys not set explicitly come from there."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self._problem(key, loc, "`<<` merges a mapping or a list of mappings")
                return
            merged = self._value(source, loc)
            if isinstance(merged, dict):
                for name, value in merged.items():
                    into.setdefault(name, value)


def _tag_word(tag: str) -> str:
    return {
        "tag:yaml.org,2002:int": "a whole number",
        "tag:yaml.org,2002:float": "a number",
        "tag:yaml.org,2002:bool": "true/false",
        "tag:yaml.org,2002:timestamp": "a date",
        "tag:yaml.org,2002:binary": "base64 data",
    }.get(tag, shown(tag))


# --- pydantic errors to plain words -----------------------------------------------------------


def _what(value: object) -> str:
    """A wrong value in words, without echoing text (it may be a credential)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return shown(value)
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _what_scalar(value: object) -> str:
    """Like _what, but short text is shown (for fields that never hold secrets)."""
    return shown(value) if isinstance(value, str) else _what(value)


def _unwrap(tp: Any, data: Any) -> Any:
    """Strip Annotated/Optional; pick the union member whose `kind` matches the data."""
    for _ in range(10):
        origin = get_origin(tp)
        if origin is typing.Annotated:
            tp = get_args(tp)[0]
        elif origin is typing.Union or origin is types.UnionType:
            members = [m for m in get_args(tp) if m is not type(None)]
            kind = data.get("kind") if isinstance(data, dict) else None
            chosen = [m for m in members if _kind_literal(m) == kind] or members
            tp = chosen[0]
            if len(chosen) > 1:
                return None
        else:
            return tp
    return None


def _kind_literal(tp: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel) and "kind" in tp.model_fields:
        args = get_args(tp.model_fields["kind"].annotation)
        return args[0] if len(args) == 1 else None
    return None


def _keys_at(loc: Loc, data: Any) -> list[str]:
    """The keys allowed by the model at `loc` (aliases as written, e.g. `for`)."""
    tp: Any = Config
    current: Any = data
    for seg in loc:
        tp = _unwrap(tp, current)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = next((f for name, f in tp.model_fields.items() if seg in (name, f.alias)), None)
            if info is None:
                return []
            tp = info.annotation
        elif get_origin(tp) in (list, dict):
            tp = get_args(tp)[-1]
        else:
            return []
        current = (
            current.get(seg)
            if isinstance(current, dict) and _hashable(seg)
            else (
                current[seg]
                if isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current)
                else None
            )
        )
    tp = _unwrap(tp, current)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [info.alias or name for name, info in tp.model_fields.items()]
    return []


def _did_you_mean(word: object, choices: Sequence[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
_SHOW_INPUT = {"int_parsing", "int_from_float", "float_parsing", "bool_parsing", "finite_number"}
_BOUNDS = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _describe(error: ErrorDetails, loc: Loc, data: Any) -> tuple[Loc, str]:
    """pydantic's error as (key path, short plain message)."""
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    last = loc[-1] if loc else None
    if kind == "missing":
        return loc, f"missing required key {shown(last)}"
    if kind == "extra_forbidden":
        return loc, f"unknown key {shown(last)}" + _did_you_mean(last, _keys_at(loc[:-1], data))
    if kind == "invalid_key":
        return loc, f"keys must be text, got {_what(last)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        section = (
            "probe"
            if loc[:1] == ("probes",)
            else "connection"
            if loc[:1] == ("connections",)
            else "entry"
        )
        known = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        if not known:
            known = _known_kinds(section)
        known_text = ", ".join(known)
        if kind == "union_tag_not_found":
            if not isinstance(value, dict):
                return loc, f"expected a mapping (key: value) for a {section}, got {_what(value)}"
            return (*loc, "kind"), f"missing required key 'kind'; known kinds: {known_text}"
        tag = ctx.get("tag", "")
        return (*loc, "kind"), (
            f"unknown {section} kind {shown(tag)}; known kinds: {known_text}"
            + _did_you_mean(tag, known)
        )
    if kind in _EXPECTED:
        got = _what_scalar(value) if kind in _SHOW_INPUT else _what(value)
        return loc, f"expected {_EXPECTED[kind]}, got {got}"
    if kind == "literal_error":
        return loc, f"expected {ctx.get('expected')}, got {_what_scalar(value)}"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == IDENT:
            return loc, f"bad identifier {_what_scalar(value)}: {IDENT_HINT}"
        return loc, f"{_what_scalar(value)} does not match {ctx.get('pattern')}"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return loc, f"must be {words} {ctx.get(name)}, got {_what(value)}"
    if kind in ("too_short", "string_too_short"):
        minimum = ctx.get("min_length", 1)
        return loc, "must not be empty" if minimum == 1 else f"needs at least {minimum} items"
    if kind in ("too_long", "string_too_long"):
        return loc, f"may have at most {ctx.get('max_length')} items"
    if kind in ("value_error", "assertion_error"):
        return loc, str(ctx.get("error", error["msg"]))
    return loc, error["msg"].replace("Input should be", "expected")


def _known_kinds(section: str) -> list[str]:
    union = ProbeConfig if section == "probe" else ConnectionConfig
    members = get_args(_unwrap_annotated(union))
    members = members or (_unwrap_annotated(union),)
    return [str(k) for k in (_kind_literal(m) for m in members) if k is not None]


def _unwrap_annotated(tp: Any) -> Any:
    while get_origin(tp) is typing.Annotated:
        tp = get_args(tp)[0]
    return tp


# --- loading --------------------------------------------------------------------------------


def load_config(path: str | Path, *, defer_secrets: bool = False) -> Config:
    """Read, parse and validate one config file; raise ConfigError with every problem.

    With `defer_secrets`, a secret whose `${ENV}` is unset or whose `file:` is unreadable
    does not fail the load (see config.types.deferred_secrets); the reasons are kept in
    `config.deferred_secrets`.
    """
    if defer_secrets:
        with deferred_secrets() as missing:
            config = load_config(path)
        config._deferred_secrets = tuple(missing)
        return config
    path = Path(path)
    file = str(path)
    text = _read_text(path, file)
    try:
        root = _compose(text)
    except _YamlProblem as problem:
        raise ConfigError(file, problem.message, problem.line) from None
    if root is None:
        raise ConfigError(file, "the file is empty (no settings, only comments or blanks)", 1)
    parsed = _Builder().run(root)
    if parsed.problems:
        raise ConfigError.group(
            [ConfigError(file, p.message, p.line, format_key_path(p.loc)) for p in parsed.problems]
        )
    if not isinstance(parsed.data, dict):
        raise ConfigError(
            file,
            "the top level must be a mapping (title:, connections:, probes:, views:), "
            f"not {_what(parsed.data)}",
            parsed.line_of(()),
        )
    data = {k: v for k, v in parsed.data.items() if not is_extension_key(k)}
    try:
        return Config.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as exc:
        errors = [
            error
            for details in exc.errors(include_url=False)
            for error in _errors_from(details, parsed, file)
        ]
    raise ConfigError.group(errors)


def is_extension_key(key: object) -> bool:
    """Top-level `x-...` keys are ignored (as in docker-compose): a home for YAML anchors."""
    return isinstance(key, str) and key.startswith("x-")


def _errors_from(details: ErrorDetails, parsed: Parsed, file: str) -> list[ConfigError]:
    """One pydantic error as ConfigErrors with lines (a ReferenceProblems gives several)."""
    loc = parsed.strip_tags(tuple(details["loc"]))
    cause = (details.get("ctx") or {}).get("error")
    problems: list[ReferenceProblem] = []
    if isinstance(cause, ReferenceProblems):
        problems = cause.problems
    elif isinstance(cause, ReferenceProblem):
        problems = [cause]
    if problems:
        return [
            ConfigError(
                file,
                problem.message,
                parsed.line_of((*loc, *problem.loc)),
                format_key_path((*loc, *problem.loc)),
            )
            for problem in problems
        ]
    where, message = _describe(details, loc, parsed.data)
    return [ConfigError(file, message, parsed.line_of(where), format_key_path(where))]


def _read_text(path: Path, file: str) -> str:
    """The file's text: a regular, reasonably small, UTF-8 file (a BOM is allowed)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(file, "no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(file, f"cannot read: {_reason(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(file, "is a directory, not a config file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(file, "not a regular file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(file, f"cannot read: {_reason(exc)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(file, "larger than 4 MiB; is this the right file?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            file,
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column}; save it as UTF-8",
            line,
        ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return "bad path" if isinstance(exc, ValueError) else type(exc).__name__
