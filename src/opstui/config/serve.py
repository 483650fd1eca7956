"""The `serve:` section: who may use `opstui serve` beyond a read-only view.

Without it, every browser gets a read-only dashboard and serve listens on loopback only. With
it, a browser must present a token or a basic-auth user's password first; the label or user
name it matched is the viewer the audit log records. Secrets come only from `${ENV}` or
`file:` (never a literal in the file, never a command-line value that `ps` would show).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from opstui.config.base import Model, ReferenceProblem, raise_all
from opstui.config.types import Secret, SecretText, is_reference

MIN_TOKEN = 16
"""A token is guessed by brute force over the network: at least this many characters."""
MIN_PASSWORD = 12
"""A basic-auth password, for the same reason."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
_NAME_HINT = "letters, digits and _.@+- (no colon, no space), at most 64 characters"


def _check(entries: dict[str, str | Secret], what: str, least: int) -> dict[str, str | Secret]:
    """Each name plain and short, each secret a reference of at least `least` characters."""
    problems: list[ReferenceProblem] = []
    for name, value in entries.items():
        if not _NAME.match(name):
            problems.append(ReferenceProblem((name,), f"{what} name {name!r}: {_NAME_HINT}"))
        elif not is_reference(value) or not isinstance(value, Secret):
            problems.append(
                ReferenceProblem(
                    (name,), f"write the {what} as ${{ENV_VAR}} or file:/path, not as a literal"
                )
            )
        elif value.missing is None and len(value.reveal()) < least:
            problems.append(
                ReferenceProblem((name,), f"the {what} must be at least {least} characters")
            )
    raise_all(problems)
    return entries


class ServeConfig(Model):
    """Authentication for `opstui serve`; either mapping (or both) turns it on."""

    tokens: dict[str, SecretText] = Field(
        default_factory=dict,
        description="label: token (${ENV} or file:); a browser opens /?token=... once",
    )
    users: dict[str, SecretText] = Field(
        default_factory=dict,
        description="user name: password (${ENV} or file:) for HTTP basic auth",
    )

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, value: dict[str, str | Secret]) -> dict[str, str | Secret]:
        return _check(value, "token", MIN_TOKEN)

    @field_validator("users")
    @classmethod
    def _users(cls, value: dict[str, str | Secret]) -> dict[str, str | Secret]:
        return _check(value, "password", MIN_PASSWORD)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.users)
