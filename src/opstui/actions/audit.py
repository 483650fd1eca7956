"""The audit trail: one JSONL line before a mutation runs (intent) and one after (result).

Every line is a single O_APPEND write followed by fsync, in a file only its owner can read,
so a crash leaves at worst an intent without a result, which `unfinished()` finds and the next
start reports. Refusals and cancellations are lines of their own (phase "refused" or
"cancelled"): who tried what, and why it did not run. No secret value may reach the file:
Secrets are redacted by the caller, and as a last guard every value of every line goes
through the config's Redactor (opstui.redaction) before it is written.

`check_writable()` is called before anything can run (`opstui run`, the TUI): an audit file
that cannot be opened is one line and exit 2, not a traceback after the operator confirmed.
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
from opstui.redaction import NOTHING, Redactor

if TYPE_CHECKING:
    from opstui.config.models import Config

FILE_MODE = 0o600


class AuditUnavailable(OSError):
    """The audit file cannot be opened or written; the message is one line naming it."""


def _why(exc: OSError) -> str:
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return "a part of its directory path is a file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    reason = exc.strerror or type(exc).__name__
    return reason[:1].lower() + reason[1:]


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
    """An append-only JSONL file of intents, results, refusals, cancellations and ticks."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.redactor: Redactor = redactor if redactor is not None else NOTHING

    @staticmethod
    def default_path(config: Config) -> Path:
        """config.audit_log, else audit.jsonl in the user state dir."""
        if config.audit_log:
            return Path(config.audit_log).expanduser()
        from platformdirs import user_state_path

        return user_state_path("opstui") / "audit.jsonl"

    def add_secrets(self, values: Iterable[str | Secret]) -> None:
        """Strings that must never appear in the file, on top of the redactor's."""
        self.redactor = self.redactor.extended(values)

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        except OSError as exc:
            raise AuditUnavailable(f"cannot write the audit log {self.path}: {_why(exc)}") from None

    def check_writable(self) -> None:
        """Open the file for appending (creating it, 0600) and close it: AuditUnavailable,
        one line, when that fails (a directory, a path under a file, no permission)."""
        os.close(self._open())

    def _write(self, record: Mapping[str, Any]) -> None:
        clean = self.redactor.scrub_value(plain(record))
        line = json.dumps(clean, ensure_ascii=False, default=str)
        data = (line.replace("\n", " ") + "\n").encode("utf-8")
        fd = self._open()
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

    def refused(self, record: Mapping[str, Any]) -> None:
        """An attempt the gate refused (read-only, no or used token, wrong target, a secret
        not available): `record` says who tried what; its `why` says why it did not run."""
        self._write(self._stamp("refused", uuid.uuid4().hex, record))

    def cancelled(self, record: Mapping[str, Any]) -> None:
        """An attempt the operator called off before it ran (Cancel, Escape, "no", Ctrl+C)."""
        self._write(self._stamp("cancelled", uuid.uuid4().hex, record))

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
