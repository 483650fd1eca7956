"""The one redactor: every secret value the config resolved, in every form it can come back in.

A backend echoes what it received in forms the config never wrote: an HTTP server quotes the
`Authorization: Basic base64(user:password)` header in a 500 body, PostgreSQL repeats a DSN's
password, a JSON error escapes a quote, a URL carries a password percent-encoded. The
Redactor is built once per config from every Secret in it (connection URLs and DSNs and
their passwords, headers, tokens, AWS keys, secrets in step argv/env/args) and replaces each
of those forms with `***`. It sits at every sink (DESIGN.md section 6 point 6): the engine
scrubs readings and errors before a snapshot is published, the runner scrubs step output
and every timeline and audit line, the CLI scrubs what it prints, the exporter its labels.

This module imports nothing of opstui but config.types, so every layer may use it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

from pydantic import BaseModel

from opstui.config.types import Secret

MASK = "***"
MIN_LENGTH = 3
"""Shorter strings are not redacted from free text (they would mangle every line)."""

_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_PREFILTER_FROM = 400
"""From this length a substring search per form beats the alternation regex (measured: the
regex costs ~0.001 us per char and form, a search ~0.4 us per form; see contains)."""


def secret_objects(value: Any, seen: set[int] | None = None) -> Iterator[Secret]:
    """Every Secret inside a config, a connection or a step's rendered values."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, Secret):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secret_objects(getattr(value, name, None), seen)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from secret_objects(item, seen)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_objects(item, seen)


def _url_credentials(text: str) -> tuple[str, str] | None:
    """(user, password) of a URL with a password in its userinfo, percent-decoded."""
    if "://" not in text:
        return None
    try:
        parts = urlsplit(text)
        password = parts.password
        user = parts.username or ""
    except ValueError:
        return None
    if not password:
        return None
    return unquote(user), unquote(password)


def _b64_forms(raw: str) -> Iterator[str]:
    data = raw.encode("utf-8")
    for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        text = encoded.decode("ascii")
        yield text
        yield text.rstrip("=")


def _decoded_basic(value: str) -> str | None:
    """`user:password` when `value` is (or ends in) base64 of such a pair (a Basic header)."""
    token = value.split()[-1] if value.split() else ""
    if len(token) < 8:
        return None
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if ":" not in decoded or not decoded.isprintable():
        return None
    return decoded


def _text_forms(raw: str) -> Iterator[str]:
    """`raw` as it can show up in text: itself, URL-encoded (both ways, upper- and lower-case
    hex), JSON-escaped (ASCII and not), and base64 (standard and URL-safe, padded or not)."""
    yield raw
    for encoded in (quote(raw, safe=""), quote(raw), quote_plus(raw)):
        yield encoded
        yield _HEX_ESCAPE.sub(lambda m: m.group(0).lower(), encoded)
    yield json.dumps(raw)[1:-1]
    yield json.dumps(raw, ensure_ascii=False)[1:-1]
    yield from _b64_forms(raw)


def secret_strings(secret: Secret) -> Iterator[str]:
    """The plain strings one Secret stands for: its value; for a URL, its password and
    `user:password` (what Basic auth sends); else each `${ENV}` value put into it."""
    if secret.missing is not None:
        return  # not available here: nothing of it can leak
    value = secret.reveal()
    yield value
    credentials = _url_credentials(value)
    if credentials is not None:
        user, password = credentials
        yield password
        yield f"{user}:{password}"
        return
    yield from secret.parts
    for candidate in (value, *secret.parts):
        pair = _decoded_basic(candidate)
        if pair is not None:
            yield pair
            yield pair.split(":", 1)[1]


class Redactor:
    """Replaces every known secret, in every form, by `***`. Immutable after it is built,
    so one instance can be shared by every sink of a process."""

    __slots__ = ("_forms", "_ordered", "_pattern", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        plain = {v for v in values if len(v) >= MIN_LENGTH}
        forms: set[str] = set()
        for value in plain:
            forms.update(f for f in _text_forms(value) if len(f) >= MIN_LENGTH)
        self._values = frozenset(plain)
        self._forms = frozenset(forms)
        ordered = sorted(forms, key=lambda f: (-len(f), f))  # longest first
        self._ordered = tuple(ordered)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def of(cls, *sources: Any) -> Redactor:
        """The redactor of every Secret inside `sources` (configs, connections, values);
        plain strings in `sources` count as secrets too."""
        values: list[str] = []
        for source in sources:
            if isinstance(source, str):
                values.append(source)
                continue
            for secret in secret_objects(source):
                values.extend(secret_strings(secret))
        return cls(values)

    def __bool__(self) -> bool:
        return self._pattern is not None

    @property
    def forms(self) -> frozenset[str]:
        """Every string this redactor hides (for tests that grep sinks)."""
        return self._forms

    def extended(self, values: Iterable[str | Secret]) -> Redactor:
        """A redactor that also hides `values` (plain strings or Secrets)."""
        more: list[str] = []
        for value in values:
            if isinstance(value, Secret):
                more.extend(secret_strings(value))
            else:
                more.append(value)
        if not more:
            return self
        return Redactor([*self._values, *more])

    def __call__(self, text: str) -> str:
        return self.scrub(text)

    def contains(self, text: str) -> bool:
        """Whether `text` holds any form of any secret: the regex on short text, a substring
        search per form (C speed) on long text, whichever is cheaper. Nearly all text holds
        none, so the engine checks a whole reading with one call before copying anything."""
        if self._pattern is None or len(text) < MIN_LENGTH:
            return False
        if len(text) < _PREFILTER_FROM:
            return self._pattern.search(text) is not None
        return any(form in text for form in self._ordered)

    def scrub(self, text: str) -> str:
        """`text` with every form of every known secret replaced by `***`."""
        if self._pattern is None or len(text) < MIN_LENGTH:
            return text
        if len(text) >= _PREFILTER_FROM and not self.contains(text):
            return text
        return self._pattern.sub(MASK, text)

    def scrub_optional(self, text: str | None) -> str | None:
        return None if text is None else self.scrub(text)

    def scrub_value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (and dict key) scrubbed."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub_value(k): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.scrub_value(v) for v in value)
        return value


NOTHING = Redactor()
"""The redactor of a config without secrets."""


_BUILT: deque[Redactor] = deque(maxlen=64)
"""The config redactors this process built (the newest 64: a test run loads hundreds of
configs, opstui itself one or two), for the last sink: an unexpected error's text."""


def scrub_with_every_redactor(text: str) -> str:
    """`text` through every redactor this process built (a crash report does not know which
    config its exception came from)."""
    for redactor in list(_BUILT):
        text = redactor.scrub(text)
    return text


def redactor_for(config: Any) -> Redactor:
    """The config's redactor, built once and kept on it (every sink shares it)."""
    cached = getattr(config, "_redactor", None)
    if isinstance(cached, Redactor):
        return cached
    built = Redactor.of(config)
    if built:
        _BUILT.append(built)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        config._redactor = built  # not a Config (a test double): built again next time
    return built


class RedactingFormatter(logging.Formatter):
    """A log formatter whose whole output (message, traceback, stack) goes through a
    Redactor: an exception's text may quote a DSN or a header."""

    def __init__(self, redactor: Redactor, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.scrub(super().format(record))
