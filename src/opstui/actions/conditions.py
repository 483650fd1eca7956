"""`until` conditions of watch steps: a tiny expression language, parsed here, never eval'd.

    waiting < 1000            state == ok            running >= desired
    value <= 250 and state != crit                   (a > 1 or b > 1) and not paused == 1

Names are `value`, `state`, `fields.<name>` or a bare field name; a bare word that is none of
those (`ok`, `crit`) is a literal. Numbers, 'quoted' or "quoted" strings, comparisons
(< <= > >= == !=), `and`, `or`, `not` and parentheses. A comparison with a missing field is
false (the watch keeps waiting and says which field is missing).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opstui.engine.snapshot import ProbeSnapshot

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<op><=|>=|==|!=|<|>)
      | (?P<paren>[()])
      | (?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""",
    re.VERBOSE,
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_KEYWORDS = {"and", "or", "not"}


class ConditionError(ValueError):
    """The condition does not parse; one line naming where."""


@dataclass(frozen=True, slots=True)
class Operand:
    literal: Any = None
    name: str | None = None

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        if self.name is None:
            return self.literal
        if self.name in ("value", "state"):
            return scope.get(self.name)
        fields: Mapping[str, Any] = scope.get("fields", {})
        key = self.name.removeprefix("fields.")
        if key in fields:
            return fields[key]
        if self.name.startswith("fields."):
            return None
        return _Bare(self.name)

    def text(self) -> str:
        return self.name if self.name is not None else repr(self.literal)


@dataclass(frozen=True, slots=True)
class _Bare:
    """A bare word that names nothing: a literal like `ok`, or a field that is missing."""

    word: str


def _plain(value: Any) -> Any:
    return value.word if isinstance(value, _Bare) else value


@dataclass(frozen=True, slots=True)
class Compare:
    left: Operand
    op: str
    right: Operand

    def holds(self, scope: Mapping[str, Any]) -> bool:
        left, right = self.left.resolve(scope), self.right.resolve(scope)
        if isinstance(left, _Bare) and isinstance(right, _Bare):
            return False  # two unknown names: a field is missing
        left, right = _plain(left), _plain(right)
        if left is None or right is None:
            return False
        if isinstance(left, bool | int | float) and isinstance(right, str):
            right = _number(right)
        elif isinstance(right, bool | int | float) and isinstance(left, str):
            left = _number(left)
        if left is None or right is None:
            return False
        if isinstance(left, str) != isinstance(right, str):
            return False
        try:
            return bool(_OPS[self.op](left, right))
        except TypeError:
            return False


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and, or, not
    parts: tuple[Node, ...]

    def holds(self, scope: Mapping[str, Any]) -> bool:
        if self.op == "not":
            return not self.parts[0].holds(scope)
        if self.op == "and":
            return all(part.holds(scope) for part in self.parts)
        return any(part.holds(scope) for part in self.parts)


Node = Compare | Logic


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(source):
            if source[pos:].strip() == "":
                break
            match = _TOKEN.match(source, pos)
            if match is None or match.end() == pos:
                raise ConditionError(
                    f"condition {source!r}: unexpected {source[pos:].strip()[:12]!r}"
                )
            kind = match.lastgroup or ""
            text = match.group(kind)
            if kind == "name" and text in _KEYWORDS:
                kind = text
            self.tokens.append((kind, text))
            pos = match.end()
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ConditionError(f"condition {self.source!r}: ends too soon")
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise ConditionError("condition is empty")
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise ConditionError(f"condition {self.source!r}: unexpected {extra[1]!r}")
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while (token := self.peek()) is not None and token[0] == "or":
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Logic("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.not_expr()]
        while (token := self.peek()) is not None and token[0] == "and":
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))

    def not_expr(self) -> Node:
        token = self.peek()
        if token is not None and token[0] == "not":
            self.take()
            return Logic("not", (self.not_expr(),))
        if token is not None and token[0] == "paren" and token[1] == "(":
            self.take()
            node = self.or_expr()
            closing = self.take()
            if closing != ("paren", ")"):
                raise ConditionError(f"condition {self.source!r}: missing ')'")
            return node
        return self.compare()

    def operand(self) -> Operand:
        kind, text = self.take()
        if kind == "num":
            return Operand(literal=float(text))
        if kind == "str":
            return Operand(literal=text[1:-1])
        if kind == "name":
            return Operand(name=text)
        raise ConditionError(f"condition {self.source!r}: expected a name or a value, got {text!r}")

    def compare(self) -> Node:
        left = self.operand()
        kind, text = self.take()
        if kind != "op":
            raise ConditionError(f"condition {self.source!r}: expected a comparison, got {text!r}")
        return Compare(left, text, self.operand())


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed `until` condition."""

    source: str
    root: Node

    def holds(self, snapshot: ProbeSnapshot | None) -> bool:
        return snapshot is not None and self.root.holds(scope_of(snapshot))

    def primary(self) -> Compare | None:
        """The first comparison of a name with a number: what a progress line tracks."""
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop(0)
            if isinstance(node, Compare):
                if node.left.name is not None and node.right.name is None:
                    return node
            else:
                stack.extend(node.parts)
        return None

    def missing(self, snapshot: ProbeSnapshot | None) -> list[str]:
        """Names the condition uses that the probe's reading does not have."""
        if snapshot is None:
            return []
        scope = scope_of(snapshot)
        absent: list[str] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop(0)
            if isinstance(node, Compare):
                left, right = node.left.resolve(scope), node.right.resolve(scope)
                for operand, value in ((node.left, left), (node.right, right)):
                    if operand.name is None:
                        continue
                    both_bare = isinstance(left, _Bare) and isinstance(right, _Bare)
                    if value is None or (both_bare and operand is node.left):
                        absent.append(operand.name)
            else:
                stack.extend(node.parts)
        return absent


    def unknown_fields(self, known: frozenset[str]) -> list[str]:
        """Names the condition reads that a reading with the fields `known` never has, for
        `validate`: `fields.X` and a bare name compared by order (`waitng < 1000`) must be
        fields; a bare word is a literal only beside `==`/`!=` and a name that is one
        (`state == ok`)."""
        unknown: list[str] = []
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop(0)
            if not isinstance(node, Compare):
                stack.extend(node.parts)
                continue
            pairs = ((node.left, node.right), (node.right, node.left))
            for operand, other in pairs:
                if not _names_field(operand, other, node.op, known):
                    unknown.append(operand.name or "")
                    break
        return unknown


def _is_known(operand: Operand, known: frozenset[str]) -> bool:
    name = operand.name
    if name is None:
        return False
    return name in ("value", "state") or name.removeprefix("fields.") in known


def _names_field(operand: Operand, other: Operand, op: str, known: frozenset[str]) -> bool:
    """Whether `operand` is fine: a literal, a known name, or a bare word used as a literal."""
    name = operand.name
    if name is None or _is_known(operand, known):
        return True
    if name.startswith("fields."):
        return False
    return op in ("==", "!=") and _is_known(other, known)


def scope_of(snapshot: ProbeSnapshot) -> dict[str, Any]:
    reading = snapshot.reading
    return {
        "value": reading.value if reading is not None else None,
        "state": snapshot.state.value,
        "fields": dict(reading.fields) if reading is not None else {},
    }


def parse_condition(source: str) -> Condition:
    """Parse once (a watch step fails at prepare time on a bad condition)."""
    return Condition(source, _Parser(source).parse())


def tracked_value(condition: Condition, snapshot: ProbeSnapshot | None) -> tuple[str, Any] | None:
    """(name, current value) of the primary comparison's left side, for progress lines."""
    primary = condition.primary()
    if primary is None or snapshot is None or primary.left.name is None:
        return None
    value = primary.left.resolve(scope_of(snapshot))
    return primary.left.name, (None if isinstance(value, _Bare) else value)
