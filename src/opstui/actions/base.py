"""The contract between the actions runner and the executors of each step kind.

Every execution goes through the Runner (actions/runner.py): it renders a step's templates
into a PreparedStep, asks the kind's Executor to classify it (read-only or mutating, judged
from the step itself and, where the server can tell, by the server), to preview it (what will
change), and finally to execute it, but only with a confirmation token for a mutating step,
never in read-only mode, and with an audit line before and after. Executors are reached only
through the Runner; nothing in ui/ or cli.py imports them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from opstui.actions.context import ExecutionContext


class Classification(Enum):
    READ_ONLY = "read-only"
    MUTATING = "mutating"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the runner classifies a step, and why, in words the confirm modal can show."""

    classification: Classification
    reason: str
    """e.g. "POST changes state", "Redis flags DEL as write", "declared readonly: true"."""
    overruled: str | None = None
    """Set when the config claimed read-only but the step (or its server) says otherwise."""

    @property
    def mutating(self) -> bool:
        return self.classification is Classification.MUTATING


@dataclass(frozen=True, slots=True)
class PreparedStep:
    """A step with its templates rendered and params type-checked: exactly what would run.

    `rendered` holds the kind's concrete request (http: method, url, headers, body; redis:
    argv; sql: text and args; ecs: op and its arguments; shell: argv, cwd, env; prometheus:
    query; watch: probe, until, timeout), with Secrets still wrapped so nothing prints them.
    `equivalent` is the same request as a person would type it (curl, redis-cli, psql,
    aws ecs ...), secrets redacted. `target` names what it acts on: the text a `danger: high`
    action asks the operator to type.
    """

    kind: str
    title: str
    runbook_id: str | None
    action_id: str | None
    """None for a diagnose step."""
    step_index: int | None
    """Index among the runbook's diagnose steps, for a diagnose step."""
    connection: str | None
    params: Mapping[str, Any]
    rendered: Mapping[str, Any]
    equivalent: str
    target: str
    environment: str | None
    danger: str = "low"
    verb: str | None = None
    timeout: float = 30.0

    def fingerprint(self) -> str:
        """A digest of everything that decides what runs and how it was confirmed: kind, step,
        title, connection, target, rendered request, params, danger, verb, environment and
        timeout. A confirmation token is bound to it, so a token for `count=8` cannot run
        `count=80`, nor one confirmed at danger low a step that now asks for the target's
        name."""
        import hashlib
        import json

        from opstui.config.types import Secret

        def plain(value: Any) -> Any:
            if isinstance(value, Secret):
                if value.missing is not None:
                    return f"missing:{value.source}"  # it fails when run, saying why
                return f"secret:{hashlib.sha256(value.reveal().encode()).hexdigest()}"
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda i: str(i[0]))}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        body = json.dumps(
            {
                "kind": self.kind,
                "runbook": self.runbook_id,
                "action": self.action_id,
                "step": self.step_index,
                "connection": self.connection,
                "target": self.target,
                "params": plain(dict(self.params)),
                "rendered": plain(dict(self.rendered)),
                "title": self.title,
                "danger": self.danger,
                "verb": self.verb,
                "environment": self.environment,
                "timeout": self.timeout,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Preview:
    """What will change, measured without changing it: 'desired 4 -> 8', 'DEL bull:q:failed
    (zset, 1,204 members)', 'UPDATE affects 12 rows (measured in a rolled-back transaction)'."""

    lines: tuple[str, ...]
    error: str | None = None
    """Set when the preview itself failed; the modal says so and the action may still run."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an execution ended."""

    ok: bool
    summary: str
    """One line: 'HTTP 200 in 42 ms', 'desired 4 -> 8', '3 rows', 'exit 0', 'timed out'."""
    output: str = ""
    """The full text output (response body, command output, result table), for the pane."""
    error: str | None = None
    duration: float = 0.0
    data: Any = None
    cancelled: bool = False


OutputSink = Callable[[str], None]
"""Receives output as it arrives (shell lines, watch progress), for live panes and `run`."""


@dataclass
class Progress:
    """A cancellable execution's live state, shared with the UI."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    fraction: float | None = None
    message: str = ""


class Executor(ABC):
    """One step kind. Instances are made by the Runner, one per kind, sharing its clients."""

    kind: ClassVar[str]

    @abstractmethod
    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        """Read-only or mutating, decided from the step (and the server where it can tell)."""

    def equivalent(self, rendered: Mapping[str, Any], connection: Any) -> str | None:
        """The request as a person would type it (redis-cli, psql, aws ...) for this kind and
        connection, secrets redacted; None to keep the runner's generic rendering."""
        return None

    async def preview(self, step: PreparedStep, ctx: ExecutionContext) -> Preview | None:
        """What a mutating step would change, measured without changing it; None if n/a."""
        return None

    @abstractmethod
    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        """Run it. `read_only` is True for a step classified read-only: the executor must run it
        so the server enforces that where it can (SQL in a READ ONLY transaction). Honour
        `progress.cancel` and the step's timeout; never raise for a backend failure: return an
        Outcome with ok=False and the reason."""
