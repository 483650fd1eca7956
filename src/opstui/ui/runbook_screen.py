"""One runbook, live: symptoms, diagnose steps running by themselves, keybound actions, the
checklist, and an output pane for the selected step.

Everything executes through the Runner (the one gate): diagnose steps run concurrently as
soon as the screen opens; an action's key prepares it with its default params, runs a
read-only one at once, and pushes the confirm modal for a mutating one, then runs it with the
token the modal minted and follows it with the action's watch. Actions run in app-level
workers, so closing this screen never abandons a mutation half-way (which would leave an
audit intent without a result); diagnose steps are this screen's and stop with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import OptionList, RichLog, Static
from textual.widgets.option_list import Option

from opstui.actions.base import Outcome, PreparedStep, Progress, Verdict
from opstui.actions.runner import ActionError, Runner
from opstui.config.runbooks import Runbook
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.ui.confirm import Confirmed, ConfirmModal
from opstui.ui.format import format_age, state_label, truncate

MAX_LINES = 2000
"""Output kept per step; older lines are dropped (a chatty shell step cannot eat memory)."""

SEVERITY_LABELS = {"critical": "✖ critical", "warning": "▲ warning", "info": "● info"}
STATE_GLYPHS = {
    "queued": "·",
    "running": "▶",
    "ok": "✔",
    "failed": "✘",
    "cancelled": "⊘",
    "idle": " ",
}


@dataclass
class StepRow:
    """What the screen knows about one line of the runbook."""

    row_id: str
    section: str
    """"diagnose", "action" or "check"."""
    title: str
    index: int | None = None
    action_id: str | None = None
    key: str | None = None
    danger: str = "low"
    state: str = "idle"
    summary: str = ""
    phase: str = ""
    """"watch" while (and after) an action's `then` runs."""
    lines: list[str] = field(default_factory=list)
    started: float | None = None
    progress: Progress | None = None
    verdict: Verdict | None = None
    verdict_error: str | None = None
    ticked: bool = False

    def add_output(self, text: str) -> list[str]:
        new = text.rstrip("\n").split("\n") if text else []
        self.lines.extend(new)
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]
        return new


def linked_probes(engine: Engine, runbook: Runbook) -> list[str]:
    """Probes this runbook is for: its `probes:` and every probe naming it as `runbook:`."""
    ids = [p for p in runbook.probes]
    ids += [p.id for p in engine.config.probes if p.runbook == runbook.id and p.id not in ids]
    return ids


class RunbookScreen(Screen[None]):
    """`RunbookScreen(runner, engine, runbook_id, trigger=None)`; `trigger` is an action id to
    start as soon as the screen opens (the ctrl+p palette's "Action: ...")."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "escape", "Cancel/close"),
        Binding("q", "close", "Close", show=False),
        Binding("space", "tick", "Tick", show=False),
    ]

    DEFAULT_CSS = """
    RunbookScreen { layout: vertical; background: $background; }
    RunbookScreen #rb-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    RunbookScreen #rb-symptoms { height: auto; max-height: 2; padding: 0 1; }
    RunbookScreen #rb-panels { height: 1; padding: 0 1; color: $text-muted; }
    RunbookScreen #rb-steps { height: auto; max-height: 60%; min-height: 5; border: none;
        padding: 0; }
    RunbookScreen #rb-output { height: 1fr; min-height: 5; border: round $primary 50%;
        padding: 0 1; background: $surface; overflow-y: auto; }
    RunbookScreen #rb-foot { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self, runner: Runner, engine: Engine, runbook_id: str, *, trigger: str | None = None
    ) -> None:
        super().__init__()
        self.runner = runner
        self.engine = engine
        self.runbook: Runbook = engine.config.runbook(runbook_id)
        self.trigger = trigger
        self.rows: dict[str, StepRow] = {}
        self.order: list[str | None] = []
        """Row ids in list order; None for headings (their options are disabled)."""
        self.keys: dict[str, str] = {}
        """Action key -> row id."""
        self.selected: str | None = None
        self.linked = linked_probes(engine, self.runbook)
        self._states = {pid: engine.snapshot(pid).state for pid in self.linked}
        self._unsubscribe: Callable[[], None] | None = None
        self._headings: list[str] = []
        self._build_rows()
        self._title = Static(self._title_text(), id="rb-title")
        self._symptoms = Static(self.runbook.symptoms or "", id="rb-symptoms")
        self._panels = Static(id="rb-panels")
        self._list = OptionList(id="rb-steps")
        self._output = RichLog(id="rb-output", wrap=True, min_width=20, markup=False)
        self._foot = Static(id="rb-foot")

    # --- model ----------------------------------------------------------------------------

    def _build_rows(self) -> None:
        checks: list[StepRow] = []
        diagnose: list[StepRow] = []
        for index, step in enumerate(self.runbook.diagnose):
            if step.kind == "manual":
                checks.append(StepRow(f"check-d{index}", "check", str(step.title)))
            else:
                diagnose.append(
                    StepRow(f"diag-{index}", "diagnose", str(step.title), index, state="queued")
                )
        actions: list[StepRow] = []
        for action in self.runbook.actions:
            if action.kind == "manual":
                checks.append(
                    StepRow(f"check-{action.id}", "check", str(action.title), action_id=action.id)
                )
                continue
            row = StepRow(
                f"act-{action.id}",
                "action",
                str(action.title),
                action_id=action.id,
                key=action.key,
                danger=action.danger,
            )
            actions.append(row)
            if action.key is not None:
                self.keys[action.key] = row.row_id
        for heading, rows in (("Diagnose", diagnose), ("Actions", actions), ("Checklist", checks)):
            if not rows:
                continue
            self.order.append(None)
            for row in rows:
                self.rows[row.row_id] = row
                self.order.append(row.row_id)
            self._headings.append(heading)

    def _title_text(self) -> Text:
        text = Text()
        text.append(f"Runbook: {self.runbook.title}")
        severity = SEVERITY_LABELS.get(self.runbook.severity, self.runbook.severity)
        text.append(f"  {severity}", style="reverse" if self.runbook.severity == "critical" else "")
        return text

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._title
        if self.runbook.symptoms:
            yield self._symptoms
        yield self._panels
        yield self._list
        yield self._output
        yield self._foot

    def on_mount(self) -> None:
        self._list.set_options(self._options())
        self._show_panels()
        self._foot.update(self._foot_text())
        self._unsubscribe = self.engine.subscribe(self._on_snapshot)
        first = next((i for i, rid in enumerate(self.order) if rid is not None), None)
        if first is not None:
            self._list.highlighted = first
        self._list.focus()
        self.set_interval(1.0, self._tick_running)
        for row in self.rows.values():
            if row.section == "diagnose":
                self.run_worker(self._run_diagnose(row), group="diagnose", exit_on_error=False)
            elif row.section == "action":
                self.run_worker(self._classify(row), group="classify", exit_on_error=False)
        if self.trigger is not None:
            self.trigger_action(self.trigger)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for row in self.rows.values():  # diagnose steps stop with the screen
            if row.section == "diagnose" and row.progress is not None:
                row.progress.cancel.set()

    def on_resize(self, event: events.Resize) -> None:
        self._redraw_all()
        self._show_panels()

    def _options(self) -> list[Option]:
        options: list[Option] = []
        headings = iter(self._headings)
        for row_id in self.order:
            if row_id is None:
                options.append(Option(Text(next(headings), style="bold underline"), disabled=True))
            else:
                options.append(Option(self.row_text(self.rows[row_id]), id=row_id))
        return options

    def _foot_text(self) -> str:
        keys = "/".join(self.keys)
        parts = ["↑↓ select", "enter run"]
        if keys:
            parts.append(f"{keys} actions")
        if any(r.section == "check" for r in self.rows.values()):
            parts.append("space tick")
        parts.append("esc cancel/close")
        return truncate(" · ".join(parts), self._line_width)

    # --- drawing rows ---------------------------------------------------------------------

    @property
    def _line_width(self) -> int:
        """Cells for a one-line Static (padding 1 on each side), before and after layout."""
        return max(20, (self.size.width or self.app.size.width) - 2)

    @property
    def _width(self) -> int:
        return max(40, (self._list.size.width or self.app.size.width) - 2)

    def _elapsed(self, row: StepRow) -> str:
        if row.started is None:
            return ""
        return format_age(time.monotonic() - row.started)

    def status_words(self, row: StepRow) -> str:
        """The state in words: `running 3s`, `ok · HTTP 200`, `watch failed · timed out`."""
        if row.state == "running":
            message = row.progress.message if row.progress and row.progress.message else ""
            what = "watching" if row.phase == "watch" else "running"
            return " ".join(p for p in (what, self._elapsed(row), message) if p)
        if row.state == "idle":
            return ""
        word = f"watch {row.state}" if row.phase == "watch" else row.state
        return f"{word} · {row.summary}" if row.summary else word

    def status_text(self, row: StepRow) -> str:
        """Glyph and words, as an action row shows them after its classification."""
        words = self.status_words(row)
        return f"{STATE_GLYPHS[row.state]} {words}" if words else ""

    def classification_text(self, row: StepRow) -> Text:
        text = Text()
        if row.verdict is None:
            if row.verdict_error is not None:
                text.append(f"? {row.verdict_error}", style="dim")
            else:
                text.append("classifying…", style="dim")
            return text
        if row.verdict.mutating:
            text.append("⚠ mutates", style="bold")
            if row.danger != "low":
                text.append(f" · danger {row.danger}", style="bold" if row.danger == "high" else "")
        else:
            text.append("read-only", style="dim")
        return text

    def row_text(self, row: StepRow) -> Text:
        width = self._width
        text = Text(no_wrap=True, overflow="ellipsis")
        if row.section == "check":
            text.append(" [x] " if row.ticked else " [ ] ", style="bold")
            text.append(truncate(row.title, width - 5))
            return text
        if row.section == "action":
            text.append(f" [{row.key}] " if row.key else "     ", style="bold")
            text.append(row.title)
            text.append("  ")
            text.append_text(self.classification_text(row))
            status = self.status_text(row)
            if status:
                text.append(f"  {status}")
            text.truncate(width, overflow="ellipsis")
            return text
        text.append(f" {STATE_GLYPHS[row.state]} ", style="bold")
        column = max(12, min(28, width // 3))
        text.append(f"{truncate(row.title, column):<{column}}")
        text.append(f"  {self.status_words(row)}")
        text.truncate(width, overflow="ellipsis")
        return text

    def _redraw(self, row: StepRow) -> None:
        if not self.is_attached:
            return
        self._list.replace_option_prompt(row.row_id, self.row_text(row))

    def _redraw_all(self) -> None:
        if not self.is_attached or not self._list.option_count:
            return
        for row in self.rows.values():
            self._redraw(row)
        self._foot.update(self._foot_text())

    def _tick_running(self) -> None:
        for row in self.rows.values():
            if row.state == "running":
                self._redraw(row)

    # --- linked panels --------------------------------------------------------------------

    def panels_text(self) -> str:
        if not self.linked:
            return "Panels: none linked"
        parts = [f"{pid} {state_label(self._states[pid])}" for pid in self.linked]
        return truncate("Panels: " + " · ".join(parts), self._line_width)

    def _show_panels(self) -> None:
        self._panels.update(self.panels_text())

    def _on_snapshot(self, snapshot: ProbeSnapshot) -> None:
        if snapshot.probe_id not in self._states:
            return
        if self._states[snapshot.probe_id] is snapshot.state:
            return
        self._states[snapshot.probe_id] = snapshot.state
        self._show_panels()

    # --- output pane ----------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#rb-steps")
    def _highlighted(self, message: OptionList.OptionHighlighted) -> None:
        self.selected = message.option.id
        self._show_output()

    def _show_output(self) -> None:
        row = self.rows.get(self.selected or "")
        self._output.clear()
        if row is None:
            self._output.border_title = "output"
            return
        self._output.border_title = truncate(f"output · {row.title}", 60)
        if row.lines:
            self._output.write(Text("\n".join(row.lines)))
        elif row.section == "check":
            step_text = self._check_text(row)
            self._output.write(Text(step_text or "A step for a person: tick it when done."))
        elif row.state in ("queued", "running"):
            self._output.write(Text("waiting for output…", style="dim"))

    def _check_text(self, row: StepRow) -> str:
        for step in [*self.runbook.diagnose, *self.runbook.actions]:
            if step.kind == "manual" and str(step.title) == row.title:
                return str(getattr(step, "text", None) or "")
        return ""

    def _sink(self, row: StepRow) -> Callable[[str], None]:
        def write(text: str) -> None:
            new = row.add_output(text)
            if new and self.selected == row.row_id and self.is_attached:
                if len(row.lines) == len(new):
                    self._output.clear()
                self._output.write(Text("\n".join(new)))

        return write

    # --- running --------------------------------------------------------------------------

    def _start(self, row: StepRow, phase: str = "") -> Progress:
        row.state = "running"
        row.phase = phase
        row.summary = ""
        row.started = time.monotonic()
        row.progress = Progress()
        self._redraw(row)
        return row.progress

    def _finish(self, row: StepRow, outcome: Outcome | None, error: str | None = None) -> None:
        if outcome is None:
            row.state, row.summary = "failed", error or "failed"
        elif outcome.cancelled:
            row.state, row.summary = "cancelled", outcome.summary
        else:
            row.state = "ok" if outcome.ok else "failed"
            row.summary = outcome.summary
            if not outcome.ok and outcome.error and outcome.error not in row.summary:
                row.summary = f"{row.summary}: {outcome.error}" if row.summary else outcome.error
        if outcome is not None and outcome.output and not row.lines:
            row.add_output(outcome.output)
        elif outcome is None and error:
            row.add_output(error)
        row.progress = None
        self._redraw(row)
        if self.selected == row.row_id and self.is_attached:
            self._show_output()

    async def _run_diagnose(self, row: StepRow) -> None:
        assert row.index is not None
        progress = self._start(row)
        row.lines.clear()
        try:
            step = await self.runner.prepare_diagnose(self.runbook.id, row.index, attempt=True)
            outcome = await self.runner.run(step, output=self._sink(row), progress=progress)
        except ActionError as exc:
            self._finish(row, None, str(exc))
            return
        except Exception as exc:  # the screen says what broke; it never shows a traceback
            self._finish(row, None, f"{type(exc).__name__}: {exc}")
            return
        self._finish(row, outcome)

    async def _prepare(self, row: StepRow) -> tuple[PreparedStep, Verdict]:
        assert row.action_id is not None
        params = self.runner.default_params(self.runbook.id, row.action_id)
        step = await self.runner.prepare_action(self.runbook.id, row.action_id, params)
        return step, await self.runner.classify(step)

    async def _classify(self, row: StepRow) -> None:
        try:
            _, row.verdict = await self._prepare(row)
            row.verdict_error = None
        except ActionError as exc:
            row.verdict_error = str(exc)
        except Exception as exc:
            row.verdict_error = f"{type(exc).__name__}: {exc}"
        self._redraw(row)

    def trigger_action(self, action_id: str) -> None:
        """Prepare an action with its default params; run it, or ask first if it mutates."""
        row = self.rows.get(f"act-{action_id}")
        if row is None:
            self.notify(f"no action {action_id!r} in this runbook", severity="error")
            return
        if row.state == "running":
            self.notify(f"{row.title}: already running", timeout=3)
            return
        self._select(row)
        self.run_worker(self._trigger(row), group="trigger", exclusive=True, exit_on_error=False)

    async def _trigger(self, row: StepRow) -> None:
        try:
            step, verdict = await self._prepare(row)
        except ActionError as exc:
            self.notify(f"{row.title}: {exc}", severity="error", timeout=8)
            return
        except Exception as exc:
            self.notify(f"{row.title}: {type(exc).__name__}: {exc}", severity="error", timeout=8)
            return
        row.verdict = verdict
        self._redraw(row)
        if not verdict.mutating:
            self.app.run_worker(
                self._execute(row, step, None), group="actions", exit_on_error=False
            )
            return

        def answered(result: Confirmed | None) -> None:
            if result is None:
                self.notify(f"{row.title}: cancelled, nothing ran", timeout=3)
                return
            self.app.run_worker(
                self._execute(row, result.step, result), group="actions", exit_on_error=False
            )

        await self.app.push_screen(ConfirmModal(self.runner, step, verdict), answered)

    async def _execute(self, row: StepRow, step: PreparedStep, confirmed: Confirmed | None) -> None:
        """Run the step (with the modal's token if it mutates), then its watch on success."""
        progress = self._start(row)
        row.lines.clear()
        sink = self._sink(row)
        if self.selected == row.row_id and self.is_attached:
            self._show_output()
        try:
            outcome = await self.runner.run(
                step,
                token=confirmed.token if confirmed else None,
                output=sink,
                progress=progress,
            )
        except ActionError as exc:
            self._finish(row, None, str(exc))
            return
        except Exception as exc:
            self._finish(row, None, f"{type(exc).__name__}: {exc}")
            return
        self._finish(row, outcome)
        if not outcome.ok or outcome.cancelled:
            return
        progress = self._start(row, phase="watch")
        row.add_output("")
        try:
            watched = await self.runner.run_then(step, output=sink, progress=progress)
        except ActionError as exc:
            self._finish(row, None, str(exc))
            return
        except Exception as exc:
            self._finish(row, None, f"{type(exc).__name__}: {exc}")
            return
        if watched is None:  # no `then`: show the action's own outcome again
            row.phase = ""
            self._finish(row, outcome)
            return
        self._finish(row, watched)

    # --- keys -----------------------------------------------------------------------------

    def on_key(self, event: events.Key) -> None:
        """An action's key runs it (upper-case for mutations): before any global binding."""
        character = event.character
        if character is None or character not in self.keys:
            return
        event.stop()
        event.prevent_default()
        row = self.rows[self.keys[character]]
        assert row.action_id is not None
        self.trigger_action(row.action_id)

    def _select(self, row: StepRow) -> None:
        index = self.order.index(row.row_id)
        if self._list.highlighted != index:
            self._list.highlighted = index

    @on(OptionList.OptionSelected, "#rb-steps")
    def _selected(self, message: OptionList.OptionSelected) -> None:
        row = self.rows.get(message.option.id or "")
        if row is None:
            return
        if row.section == "action" and row.action_id is not None:
            self.trigger_action(row.action_id)
        elif row.section == "check":
            self._toggle(row)
        elif row.section == "diagnose" and row.state != "running":
            self.run_worker(self._run_diagnose(row), group="diagnose", exit_on_error=False)

    def action_tick(self) -> None:
        row = self.rows.get(self.selected or "")
        if row is not None and row.section == "check":
            self._toggle(row)

    def _toggle(self, row: StepRow) -> None:
        done = not row.ticked
        try:
            self.runner.tick_checklist(self.runbook.id, row.title, done)
        except (ActionError, OSError) as exc:
            self.notify(f"not recorded: {exc}", severity="error", timeout=8)
            return
        row.ticked = done
        self._redraw(row)

    def action_escape(self) -> None:
        """Cancel the selected step if it runs; otherwise close the screen."""
        row = self.rows.get(self.selected or "")
        if row is not None and row.state == "running" and row.progress is not None:
            row.progress.cancel.set()
            row.progress.message = "cancelling…"
            self._redraw(row)
            return
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
