"""The audit trail: one JSONL line before a mutation runs (intent) and one after (result).

Every line is a single O_APPEND write followed by fsync, in a file only its owner can read,
so a crash leaves at worst an intent without a result, which `unfinished()` finds and the next
start reports. No secret value may reach the file: Secrets are redacted by the caller, and as
a last guard every line is scrubbed of every secret string the log has been told about.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opstui.config.types import Secret, redact

if TYPE_CHECKING:
    from opstui.config.models import Config

FILE_MODE = 0o600
MIN_SECRET_LENGTH = 3
"""Shorter strings are not scrubbed from free text (they would mangle every line)."""


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without passwd entry)
        return str(os.getuid())


def ssh_origin() -> str | None:
    """The client address of an SSH session, from SSH_CLIENT or SSH_CONNECTION."""
    for name in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = os.environ.get(name, "").split()
        if value:
            return value[0]
    return None


def plain(value: Any) -> Any:
    """A JSON-safe copy with every Secret as its redacted text."""
    if isinstance(value, Secret):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class AuditLog:
    """An append-only JSONL file of intents, results and checklist ticks."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._secrets: set[str] = set()

    @staticmethod
    def default_path(config: Config) -> Path:
        """config.audit_log, else audit.jsonl in the user state dir."""
        if config.audit_log:
            return Path(config.audit_log).expanduser()
        from platformdirs import user_state_path

        return user_state_path("opstui") / "audit.jsonl"

    def add_secrets(self, values: Iterable[str | Secret]) -> None:
        """Strings that must never appear in the file, whatever free text carries them."""
        for value in values:
            if isinstance(value, Secret) and value.missing is not None:
                continue  # not available here: nothing of it can leak
            text = value.reveal() if isinstance(value, Secret) else value
            if len(text) >= MIN_SECRET_LENGTH:
                self._secrets.add(text)

    def scrub(self, text: str) -> str:
        """`text` with every known secret replaced by ***."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _scrub_json(self, line: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
            for form in {secret, escaped, json.dumps(secret)[1:-1]}:
                if form and form in line:
                    line = line.replace(form, "***")
        return line

    def _write(self, record: Mapping[str, Any]) -> None:
        line = self._scrub_json(json.dumps(plain(record), ensure_ascii=False, default=str))
        data = (line.replace("\n", " ") + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def _stamp(self, phase: str, record_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        stamped: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "phase": phase,
            "id": record_id,
            "user": _user(),
            "host": socket.gethostname(),
            "ssh_origin": ssh_origin(),
            "viewer": os.environ.get("OPSTUI_VIEWER"),
        }
        stamped.update({k: v for k, v in record.items() if k not in stamped})
        return stamped

    def intent(self, record: Mapping[str, Any]) -> str:
        """Write the intent line (fsync'd) before anything runs; returns its id."""
        intent_id = uuid.uuid4().hex
        self._write(self._stamp("intent", intent_id, record))
        return intent_id

    def result(self, intent_id: str, record: Mapping[str, Any]) -> None:
        """Write how the intent ended (fsync'd)."""
        self._write(self._stamp("result", intent_id, record))

    def checklist(self, record: Mapping[str, Any]) -> None:
        """A manual step ticked (or unticked) by the operator."""
        self._write(self._stamp("checklist", uuid.uuid4().hex, record))

    def records(self) -> list[dict[str, Any]]:
        """Every readable line; a torn last line (a crash mid-write) is skipped."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        found: list[dict[str, Any]] = []
        for raw in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                if isinstance(record, dict):
                    found.append(record)
        return found

    def unfinished(self) -> list[dict[str, Any]]:
        """Intents with no result line: the process died while (or before) they ran."""
        records = self.records()
        finished = {r.get("id") for r in records if r.get("phase") == "result"}
        return [r for r in records if r.get("phase") == "intent" and r.get("id") not in finished]


def report_unfinished(audit: AuditLog) -> list[str]:
    """One line per unfinished intent, for the start of the TUI and of `opstui run`."""
    lines = []
    for record in audit.unfinished():
        where = record.get("target") or "?"
        what = record.get("action") or record.get("kind") or "an action"
        lines.append(
            f"audit: an action started at {record.get('ts', '?')} ({what} on {where}) "
            "has no result: it may or may not have run"
        )
    return lines
