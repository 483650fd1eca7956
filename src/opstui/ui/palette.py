"""Command palette (ctrl+p) entries: every probe (open its detail) and every view."""

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
        ...

    def palette_views(self) -> list[str]:
        """View names, in order (view n is key n)."""
        ...

    def open_detail(self, probe_id: str) -> None: ...

    def show_view(self, index: int) -> None: ...


Command = tuple[str, Callable[[], None], str]


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
    """Probes and views for the command palette."""

    def _commands(self) -> list[Command]:
        host = self.app
        return palette_commands(host) if isinstance(host, PaletteHost) else []

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, text=text, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, text=text, help=help_text)
