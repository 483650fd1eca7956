"""Single-use confirmation tokens, bound to one prepared step's fingerprint.

Only the Runner's TokenBook mints them (Runner.confirm): each book holds a random secret and
signs what it mints, so a ConfirmToken built by hand, or minted by another Runner, does not
validate. A token is spent the moment a run starts, so pressing Enter twice runs once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


class TokenRejected(Exception):
    """Why a token cannot run this step (one line; the runner turns it into Refused)."""


@dataclass(frozen=True, slots=True)
class ConfirmToken:
    """Opaque proof that a person confirmed exactly this step. Use once."""

    token_id: str
    fingerprint: str
    via: str
    signature: str

    def __repr__(self) -> str:
        return f"ConfirmToken({self.token_id[:8]}…, via={self.via!r})"


class TokenBook:
    """Mints and spends the tokens of one Runner."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._used: set[str] = set()

    def _sign(self, token_id: str, fingerprint: str, via: str) -> str:
        message = f"{token_id}\0{fingerprint}\0{via}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def mint(self, fingerprint: str, via: str) -> ConfirmToken:
        token_id = secrets.token_hex(16)
        return ConfirmToken(token_id, fingerprint, via, self._sign(token_id, fingerprint, via))

    def check(self, token: ConfirmToken, fingerprint: str) -> None:
        """Raise TokenRejected unless the token is ours, unused and for this fingerprint."""
        if not isinstance(token, ConfirmToken):
            raise TokenRejected("not a confirmation token")
        expected = self._sign(token.token_id, token.fingerprint, token.via)
        if not hmac.compare_digest(expected, token.signature):
            raise TokenRejected("the confirmation token was not issued by this runner")
        if token.token_id in self._used:
            raise TokenRejected("the confirmation was already used (it runs once)")
        if not hmac.compare_digest(token.fingerprint, fingerprint):
            raise TokenRejected(
                "the confirmation was for a different action or different params; confirm again"
            )

    def consume(self, token: ConfirmToken, fingerprint: str) -> None:
        """Check, then mark used: the token can never run anything again."""
        self.check(token, fingerprint)
        self._used.add(token.token_id)
