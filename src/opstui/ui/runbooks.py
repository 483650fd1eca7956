"""`r`: the runbook palette. Every runbook, those for panels in warn or crit first.

The order is the point: during an incident the runbook of the red panel is one key away, so
runbooks linked (Config.runbooks_for) to a crit panel come first, then warn, each marked with
the panel's state; the rest follow in config order. Typing filters fuzzily; enter opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from opstui.config.models import Config
from opstui.engine.scheduler import Engine
from opstui.states import State
from opstui.ui.format import state_label

ALARM_STATES = (State.CRIT, State.WARN)
SEVERITY_WORDS = {"critical": "critical", "warning": "warning", "info": "info"}


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    """One row of the palette: a runbook and, if a linked panel alarms, the worst of them."""

    runbook_id: str
    title: str
    severity: str
    probe_id: str | None = None
    state: State | None = None

    @property
    def text(self) -> str:
        """What the fuzzy filter matches against."""
        return f"{self.title} {self.runbook_id} {self.probe_id or ''}".strip()


def runbook_entries(config: Config, states: dict[str, State]) -> list[RunbookEntry]:
    """Every runbook once: linked to a crit panel first, then warn, then config order."""
    alarmed: dict[str, RunbookEntry] = {}
    for wanted in ALARM_STATES:
        for probe in config.probes:
            if states.get(probe.id) is not wanted:
                continue
            for runbook in config.runbooks_for(probe.id):
                if runbook.id not in alarmed:
                    alarmed[runbook.id] = RunbookEntry(
                        runbook.id, runbook.title, runbook.severity, probe.id, wanted
                    )
    entries = list(alarmed.values())
    entries.extend(
        RunbookEntry(r.id, r.title, r.severity) for r in config.runbooks if r.id not in alarmed
    )
    return entries


def entry_prompt(entry: RunbookEntry, title: Text | None = None) -> Text:
    """`✖ CRIT queue · High queue backlog  (critical)`; unalarmed runbooks are indented alike."""
    prompt = Text()
    if entry.state is not None:
        style = "bold reverse" if entry.state is State.CRIT else "bold"
        prompt.append(f"{state_label(entry.state):<6}", style=style)
        prompt.append(f" {entry.probe_id} · ")
    else:
        prompt.append(" " * 7)
    prompt.append_text(title if title is not None else Text(entry.title))
    prompt.append(f"  ({SEVERITY_WORDS.get(entry.severity, entry.severity)})", style="dim")
    return prompt


class RunbookPalette(ModalScreen[str | None]):
    """`RunbookPalette(engine, focused_probe)`: dismisses with the chosen runbook id (or None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    DEFAULT_CSS = """
    RunbookPalette { align: center top; }
    RunbookPalette #runbooks-box {
        width: 90%; max-width: 100; height: auto; max-height: 20; margin-top: 1;
        border: round $primary; background: $surface; padding: 0 1;
    }
    RunbookPalette #runbooks-title { text-style: bold; height: 1; }
    RunbookPalette Input { margin: 0; border: tall $primary 50%; }
    RunbookPalette OptionList { height: auto; max-height: 12; border: none; padding: 0; }
    RunbookPalette #runbooks-empty { color: $text-muted; height: 1; }
    RunbookPalette #runbooks-foot { color: $text-muted; height: 1; }
    """

    def __init__(self, engine: Engine, focused_probe: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        states = {s.probe_id: s.state for s in engine.snapshots()}
        self.entries = runbook_entries(engine.config, states)
        self.preselect: str | None = None
        if focused_probe is not None:
            linked = engine.config.runbooks_for(focused_probe)
            if linked:
                self.preselect = linked[0].id
        self._input = Input(placeholder="filter runbooks", id="runbooks-filter")
        self._list = OptionList(id="runbooks-list")
        self._empty = Static("", id="runbooks-empty")
        self.shown: list[RunbookEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="runbooks-box"):
            yield Static("Runbooks", id="runbooks-title")
            yield self._input
            yield self._list
            yield self._empty
            yield Static("type to filter · ↑↓ choose · enter open · esc close", id="runbooks-foot")

    def on_mount(self) -> None:
        self._show("")
        self._input.focus()

    def _show(self, query: str) -> None:
        """Fill the list: every entry in its order, or the fuzzy matches best first."""
        if query.strip():
            matcher = Matcher(query)
            scored = [(matcher.match(e.text), i, e) for i, e in enumerate(self.entries)]
            ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
            self.shown = [e for _, _, e in ranked]
            options = [Option(entry_prompt(e, Text(e.title)), id=e.runbook_id) for e in self.shown]
        else:
            self.shown = list(self.entries)
            options = [Option(entry_prompt(e), id=e.runbook_id) for e in self.shown]
        self._list.set_options(options)
        if not self.entries:
            self._empty.update("No runbooks in this config (add `runbooks:`).")
        elif not self.shown:
            self._empty.update("No runbook matches.")
        else:
            self._empty.update("")
        self._empty.display = not self.shown
        self._list.display = bool(self.shown)
        if not self.shown:
            return
        index = 0
        if not query.strip() and self.preselect is not None:
            index = next((i for i, e in enumerate(self.shown) if e.runbook_id == self.preselect), 0)
        self._list.highlighted = index

    @on(Input.Changed, "#runbooks-filter")
    def _filter(self, message: Input.Changed) -> None:
        self._show(message.value)

    @on(Input.Submitted, "#runbooks-filter")
    def _submit(self) -> None:
        self._open_highlighted()

    @on(OptionList.OptionSelected, "#runbooks-list")
    def _selected(self, message: OptionList.OptionSelected) -> None:
        self.dismiss(message.option.id)

    def _open_highlighted(self) -> None:
        option = self._list.highlighted_option
        if option is not None:
            self.dismiss(option.id)

    def action_move(self, delta: int) -> None:
        if not self.shown:
            return
        current = self._list.highlighted or 0
        self._list.highlighted = max(0, min(len(self.shown) - 1, current + delta))

    def action_close(self) -> None:
        self.dismiss(None)

    @property
    def highlighted_id(self) -> str | None:
        option = self._list.highlighted_option
        return option.id if option is not None else None
