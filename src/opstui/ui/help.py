"""The help screen: the key map, grouped, small enough for 80x24."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYMAP: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Anywhere",
        (
            ("?", "this help"),
            ("ctrl+p", "command palette: probes, views, runbooks, actions"),
            ("q", "quit (closes a screen first)"),
        ),
    ),
    (
        "Dashboard",
        (
            ("1-9", "switch view"),
            ("←↓↑→ / hjkl", "move focus between panels"),
            ("enter", "panel detail: history chart, raw reading"),
            ("r", "runbooks (those for red panels first)"),
            ("e", "event timeline"),
            ("p", "pause / resume polling"),
            ("R", "refresh now"),
        ),
    ),
    (
        "Detail and timeline",
        (
            ("esc / q", "close"),
            ("R", "refresh this probe (detail)"),
            ("/ · x", "filter events · export incident log"),
        ),
    ),
    (
        "Runbook",
        (
            ("a-z A-Z", "run an action (A-Z mutate: confirm first)"),
            ("space", "tick a checklist item"),
            ("esc", "cancel the running step, else close"),
        ),
    ),
)
"""(group, ((key, what it does), ...)): the one list the help screen and its tests read."""


def keymap_text() -> Text:
    """The key map as aligned lines: keys right-aligned in one column, groups underlined (no
    blank lines between groups: the whole map fits 80x24)."""
    width = max(cell_len(key) for _, keys in KEYMAP for key, _ in keys)
    text = Text()
    for group, keys in KEYMAP:
        text.append(" " * (width + 2))
        text.append(group, style="bold underline")
        text.append("\n")
        for key, what in keys:
            text.append(" " * (width - cell_len(key)))
            text.append(key, style="bold")
            text.append(f"  {what}\n")
    text.rstrip()
    return text


class HelpScreen(ModalScreen[None]):
    """`HelpScreen()`: the key map over the current screen; escape, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-box {
        width: auto; max-width: 76; height: auto; max-height: 22;
        border: round $primary; background: $surface; padding: 0 2;
    }
    HelpScreen #help-box { border-title-style: bold; border-subtitle-color: $text-muted; }
    HelpScreen #help-keys { width: auto; }
    """

    def compose(self) -> ComposeResult:
        box = Vertical(id="help-box")
        box.border_title = "opstui keys"
        box.border_subtitle = "esc or ? closes"
        with box:
            yield Static(keymap_text(), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
