"""The confirm modal: the one place a person says yes to a mutation (DESIGN.md section 6.3).

It shows what will run (environment, target, the exact equivalent command, the params, the
preview and why the runner calls it mutating) with focus on Cancel, and a button that says
the verb. Editing a param re-prepares the step through the runner, so what is shown is always
what the token will be bound to; `danger: high` wants the target's name typed first. Saying
yes mints a single-use token (Runner.confirm) and dismisses with it: the modal never runs
anything itself, the caller runs the confirmed step with that token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Static

from opstui.actions.base import PreparedStep, Preview, Verdict
from opstui.actions.runner import ActionError, ConfirmToken, Refused, Runner

PRODUCTION_NAMES = frozenset({"prod", "production", "prd", "live"})
READ_ONLY_TEXT = "read-only mode: this action would mutate; refused"
REPREPARE_DELAY = 0.3
"""Seconds of no typing before edited params are re-prepared (and the preview re-run)."""

ECS_VERBS = {"set_desired_count": "Scale", "force_new_deployment": "Restart", "stop_task": "Stop"}
DELETE_COMMANDS = frozenset({"DEL", "UNLINK"})


@dataclass(frozen=True, slots=True)
class Confirmed:
    """What the modal dismisses with on yes: the exact step shown, and its token."""

    step: PreparedStep
    token: ConfirmToken


def confirm_verb(step: PreparedStep) -> str:
    """The button's word: the action's `verb`, or one derived from what it does."""
    if step.verb:
        return step.verb
    rendered = step.rendered
    if step.kind == "ecs":
        return ECS_VERBS.get(str(rendered.get("op", "")), "Run")
    if step.kind == "http" and str(rendered.get("method", "")).upper() == "DELETE":
        return "Delete"
    if step.kind == "redis":
        argv = rendered.get("argv") or rendered.get("command") or ()
        if isinstance(argv, list | tuple) and argv and str(argv[0]).upper() in DELETE_COMMANDS:
            return "Delete"
    return "Run"


def is_production(environment: str | None) -> bool:
    return (environment or "").lower() in PRODUCTION_NAMES


def param_text(value: Any) -> str:
    """A param's value as the operator would type it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


class ConfirmModal(ModalScreen[Confirmed | None]):
    """`ConfirmModal(runner, step, verdict, preview)`; dismisses with Confirmed or None.

    `preview` None means "measure it here": the modal asks the runner in a worker, so the
    modal is drawn at once and the preview fills in when it arrives.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    # Drawn as fast as a key press deserves (bench/confirm_latency.py): an opaque backdrop (a
    # translucent one makes Textual render and tint the whole screen underneath on every
    # frame, a quarter of the time from key to drawn modal), and few widgets (each one costs
    # its stylesheet pass at mount): the title sits on the box's border, the errors in the
    # same text as the preview.
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; background: $background; }
    ConfirmModal #confirm-box {
        width: 96%; max-width: 110; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
        border-title-align: left; border-title-style: bold; border-title-color: $foreground;
    }
    ConfirmModal.-production #confirm-box { border: thick $state-crit; }
    ConfirmModal #confirm-body { height: auto; max-height: 16; }
    ConfirmModal .confirm-line { height: auto; }
    ConfirmModal .confirm-head { text-style: bold; height: 1; margin-top: 0; }
    ConfirmModal .param-row { height: 1; }
    ConfirmModal .param-label { width: 14; height: 1; }
    ConfirmModal .param-row Input, ConfirmModal #confirm-typed {
        border: none; height: 1; width: 1fr; padding: 0 1; background: $boost;
    }
    ConfirmModal .param-row Input:focus, ConfirmModal #confirm-typed:focus {
        background: $primary 30%;
    }
    ConfirmModal #confirm-errors { color: $error; height: auto; }
    ConfirmModal #confirm-read-only { color: $error; text-style: bold; height: auto; }
    ConfirmModal #confirm-buttons { height: 1; align: right middle; margin-top: 1; }
    ConfirmModal Button { height: 1; min-width: 10; border: none; margin-left: 2; }
    ConfirmModal #confirm-cancel:focus { text-style: bold reverse; }
    ConfirmModal #confirm-yes { background: $error 70%; }
    ConfirmModal #confirm-yes:disabled { background: $panel; }
    """

    def __init__(
        self,
        runner: Runner,
        step: PreparedStep,
        verdict: Verdict,
        preview: Preview | None = None,
    ) -> None:
        super().__init__()
        self.runner = runner
        self.step = step
        self.verdict = verdict
        self.preview = preview
        self.refusal: str | None = (
            READ_ONLY_TEXT if runner.read_only and verdict.mutating else runner.unavailable(step)
        )
        """Why this step will not run from here (read-only mode, a secret not set here)."""
        self.read_only = self.refusal is not None
        self.verb = confirm_verb(step)
        self.danger_high = step.danger == "high"
        self.param_error: str | None = None
        self.preparing = False
        self.confirm_error: str | None = None
        self._answered = False
        self._timer: Timer | None = None
        self._measure = preview is None
        self._facts = Static(classes="confirm-line", id="confirm-facts")
        self._preview = Static(classes="confirm-line", id="confirm-preview")
        self._errors: Static | None = None
        self._body = VerticalScroll(id="confirm-body")
        self._inputs: dict[str, Input] = {}
        self._typed = Input(placeholder=f"type: {step.target}", id="confirm-typed")
        self._yes = Button(self.verb, id="confirm-yes", variant="error", compact=True)
        self._cancel = Button("Cancel", id="confirm-cancel", compact=True)
        if is_production(step.environment):
            self.add_class("-production")

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        box = Vertical(id="confirm-box")
        box.border_title = self._title()
        with box:
            with self._body:
                yield self._facts
                if self.refusal is not None:
                    yield Static(self.refusal, id="confirm-read-only")
                if self.step.params:
                    yield Static("params", classes="confirm-head")
                    for name, value in self.step.params.items():
                        field = Input(
                            param_text(value),
                            id=f"param-{name}",
                            disabled=self.read_only,
                            select_on_focus=False,
                        )
                        self._inputs[name] = field
                        with Horizontal(classes="param-row"):
                            yield Label(f"  {name}", classes="param-label")
                            yield field
                yield self._preview
                if self.danger_high and not self.read_only:
                    yield Static(
                        Text.assemble(
                            ("danger: high", "bold reverse"),
                            " type the target's name to enable ",
                            (self.verb, "bold"),
                            ":",
                        ),
                        classes="confirm-line",
                    )
                    yield self._typed
            with Horizontal(id="confirm-buttons"):
                yield self._cancel
                if not self.read_only:
                    yield self._yes

    def _title(self) -> Text:
        title = Text()
        if self.read_only:
            title.append("Refused: ", style="bold")
        else:
            title.append("Confirm: ", style="bold")
        title.append(self.step.title)
        return title

    def on_mount(self) -> None:
        self._show_facts()
        self._show_preview()
        self._update_button()
        self._cancel.focus()
        if self._measure and not self.read_only:
            self._measure_preview(self.step)

    # --- what is shown ---------------------------------------------------------------------

    def facts_text(self) -> Table:
        """Environment, target, the equivalent command and the classification reason, as a
        two-column grid (long commands wrap under their own column)."""
        step, verdict = self.step, self.verdict
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True, min_width=11)
        grid.add_column(overflow="fold", ratio=1)
        environment = step.environment or "not set"
        if is_production(step.environment):
            env = Text(f" {environment.upper()} ", style="bold white on red")
        else:
            env = Text(environment, style="bold")
        grid.add_row("environment", env)
        grid.add_row("target", Text(step.target, style="bold"))
        grid.add_row("command", Text(step.equivalent))
        word = "mutates" if verdict.mutating else "read-only"
        why = Text()
        why.append(f"{'⚠ ' if verdict.mutating else ''}{word}", style="bold")
        why.append(f": {verdict.reason}")
        if step.danger != "low":
            why.append(f" · danger {step.danger}", style="bold")
        grid.add_row("why", why)
        if verdict.overruled:
            grid.add_row(
                "overruled", Text(f"config said read-only; overruled: {verdict.overruled}")
            )
        return grid

    def preview_text(self) -> Text:
        if self.read_only:
            return Text("not measured: the action is refused", style="dim")
        if self.preparing:
            return Text("re-preparing with the new params…", style="dim")
        if self.param_error is not None:
            return Text("no preview until the params are valid", style="dim")
        preview = self.preview
        if preview is None:
            return Text("measuring…" if self._measure else "no preview for this kind", style="dim")
        if preview.error is not None:
            error = preview.error
            if not error.startswith("preview failed"):
                error = f"preview failed: {error}"
            return Text(error, style="bold")
        if not preview.lines:
            return Text("nothing to preview", style="dim")
        return Text("\n".join(preview.lines))

    def _show_facts(self) -> None:
        self._facts.update(self.facts_text())

    def _show_preview(self) -> None:
        self._preview.update(Text.assemble(("preview", "bold"), "\n", self.preview_text()))

    def _show_errors(self) -> None:
        """Errors (params, a refused confirm) above the preview; their line is mounted the
        first time there is one, so a modal without errors costs one widget less to draw."""
        text = "\n".join(e for e in (self.param_error, self.confirm_error) if e)
        if self._errors is None:
            if not text:
                return
            self._errors = Static("", id="confirm-errors")
            self._body.mount(self._errors, before=self._preview)
        self._errors.update(text)
        self._errors.display = bool(text)

    @property
    def settled(self) -> bool:
        """True when nothing is being measured or re-prepared: what is shown is final."""
        return not self.preparing and not (self._measure and self.preview is None)

    @property
    def can_confirm(self) -> bool:
        """True when pressing the verb would mint a token for what is shown."""
        if self.read_only or self._answered or self.preparing or self.param_error:
            return False
        return not (self.danger_high and self._typed.value != self.step.target)

    def _update_button(self) -> None:
        self._show_errors()
        self._yes.disabled = not self.can_confirm

    # --- preview and re-prepare (workers) --------------------------------------------------

    @work(exclusive=True, group="preview")
    async def _measure_preview(self, step: PreparedStep) -> None:
        try:
            preview = await self.runner.preview(step)
        except ActionError as exc:
            preview = Preview((), error=str(exc))
        except Exception as exc:  # a backend failure while measuring is shown, not raised
            preview = Preview((), error=f"{type(exc).__name__}: {exc}")
        if step is not self.step:
            return
        self.preview = preview
        self._measure = preview is not None
        self._show_preview()

    def _shown_values(self) -> dict[str, str]:
        return {name: param_text(value) for name, value in self.step.params.items()}

    @on(Input.Changed, ".param-row Input")
    def _param_changed(self) -> None:
        if self.read_only:
            return
        values = {name: field.value for name, field in self._inputs.items()}
        if values == self._shown_values() and self.param_error is None:
            # Back to what is prepared (or the fields' first fill): nothing to redo.
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self.preparing = False
            self._update_button()
            self._show_preview()
            return
        self.preparing = True
        self._update_button()
        self._show_preview()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(REPREPARE_DELAY, self._reprepare_now)

    def _reprepare_now(self) -> None:
        self._timer = None
        values = {name: field.value for name, field in self._inputs.items()}
        self._reprepare(values)

    @work(exclusive=True, group="prepare")
    async def _reprepare(self, values: Mapping[str, str]) -> None:
        step = self.step
        try:
            new = await self.runner.prepare_action(
                step.runbook_id or "", step.action_id or "", values
            )
            verdict = await self.runner.classify(new)
        except ActionError as exc:
            self.param_error = str(exc)
            self.preparing = False
            self._update_button()
            self._show_preview()
            return
        self.step, self.verdict = new, verdict
        self.param_error = None
        self.preparing = False
        self.preview = None
        self._measure = True
        self._show_facts()
        self._update_button()
        self._show_preview()
        self._measure_preview(new)

    @on(Input.Changed, "#confirm-typed")
    def _typed_changed(self) -> None:
        self.confirm_error = None
        self._update_button()

    # --- answers ---------------------------------------------------------------------------

    @on(Button.Pressed, "#confirm-cancel")
    def action_cancel(self) -> None:
        if self._answered:
            return
        self._answered = True
        self.runner.cancelled(self.step, via="modal", why="the operator cancelled the modal")
        self.dismiss(None)

    @on(Button.Pressed, "#confirm-yes")
    def _yes_pressed(self) -> None:
        self.confirm()

    @on(Input.Submitted, "#confirm-typed")
    def _typed_submitted(self) -> None:
        if self.can_confirm:
            self._yes.focus()

    def confirm(self) -> None:
        """Mint the token for exactly the step shown and dismiss with it (once)."""
        if not self.can_confirm:
            return
        self._answered = True
        self._yes.disabled = True
        typed = self._typed.value if self.danger_high else None
        try:
            token = self.runner.confirm(self.step, via="modal", typed_target=typed)
        except Refused as exc:
            self._answered = False
            self.confirm_error = str(exc)
            self._update_button()
            return
        self.dismiss(Confirmed(self.step, token))
