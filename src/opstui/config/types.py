"""Small value types of the config language: durations and secrets."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`5s`, `2m`, `250ms`, `1.5h` or a bare number of seconds -> seconds as float."""
    if isinstance(value, bool):
        raise ValueError("a duration like 5s, 2m or 250ms, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration like 5s, 2m or 250ms")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("a duration like 5s, 2m or 250ms")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form for screens: 250ms, 5s, 2m, 1h30m."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: 250ms, 5s, 2m, 1h, or seconds as a number",
        }
    ),
]


class Secret:
    """A value that came from `${ENV}` or `file:`; it never prints itself.

    `reveal()` is the only way to the real value, and is called only where the value is sent
    to a backend. Everything else (repr, str, logs, screens, JSON) sees `***`.
    """

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self._source = source

    def reveal(self) -> str:
        return self._value

    @property
    def source(self) -> str:
        """Where it came from (`${ADMIN_KEY}`, `file:/run/key`): safe to show."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._source!r})"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def reveal(value: str | Secret) -> str:
    """The real text of a plain string or a Secret."""
    return value.reveal() if isinstance(value, Secret) else value


def redact(value: str | Secret) -> str:
    return "***" if isinstance(value, Secret) else value


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FILE_PREFIX = "file:"


def _interpolate(text: str) -> str:
    """Replace `${VAR}` (or `${VAR:-default}`) with the environment's value."""
    import os

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                return default
            raise ValueError(f"environment variable {name} is not set")
        return value

    return _ENV_REF.sub(substitute, text)


def _read_secret_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


def interpolate_text(value: Any) -> Any:
    """Validator for ordinary text: `${ENV}` is substituted, the result is not secret."""
    if isinstance(value, str):
        return _interpolate(value)
    return value


def to_secret(value: Any) -> Any:
    """Validator for secret-bearing text: a `${ENV}` or `file:` reference becomes a Secret.

    A literal stays a plain string; the loader rejects literals where the key is sensitive.
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        if value.startswith(_FILE_PREFIX):
            return Secret(_read_secret_file(value[len(_FILE_PREFIX) :]), value)
        if _ENV_REF.search(value):
            return Secret(_interpolate(value), value)
    return value


Text = Annotated[str, BeforeValidator(interpolate_text)]
SecretText = Annotated[
    str | Secret,
    BeforeValidator(to_secret),
    PlainSerializer(redact, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "a secret: ${ENV_VAR} or file:/path (redacted wherever shown)",
        }
    ),
]
