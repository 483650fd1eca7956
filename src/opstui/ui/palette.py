"""Command palette (ctrl+p) entries: every probe (open its detail), view, runbook and action."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider


@runtime_checkable
class PaletteHost(Protocol):
    """What the palette needs from the app; kept narrow so the palette never imports it."""

    def palette_probes(self) -> list[tuple[str, str]]:
        """(probe id, title) in config order."""

    def palette_views(self) -> list[str]:
        """View names, in order (view n is key n)."""

    def open_detail(self, probe_id: str) -> None: ...

    def show_view(self, index: int) -> None: ...


@runtime_checkable
class RunbookHost(Protocol):
    """What the runbook entries need from the app (a separate protocol: hosts without
    runbooks still get probes and views)."""

    def palette_runbooks(self) -> list[tuple[str, str, list[tuple[str, str, str | None]]]]:
        """(runbook id, title, [(action id, action title, key or None), ...]) in config order."""

    def open_runbook(self, runbook_id: str, trigger: str | None = None) -> None: ...


Command = tuple[str, Callable[[], None], str]


def runbook_commands(host: RunbookHost) -> list[Command]:
    """`Runbook: <title>` opens it; `Action: <title> (<runbook>, <key>)` opens it and runs
    the action (a mutating one through the confirm modal, like its key)."""
    commands: list[Command] = []
    for runbook_id, title, actions in host.palette_runbooks():
        commands.append(
            (
                f"Runbook: {title}",
                partial(host.open_runbook, runbook_id),
                "Symptoms, diagnostics (they start by themselves), actions",
            )
        )
        for action_id, action_title, key in actions:
            where = f"{runbook_id}, {key}" if key else runbook_id
            commands.append(
                (
                    f"Action: {action_title} ({where})",
                    partial(host.open_runbook, runbook_id, action_id),
                    "Opens the runbook and starts it; a mutation asks for confirmation",
                )
            )
    return commands


def palette_commands(host: PaletteHost) -> list[Command]:
    """(text, callback, help) for every probe and view."""
    commands: list[Command] = []
    for probe_id, title in host.palette_probes():
        name = probe_id if title == probe_id else f"{probe_id} ({title})"
        commands.append(
            (
                f"Probe: {name} — open detail",
                partial(host.open_detail, probe_id),
                "History chart, thresholds and the raw reading",
            )
        )
    for index, view in enumerate(host.palette_views()):
        help_text = f"Key {index + 1}" if index < 9 else "Only from the palette"
        commands.append((f"View {index + 1}: {view}", partial(host.show_view, index), help_text))
    return commands


class OpstuiCommands(Provider):
    """Probes, views, runbooks and actions for the command palette."""

    def _commands(self) -> list[Command]:
        host = self.app
        commands = palette_commands(host) if isinstance(host, PaletteHost) else []
        if isinstance(host, RunbookHost):
            commands += runbook_commands(host)
        return commands

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, text=text, help=help_text)
