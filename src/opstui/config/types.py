"""Small value types of the config language: durations, secrets and secret-bearing URLs.

Validators here raise only ValueError with a short plain message: pydantic turns that into an
error the loader can place on a line. Nothing here ever puts a secret's value in a message.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
)

_DURATION = re.compile(r"^\s*(-?)\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_DURATION_HINT = "a duration like 5s, 2m or 250ms"
_MAX_SHOWN = 40


def shown(value: object) -> str:
    """A short, escaped rendering of a (non-secret) input for an error message."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 4] + "...'"


def parse_duration(value: Any) -> float:
    """`5s`, `2m`, `250ms`, `1.5h` or a bare number of seconds -> seconds as float."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {_DURATION_HINT}, got {_kind_of(value)}")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected {_DURATION_HINT}, got {shown(value)}")
        negative, number, unit = match.groups()
        if negative:
            raise ValueError(f"a duration cannot be negative, got {shown(value)}")
        seconds = float(number) * _UNIT_SECONDS[unit]
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"expected {_DURATION_HINT}, got a number too large") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"expected {_DURATION_HINT}, got {shown(value)}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {shown(value)}")
    return seconds


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form for screens: 250ms, 5s, 2m, 1h30m."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"  # 28.0303 -> 28s; 1.5 -> 1.5s
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"


def _kind_of(value: object) -> str:
    """What a wrong value is, in words, without showing it (it may be a secret)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} value"


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"},
        {"type": "number", "minimum": 0},
    ],
    "description": "a duration: 250ms, 5s, 2m, 1h, or seconds as a number",
}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_DURATION_SCHEMA),
]
PositiveDuration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)?$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration longer than 0: 250ms, 5s, 2m, 1h, or seconds",
        }
    ),
]


class MissingSecretError(ValueError):
    """A secret was needed that this process was started without (see deferred_secrets)."""


_DEFERRED: ContextVar[list[str] | None] = ContextVar("opstui_deferred_secrets", default=None)


@contextlib.contextmanager
def deferred_secrets() -> Iterator[list[str]]:
    """While loading a config inside this block, a secret whose `${ENV}` is not set (or whose
    `file:` cannot be read) does not fail the load: it becomes a Secret that raises
    MissingSecretError when used, and its reason is added to the yielded list.

    For views that poll nothing themselves (`--via-prometheus`): a wall screen or a laptop
    without production credentials can still show the dashboard; only an action that needs
    the secret fails, saying which variable is missing.
    """
    found: list[str] = []
    token = _DEFERRED.set(found)
    try:
        yield found
    finally:
        _DEFERRED.reset(token)


def _defer(reason: str, source: str, shape: str = "") -> Secret:
    """The Secret that stands in for one not available here (see deferred_secrets). A URL
    whose password is missing still shows itself as `scheme://user:***@host/...`."""
    found = _DEFERRED.get()
    assert found is not None
    if reason not in found:
        found.append(reason)
    shown = _mask_password(shape) if "://" in shape and "@" in shape else "***"
    return Secret(shape, source, shown, missing=reason)


def _missing_names(text: str) -> list[str]:
    return [
        m.group(1)
        for m in _ENV_REF.finditer(text)
        if m.group(2) is None and os.environ.get(m.group(1)) is None
    ]


class Secret:
    """A value that came from `${ENV}` or `file:`; it never prints itself.

    `reveal()` is the only way to the real value, and is called only where the value is sent
    to a backend. Everything else (repr, str, logs, screens, JSON) sees `***`, or for a URL
    with a password, the URL with `***` in the password's place.
    """

    __slots__ = ("_missing", "_parts", "_shown", "_source", "_value")

    def __init__(
        self,
        value: str,
        source: str,
        shown: str = "***",
        missing: str | None = None,
        parts: tuple[str, ...] = (),
    ) -> None:
        self._value = value
        self._source = source
        self._shown = shown
        self._missing = missing
        self._parts = parts

    def reveal(self) -> str:
        if self._missing is not None:
            raise MissingSecretError(self._missing)
        return self._value

    @property
    def missing(self) -> str | None:
        """Why this secret has no value here (a deferred `${ENV}` that is not set), else None."""
        return self._missing

    @property
    def parts(self) -> tuple[str, ...]:
        """The `${ENV}` values substituted into it (`Bearer ${TOKEN}` -> the token alone): a
        backend may echo one without the rest, so the redactor hides each on its own."""
        return self._parts

    @property
    def source(self) -> str:
        """Where it came from (`${ADMIN_KEY}`, `file:/run/key`): safe to show."""
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._source!r})"

    def __str__(self) -> str:
        return self._shown

    def __format__(self, spec: str) -> str:
        return format(self._shown, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self  # immutable: copies of a config share it

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled (it would be written out in clear)")


def reveal(value: str | Secret) -> str:
    """The real text of a plain string or a Secret."""
    return value.reveal() if isinstance(value, Secret) else value


def redact(value: str | Secret) -> str:
    """What may be shown: a plain string as is, a Secret as `***` (or its redacted URL)."""
    return str(value) if isinstance(value, Secret) else value


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FILE_PREFIX = "file:"
_MAX_SECRET_FILE = 64 * 1024


def _interpolate(text: str) -> str:
    """Replace `${VAR}` (or `${VAR:-default}`) with the environment's value."""
    return _interpolate_parts(text)[0]


def _interpolate_parts(text: str) -> tuple[str, tuple[str, ...]]:
    """`text` interpolated, and the values put into it (for the redactor)."""
    parts: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                parts.append(default)
                return default
            raise ValueError(f"environment variable {name} is not set")
        parts.append(value)
        return value

    return _ENV_REF.sub(substitute, text), tuple(parts)


def _safe_source(text: str) -> str:
    """The reference as written, with any `:-default` (a literal) masked."""
    return _ENV_REF.sub(
        lambda m: f"${{{m.group(1)}:-***}}" if m.group(2) is not None else m.group(0), text
    )


def _base_dir(info: ValidationInfo | None) -> Path | None:
    context = info.context if info is not None else None
    if isinstance(context, dict):
        base = context.get("base_dir")
        if isinstance(base, str | Path):
            return Path(base)
    return None


def _read_secret_file(raw_path: str, base_dir: Path | None = None) -> str:
    """Read a secret file: a regular file (never a pipe that could block), small, UTF-8."""
    shown_path = raw_path
    try:
        path = Path(raw_path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"cannot read secret file {shown_path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_FILE + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        reason = reason[:1].lower() + reason[1:]
        raise ValueError(f"cannot read secret file {shown_path}: {reason}") from None
    except ValueError as exc:
        if str(exc).startswith("cannot read secret file"):
            raise
        raise ValueError(f"cannot read secret file {shown(shown_path)}: bad path") from None
    if len(data) > _MAX_SECRET_FILE:
        raise ValueError(f"cannot read secret file {shown_path}: larger than 64 KiB")
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"cannot read secret file {shown_path}: not UTF-8 text") from None


def interpolate_text(value: Any) -> Any:
    """Validator for ordinary text: `${ENV}` is substituted, the result is not secret."""
    if isinstance(value, str):
        return _interpolate(value)
    return value


def is_reference(value: object) -> bool:
    """True for text that names a secret (`${ENV}` somewhere in it, or `file:...`)."""
    if isinstance(value, Secret):
        return True
    return isinstance(value, str) and (
        value.startswith(_FILE_PREFIX) or _ENV_REF.search(value) is not None
    )


def to_secret(value: Any, info: ValidationInfo | None = None) -> Any:
    """Validator for secret-bearing text: a `${ENV}` or `file:` reference becomes a Secret.

    A literal stays a plain string; models reject literals where the key is sensitive.
    Relative `file:` paths are read from the config file's directory (context `base_dir`).
    """
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        deferring = _DEFERRED.get() is not None
        if value.startswith(_FILE_PREFIX):
            try:
                text = _read_secret_file(value[len(_FILE_PREFIX) :], _base_dir(info))
            except ValueError as exc:
                if not deferring:
                    raise
                return _defer(str(exc), value)
            return Secret(text, value)
        if _ENV_REF.search(value):
            missing = _missing_names(value) if deferring else []
            if missing:
                return _defer(_not_set(missing), _safe_source(value))
            text, parts = _interpolate_parts(value)
            return Secret(text, _safe_source(value), parts=parts)
    return value


def _not_set(names: list[str]) -> str:
    if len(names) == 1:
        return f"environment variable {names[0]} is not set"
    return f"environment variables {', '.join(names)} are not set"


def _mask_password(url: str) -> str:
    """`scheme://user:***@host/...` for a URL whose userinfo holds a password."""
    scheme, rest = url.split("://", 1)
    userinfo, at, tail = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***{at}{tail}"


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def to_secret_url(value: Any) -> Any:
    """Validator for URLs: a password in the userinfo must be a `${ENV}` reference.

    A URL with a password (written as a reference, or brought in by one) becomes a Secret that
    shows itself with `***` in the password's place; a URL without one stays plain text.
    """
    if isinstance(value, Secret) or not isinstance(value, str):
        return value
    password = _password_of(value)
    if password is not None and password and not _ENV_REF.search(password):
        raise ValueError("the password in this URL must be a ${ENV} reference, not a literal")
    missing = _missing_names(value) if _DEFERRED.get() is not None else []
    if missing:
        shape = _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
        return _defer(_not_set(missing), _safe_source(value), shape)
    url, parts = _interpolate_parts(value)
    if "://" in url and _password_of(url):
        return Secret(url, _safe_source(value), _mask_password(url), parts=parts)
    return url


def check_url(value: str | Secret, schemes: tuple[str, ...]) -> str | Secret:
    """A URL of one of `schemes` with a host; the message shows it only when it holds no secret.
    A deferred secret URL is checked only when its shape is known (the env held a password,
    not the whole URL)."""
    if isinstance(value, Secret) and value.missing is not None:
        if "://" not in value._value:
            return value
        text = value._value
    else:
        text = reveal(value)
    try:
        parts = urlsplit(text)
        ok = parts.scheme in schemes and bool(parts.hostname)
        if ok:
            _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        ok = False
    if not ok:
        got = shown(text) if not isinstance(value, Secret) else str(value)
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        article = "an" if schemes[0][0] in "aeiouh" else "a"
        raise ValueError(f"expected {article} {wanted} URL with a host, got {got}")
    return value


def check_http_url(value: str | Secret) -> str | Secret:
    """An http(s) URL with a host; the message shows the URL only when it holds no secret."""
    return check_url(value, ("http", "https"))


def _secret_text(value: Any, info: ValidationInfo) -> str | Secret:
    """One validator (not a pydantic union) so a wrong type gives one plain error."""
    if not isinstance(value, str | Secret):
        raise ValueError(f"expected text, got {_kind_of(value)}")
    result: str | Secret = to_secret(value, info)
    return result


def _http_url(value: Any) -> str | Secret:
    if not isinstance(value, str | Secret):
        raise ValueError(f"expected an http:// or https:// URL, got {_kind_of(value)}")
    return check_http_url(to_secret_url(value))


Text = Annotated[str, BeforeValidator(interpolate_text)]
SecretText = Annotated[
    str | Secret,
    PlainValidator(_secret_text),
    PlainSerializer(redact, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "text; credentials only as ${ENV_VAR} or file:/path (then redacted "
            "wherever shown)",
        }
    ),
]
HttpUrl = Annotated[
    str | Secret,
    PlainValidator(_http_url),
    PlainSerializer(redact, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^(https?://|\\$\\{)",
            "description": "an http(s) URL; a password in it only as ${ENV_VAR}",
        }
    ),
]


def _url_type(schemes: tuple[str, ...], description: str) -> Any:
    """An Annotated URL type for `schemes`, whose password may only come from `${ENV}`."""
    wanted = " or ".join(f"{scheme}://" for scheme in schemes)

    def validate(value: Any) -> str | Secret:
        if not isinstance(value, str | Secret):
            raise ValueError(f"expected {wanted} URL, got {_kind_of(value)}")
        return check_url(to_secret_url(value), schemes)

    return Annotated[
        str | Secret,
        PlainValidator(validate),
        PlainSerializer(redact, return_type=str),
        WithJsonSchema({"type": "string", "description": description}),
    ]


RedisUrl = _url_type(
    ("redis", "rediss"), "redis://[user:${PASSWORD}@]host:port/db (rediss:// for TLS)"
)
PostgresDsn = _url_type(
    ("postgres", "postgresql"), "postgresql://user[:${PASSWORD}]@host:port/database"
)


_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def to_step_secret(value: Any) -> Any:
    """Validator for text a step sends (shell argv/env, redis command items, SQL args).

    A `${VAR}` without a default is a credential: the text becomes a Secret, sent revealed
    and shown with `***` in that variable's place (`--password=***`). A `${VAR:-default}` is
    configuration (its default is a literal in the file, and literals cannot be credentials):
    substituted and shown. `file:` is not special here (an argument may start with it).
    A secret is never a template: the two in one item is an error, so a template cannot
    print a secret and a secret's text cannot be evaluated as a template.
    """
    if isinstance(value, Secret) or not isinstance(value, str):
        return value
    secret_refs = [m for m in _ENV_REF.finditer(value) if m.group(2) is None]
    if not secret_refs:
        return _interpolate(value)
    if any(marker in value for marker in _TEMPLATE_MARKERS):
        raise ValueError(
            "a ${VAR} secret and a {{ template }} cannot share one item: put the secret in an "
            "item (or env variable) of its own"
        )
    source = _safe_source(value)
    shown_text = _ENV_REF.sub(
        lambda m: "***" if m.group(2) is None else os.environ.get(m.group(1), m.group(2)), value
    )
    if _DEFERRED.get() is not None:
        missing = _missing_names(value)
        if missing:
            found = _DEFERRED.get()
            assert found is not None
            reason = _not_set(missing)
            if reason not in found:
                found.append(reason)
            return Secret("", source, shown_text, missing=reason)
    text, _ = _interpolate_parts(value)
    parts = tuple(
        os.environ[m.group(1)] for m in secret_refs if os.environ.get(m.group(1)) is not None
    )
    return Secret(text, source, shown_text, parts=parts)


def _step_text(value: Any) -> str | Secret:
    if not isinstance(value, str | Secret):
        raise ValueError(f"expected text, got {_kind_of(value)}")
    result: str | Secret = to_step_secret(value)
    return result


StepText = Annotated[
    str | Secret,
    PlainValidator(_step_text),
    PlainSerializer(redact, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "text; a ${ENV_VAR} without a default is a secret: sent as is, "
            "shown and audited as ***",
        }
    ),
]


def _step_value(value: Any) -> Any:
    """A SQL bind value: text as StepText, anything else (numbers, null, lists) as is."""
    return to_step_secret(value) if isinstance(value, str) else value


StepValue = Annotated[
    Any,
    BeforeValidator(_step_value),
    PlainSerializer(lambda v: redact(v) if isinstance(v, Secret) else v),
]


def _step_json(value: Any) -> Any:
    """A JSON body: every string in it (not the keys) as StepText would take it."""
    if isinstance(value, str):
        return to_step_secret(value)
    if isinstance(value, dict):
        return {k: _step_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_step_json(v) for v in value]
    return value


def shown_json(value: Any) -> Any:
    """A JSON-like value as it may be shown: every Secret inside it as its redacted text."""
    if isinstance(value, Secret):
        return redact(value)
    if isinstance(value, dict):
        return {k: shown_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown_json(v) for v in value]
    return value


StepJson = Annotated[Any, BeforeValidator(_step_json), PlainSerializer(shown_json)]
"""An HTTP step's JSON body: a string holding a ${SECRET} is sent revealed, shown ***."""


def reveal_json(value: Any) -> Any:
    """`json.dumps(..., default=reveal_json)` where a body is sent: a Secret's real text."""
    if isinstance(value, Secret):
        return value.reveal()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
