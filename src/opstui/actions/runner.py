"""The Runner: the one gate every runbook step passes through (DESIGN.md section 6).

It renders a step into a PreparedStep, classifies it through the kind's executor (never from
the config's say-so alone), refuses a mutation in read-only mode or without a single-use token
minted by `confirm` for that exact fingerprint, writes the audit intent (fsync'd) before
executing and the result after, audits every refusal and cancellation, and records every step
on the timeline. Everything it shows or writes (equivalent, output, summaries, errors,
previews, timeline and audit lines) goes through the config's one Redactor. Executors are imported
here and nowhere else, so neither ui/ nor cli.py can reach one around the gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, NoReturn

from opstui.actions.audit import AuditLog, AuditUnavailable
from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Preview,
    Progress,
    Verdict,
)
from opstui.actions.context import ExecutionContext, ProbeReader
from opstui.actions.executors import EXECUTORS
from opstui.actions.prepare import Rendered, render_step, watch_rendered
from opstui.actions.templates import (
    RenderError,
    UnsafeRender,
    convert_param,
    default_of,
    probe_context,
)
from opstui.actions.tokens import ConfirmToken, TokenBook, TokenRejected
from opstui.config.models import Config
from opstui.config.runbooks import Runbook
from opstui.engine.clock import Clock, SystemClock
from opstui.engine.events import Event, EventKind, Timeline
from opstui.redaction import Redactor, redactor_for, secret_objects
from opstui.sources.errors import one_line
from opstui.sources.registry import ClientPool

__all__ = ["ActionError", "ConfirmToken", "Refused", "Runner"]

VIAS = ("modal", "prompt", "--yes")
GRACE = 10.0
"""Seconds past a step's timeout before the runner itself stops waiting for the executor."""


class ActionError(Exception):
    """Bad params, an unknown runbook or action, a template that fails: one line."""


class Refused(ActionError):
    """The gate said no: read-only mode, no/used/foreign token, wrong typed target."""




class Runner:
    """See the module docstring. One per app (TUI) or per `opstui run`."""

    def __init__(
        self,
        config: Config,
        *,
        pool: ClientPool,
        probes: ProbeReader,
        audit: AuditLog,
        read_only: bool = False,
        clock: Clock | None = None,
        timeline: Timeline | None = None,
        owns_pool: bool = False,
    ) -> None:
        self.config = config
        self._owns_pool = owns_pool
        self.audit = audit
        self.timeline = timeline
        self._read_only = read_only
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._ctx = ExecutionContext(config=config, pool=pool, probes=probes, clock=self._clock)
        self._tokens = TokenBook()
        self._verdicts: dict[str, Verdict] = {}
        self._executors: dict[str, Executor] = {}
        self.redactor: Redactor = redactor_for(config)
        if not audit.redactor:
            audit.redactor = self.redactor

    # --- state ---------------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self._read_only or self.config.read_only

    @property
    def context(self) -> ExecutionContext:
        return self._ctx

    def _runbook(self, runbook_id: str) -> Runbook:
        try:
            return self.config.runbook(runbook_id)
        except KeyError:
            known = ", ".join(r.id for r in self.config.runbooks) or "none"
            raise ActionError(f"unknown runbook {runbook_id!r}; known: {known}") from None

    def _action(self, runbook_id: str, action_id: str) -> Any:
        runbook = self._runbook(runbook_id)
        for action in runbook.actions:
            if action.id == action_id:
                return action
        known = ", ".join(a.id for a in runbook.actions) or "none"
        raise ActionError(f"runbook {runbook_id!r} has no action {action_id!r}; actions: {known}")

    # --- preparing -----------------------------------------------------------------------------

    def default_params(self, runbook_id: str, action_id: str) -> dict[str, Any]:
        """Each param's default, rendered from the current readings and typed (None when it
        has none or it cannot be computed yet, e.g. no reading)."""
        action = self._action(runbook_id, action_id)
        probes = probe_context(self.config, self._ctx.probes)
        values: dict[str, Any] = {}
        for name, spec in action.params.items():
            try:
                values[name] = default_of(name, spec, probes)
            except RenderError:
                values[name] = None
        return values

    def _params(
        self, action: Any, given: Mapping[str, Any], probes: Mapping[str, Any]
    ) -> dict[str, Any]:
        specs = action.params
        errors = [
            f"unknown param {name!r} (params: {', '.join(specs) or 'none'})"
            for name in given
            if name not in specs
        ]
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            raw = given.get(name)
            try:
                if raw is None or (
                    isinstance(raw, str) and raw.strip() == "" and spec.type != "str"
                ):
                    value = default_of(name, spec, probes)
                    if value is None and spec.required:
                        errors.append(f"param {name}: required (no value given, no default)")
                        continue
                else:
                    value = convert_param(name, spec, raw)
            except RenderError as exc:
                errors.append(str(exc))
                continue
            values[name] = value
        if errors:
            raise ActionError("; ".join(errors))
        return values

    def _prepared(
        self,
        step: Any,
        rendered: Rendered,
        *,
        runbook_id: str,
        action_id: str | None,
        index: int | None,
        params: Mapping[str, Any],
        danger: str = "low",
        verb: str | None = None,
    ) -> PreparedStep:
        connection = getattr(step, "connection", None)
        equivalent = rendered.equivalent
        connection_config = (
            self.config.connections.get(connection) if isinstance(connection, str) else None
        )
        if connection_config is not None:
            typed = self._executor(str(step.kind)).equivalent(rendered.rendered, connection_config)
            equivalent = typed or equivalent
        return PreparedStep(
            kind=str(step.kind),
            title=str(step.title),
            runbook_id=runbook_id,
            action_id=action_id,
            step_index=index,
            connection=connection if isinstance(connection, str) else None,
            params=dict(params),
            rendered=rendered.rendered,
            equivalent=self.redactor.scrub(equivalent),
            target=rendered.target,
            environment=self.config.environment,
            danger=danger,
            verb=verb,
            timeout=rendered.timeout,
        )

    async def prepare_action(
        self,
        runbook_id: str,
        action_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        attempt: bool = False,
    ) -> PreparedStep:
        """Validate params (strings or typed values), render the step: exactly what would run.

        `attempt` says the caller means to run it now (`opstui run`), not to show it: a render
        the gate refuses (UnsafeRender: off its origin...) is then an audited refusal."""
        action = self._action(runbook_id, action_id)
        probes = probe_context(self.config, self._ctx.probes)
        values = self._params(action, params or {}, probes)
        try:
            rendered = render_step(self.config, action, {"probes": probes, "params": values})
        except UnsafeRender as exc:
            where = f"{runbook_id}/{action_id}"
            self._refused_render(action, where, action_id, values, str(exc), attempt)
        except RenderError as exc:
            raise ActionError(f"{runbook_id}/{action_id}: {exc}") from None
        return self._prepared(
            action,
            rendered,
            runbook_id=runbook_id,
            action_id=action_id,
            index=None,
            params=values,
            danger=action.danger,
            verb=action.verb,
        )

    async def prepare_diagnose(
        self, runbook_id: str, index: int, *, attempt: bool = False
    ) -> PreparedStep:
        """Render diagnose step `index` (see prepare_action for `attempt`)."""
        runbook = self._runbook(runbook_id)
        if not 0 <= index < len(runbook.diagnose):
            raise ActionError(
                f"runbook {runbook_id!r} has {len(runbook.diagnose)} diagnose steps, no #{index}"
            )
        step = runbook.diagnose[index]
        probes = probe_context(self.config, self._ctx.probes)
        try:
            rendered = render_step(self.config, step, {"probes": probes, "params": {}})
        except UnsafeRender as exc:
            where = f"{runbook_id} diagnose #{index + 1}"
            self._refused_render(step, where, None, {}, str(exc), attempt, runbook_id)
        except RenderError as exc:
            raise ActionError(f"{runbook_id} diagnose #{index + 1}: {exc}") from None
        return self._prepared(
            step, rendered, runbook_id=runbook_id, action_id=None, index=index, params={}
        )

    def _refused_render(
        self,
        step: Any,
        where: str,
        action_id: str | None,
        params: Mapping[str, Any],
        why: str,
        attempt: bool,
        runbook_id: str | None = None,
    ) -> NoReturn:
        """Raise Refused for a step that rendered to something the gate will not send; when
        someone was trying to run it, note it and write the audit line (phase refused)."""
        runbook = runbook_id or where.split("/", 1)[0]
        if attempt:
            self._event(
                EventKind.NOTE,
                f"{where}: refused: {why}",
                runbook_id=runbook,
                action_id=action_id,
            )
            with contextlib.suppress(OSError):  # the refusal stands whether or not it is written
                self.audit.refused(
                    {
                        "environment": self.config.environment,
                        "runbook": runbook,
                        "action": action_id,
                        "title": str(step.title),
                        "kind": str(step.kind),
                        "connection": getattr(step, "connection", None),
                        "params": dict(params),
                        "why": why,
                    }
                )
        raise Refused(self.redactor.scrub(f"{where}: {why}"))

    # --- judging -------------------------------------------------------------------------------

    def _executor(self, kind: str) -> Executor:
        executor = self._executors.get(kind)
        if executor is not None:
            return executor
        target = EXECUTORS.get(kind)
        if target is None:
            raise ActionError(f"no executor for step kind {kind!r}")
        module_name, _, attr = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ActionError(f"the {kind} executor is not available: {exc}") from None
        executor = cls()
        if not isinstance(executor, Executor):
            raise ActionError(f"{target} is not an Executor")
        self._executors[kind] = executor
        return executor

    def unavailable(self, step: PreparedStep) -> str | None:
        """Why `step` cannot run from this process: a secret it needs (in its connection or
        its own values) was not set when this view started without secrets; else None."""
        connection = self.config.connections.get(step.connection) if step.connection else None
        for secret in secret_objects([step.rendered, connection]):
            if secret.missing is not None:
                return f"cannot run from here: {secret.missing}"
        return None

    async def classify(self, step: PreparedStep) -> Verdict:
        """Read-only or mutating, decided by the executor; cached per fingerprint. A step
        that cannot be classified (server unreachable) is assumed mutating, and not cached."""
        fingerprint = step.fingerprint()
        cached = self._verdicts.get(fingerprint)
        if cached is not None:
            return cached
        executor = self._executor(step.kind)
        try:
            async with asyncio.timeout(step.timeout + GRACE):
                verdict = await executor.classify(step, self._ctx)
        except Exception as exc:
            reason = one_line(self.redactor.scrub(str(exc) or type(exc).__name__), 120)
            return Verdict(Classification.MUTATING, f"cannot classify ({reason}): assumed mutating")
        if self.redactor.contains(f"{verdict.reason}\0{verdict.overruled or ''}"):
            verdict = replace(  # a server's words can quote what it was sent
                verdict,
                reason=self.redactor.scrub(verdict.reason),
                overruled=self.redactor.scrub_optional(verdict.overruled),
            )
        if not verdict.reason.endswith("assumed mutating"):  # a guess is asked again next time
            self._verdicts[fingerprint] = verdict
        return verdict

    async def preview(self, step: PreparedStep) -> Preview | None:
        """What the step would change, measured without changing it; failures become
        Preview.error (the modal says so)."""
        executor = self._executor(step.kind)
        if self.read_only and (await self.classify(step)).mutating:
            # A preview may take locks (a SQL preview runs the statement, then rolls back):
            # in read-only mode nothing of a mutation runs, not even that.
            return Preview((), error="read-only mode: a mutation is neither run nor previewed")
        try:
            async with asyncio.timeout(step.timeout + GRACE):
                preview = await executor.preview(step, self._ctx)
        except Exception as exc:
            reason = one_line(self.redactor.scrub(str(exc) or type(exc).__name__))
            return Preview((), error=f"preview failed: {reason}")
        if preview is None:
            return None
        return Preview(
            tuple(self.redactor.scrub(line) for line in preview.lines),
            error=self.redactor.scrub_optional(preview.error),
        )

    # --- confirming and running ----------------------------------------------------------------

    def confirm(
        self, step: PreparedStep, *, via: str, typed_target: str | None = None
    ) -> ConfirmToken:
        """Mint the single-use token for exactly this step. `danger: high` needs the target's
        name typed by the operator."""
        if via not in VIAS:
            raise ActionError(f"unknown confirmation channel {via!r}")
        if step.danger == "high" and (typed_target or "").strip() != step.target:
            self._refuse(
                step,
                None,
                via,
                f"typed target does not match {step.target!r}",
                f"type the target's name exactly to confirm: {step.target}",
            )
        token = self._tokens.mint(step.fingerprint(), via)
        return token

    def cancelled(self, step: PreparedStep, *, via: str, why: str) -> None:
        """The operator called `step` off before it ran (the modal's Cancel or Escape, the
        prompt answered no, Ctrl+C): on the timeline and one audit line (phase cancelled).
        An audit file that cannot be written here is not a reason to fail: nothing ran."""
        self._note(step, f"cancelled: {why}")
        verdict = self._verdicts.get(step.fingerprint())
        with contextlib.suppress(OSError):
            self.audit.cancelled({**self._record(step, verdict, via), "why": why})

    def _refuse(
        self,
        step: PreparedStep,
        verdict: Verdict | None,
        via: str | None,
        why: str,
        message: str,
    ) -> NoReturn:
        """Note, audit (phase refused) and raise Refused(message): nothing of `step` ran."""
        self.refused(step, via=via, why=why, verdict=verdict)
        raise Refused(self.redactor.scrub(message))

    def refused(
        self,
        step: PreparedStep,
        *,
        via: str | None,
        why: str,
        verdict: Verdict | None = None,
    ) -> None:
        """Record a refusal decided before the gate was asked (`opstui run` without a
        terminal or --yes): on the timeline and one audit line (phase refused)."""
        verdict = verdict or self._verdicts.get(step.fingerprint())
        self._note(step, f"refused: {why}")
        with contextlib.suppress(OSError):  # the refusal stands whether or not it is written
            self.audit.refused({**self._record(step, verdict, via), "why": why})

    def _event(
        self,
        kind: EventKind,
        message: str,
        step: PreparedStep | None = None,
        runbook_id: str | None = None,
        action_id: str | None = None,
    ) -> None:
        if self.timeline is None:
            return
        self.timeline.add(
            Event(
                at=self._clock.monotonic(),
                wall=self._clock.wall(),
                kind=kind,
                message=one_line(self.redactor.scrub(message), 400),
                runbook_id=step.runbook_id if step is not None else runbook_id,
                action_id=step.action_id if step is not None else action_id,
            )
        )

    def _note(self, step: PreparedStep, message: str) -> None:
        self._event(EventKind.NOTE, f"{_name(step)}: {message}", step)

    def _record(
        self, step: PreparedStep, verdict: Verdict | None, via: str | None
    ) -> dict[str, Any]:
        return {
            "environment": self.config.environment,
            "runbook": step.runbook_id,
            "action": step.action_id,
            "title": step.title,
            "kind": step.kind,
            "connection": step.connection,
            "target": step.target,
            "params": dict(step.params),
            "equivalent": step.equivalent,
            "classification": verdict.classification.value if verdict is not None else None,
            "reason": verdict.reason if verdict is not None else None,
            "overruled": verdict.overruled if verdict is not None else None,
            "danger": step.danger,
            "via": via,
            "fingerprint": step.fingerprint(),
        }

    async def run(
        self,
        step: PreparedStep,
        *,
        token: ConfirmToken | None = None,
        output: OutputSink | None = None,
        progress: Progress | None = None,
    ) -> Outcome:
        """Run through the gate (see the module docstring). Raises Refused, never runs then."""
        via = token.via if token is not None else None
        missing = self.unavailable(step)
        if missing is not None:
            self._refuse(step, None, via, missing, f"{_name(step)}: {missing}")
        verdict = await self.classify(step)
        if not verdict.mutating:
            outcome = await self._execute(step, read_only=True, output=output, progress=progress)
            word = "ok" if outcome.ok else "failed"
            self._event(EventKind.DIAGNOSE, f"{_name(step)}: {word}: {outcome.summary}", step)
            return outcome
        if self.read_only:
            self._refuse(
                step,
                verdict,
                via,
                "read-only mode",
                f"read-only mode: {_name(step)} is mutating ({verdict.reason}); refused",
            )
        if token is None:
            self._refuse(
                step,
                verdict,
                via,
                "not confirmed",
                f"{_name(step)} is mutating ({verdict.reason}): it needs a confirmation",
            )
        try:
            self._tokens.consume(token, step.fingerprint())
        except TokenRejected as exc:
            self._refuse(step, verdict, via, str(exc), str(exc))
        record = self._record(step, verdict, token.via)
        try:
            intent_id = self.audit.intent(record)
        except OSError as exc:
            self._note(step, "refused: cannot write the audit log")
            reason = str(exc) if isinstance(exc, AuditUnavailable) else (
                f"cannot write the audit log {self.audit.path}: {exc.strerror or exc}"
            )
            raise Refused(reason) from None
        self._event(
            EventKind.ACTION,
            f"{step.verb or 'run'} {_name(step)} on {step.target} (via {token.via}): "
            f"{step.equivalent}",
            step,
        )
        started = self._clock.monotonic()
        done: Outcome | None = None
        try:
            done = await self._execute(step, read_only=False, output=output, progress=progress)
        finally:
            finished = done or Outcome(
                ok=False, summary="interrupted", error="interrupted", cancelled=True
            )
            duration = finished.duration or (self._clock.monotonic() - started)
            with contextlib.suppress(OSError):  # the intent line already tells the story
                self.audit.result(
                    intent_id,
                    {
                        **record,
                        "ok": finished.ok,
                        "summary": finished.summary,
                        "error": finished.error,
                        "cancelled": finished.cancelled,
                        "duration_s": round(duration, 3),
                    },
                )
            word = "ok" if finished.ok else ("cancelled" if finished.cancelled else "failed")
            self._event(EventKind.RESULT, f"{_name(step)}: {word}: {finished.summary}", step)
        return finished

    async def _execute(
        self,
        step: PreparedStep,
        *,
        read_only: bool,
        output: OutputSink | None,
        progress: Progress | None,
    ) -> Outcome:
        executor = self._executor(step.kind)
        sink = output or (lambda _line: None)

        def scrubbed(line: str) -> None:
            sink(self.redactor.scrub(line))

        started = self._clock.monotonic()
        try:
            async with asyncio.timeout(step.timeout + GRACE):
                outcome = await executor.execute(
                    step,
                    self._ctx,
                    read_only=read_only,
                    output=scrubbed,
                    progress=progress or Progress(),
                )
        except TimeoutError:
            outcome = Outcome(ok=False, summary="timed out", error="timed out")
        except Exception as exc:  # an executor must not raise; if one does, say why
            reason = one_line(str(exc) or type(exc).__name__)
            outcome = Outcome(ok=False, summary=f"failed: {reason}", error=reason)
        if not outcome.duration:
            outcome = replace(outcome, duration=self._clock.monotonic() - started)
        return replace(
            outcome,
            summary=self.redactor.scrub(outcome.summary),
            output=self.redactor.scrub(outcome.output),
            error=self.redactor.scrub(outcome.error) if outcome.error else outcome.error,
        )

    async def run_then(
        self,
        step: PreparedStep,
        *,
        output: OutputSink | None = None,
        progress: Progress | None = None,
    ) -> Outcome | None:
        """The action's `then` watch (read-only), or None when it has none."""
        if step.runbook_id is None or step.action_id is None:
            return None
        action = self._action(step.runbook_id, step.action_id)
        then = action.then
        if then is None:
            return None
        try:
            rendered = watch_rendered(then.watch, then.until, float(then.timeout))
        except RenderError as exc:
            raise ActionError(f"{step.runbook_id}/{step.action_id} then: {exc}") from None
        watch = PreparedStep(
            kind="watch",
            title=f"then: watch {then.watch} until {then.until}",
            runbook_id=step.runbook_id,
            action_id=step.action_id,
            step_index=None,
            connection=None,
            params={},
            rendered=rendered.rendered,
            equivalent=rendered.equivalent,
            target=rendered.target,
            environment=self.config.environment,
            timeout=rendered.timeout,
        )
        return await self.run(watch, output=output, progress=progress)

    def tick_checklist(self, runbook_id: str, step_title: str, done: bool) -> None:
        """A manual item ticked or unticked: on the timeline and in the audit log."""
        self._runbook(runbook_id)
        word = "done" if done else "not done"
        self._event(
            EventKind.CHECKLIST, f"{runbook_id}: {word}: {step_title}", runbook_id=runbook_id
        )
        self.audit.checklist(
            {
                "environment": self.config.environment,
                "runbook": runbook_id,
                "kind": "manual",
                "target": step_title,
                "done": done,
            }
        )

    async def aclose(self) -> None:
        """Close what executors hold of their own, and the pool when it was given to own
        (`owns_pool`); otherwise the pool belongs to whoever made it."""
        executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            closer = getattr(executor, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        if self._owns_pool:
            with contextlib.suppress(Exception):
                await self._ctx.pool.aclose()


def _name(step: PreparedStep) -> str:
    if step.action_id is not None:
        return f"{step.runbook_id}/{step.action_id}"
    if step.step_index is not None:
        return f"{step.runbook_id} diagnose #{step.step_index + 1} ({step.title})"
    return step.title
