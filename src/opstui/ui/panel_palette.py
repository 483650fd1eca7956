"""The styles every panel draws its text with, computed once per screen, not once per panel.

Textual gives each widget that declares COMPONENT_CLASSES a hidden node per class and runs
the stylesheet over each of them at mount and on every style update: 17 classes on 1,000
panels was 17,000 extra nodes, most of the first frame's time and of the RSS of a big wall
(bench/wall_scale.py). Those styles depend only on the theme and on wall mode, so one hidden
PanelPalette per dashboard holds them and every ProbePanel asks it.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from textual.widget import Widget

from opstui.states import State


def _state_css() -> str:
    rules = []
    for state in State:
        var = f"$state-{state.value}"
        style = "bold reverse" if state is State.CRIT else "bold"
        rules.append(
            f"PanelPalette > .panel--{state.value} {{ color: {var}; text-style: {style}; }}\n"
            # Wall mode: the state word as a block of colour, read from afar.
            f"PanelPalette.-wall > .panel--{state.value} {{ text-style: bold reverse; }}"
        )
    return "\n".join(rules)


class PanelPalette(Widget):
    """Never drawn (display: none); `style(name)` is the partial style of `.panel--name`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"panel--{state.value}" for state in State),
        "panel--value",
        "panel--dim",
        "panel--muted",
        "panel--spark",
        "panel--sev-ok",
        "panel--sev-warn",
        "panel--sev-crit",
        "panel--sev-unknown",
    }

    DEFAULT_CSS = """
    PanelPalette { display: none; }
    PanelPalette > .panel--value { text-style: bold; }
    PanelPalette > .panel--dim { text-style: dim; }
    PanelPalette > .panel--muted { color: $text-muted; }
    PanelPalette > .panel--spark { color: $accent; }
    PanelPalette > .panel--sev-ok { color: $state-ok; }
    PanelPalette > .panel--sev-warn { color: $state-warn; }
    PanelPalette > .panel--sev-crit { color: $state-crit; text-style: bold; }
    PanelPalette > .panel--sev-unknown { color: $text-muted; }
    """ + _state_css()

    def __init__(self, *, wall: bool = False) -> None:
        super().__init__()
        if wall:
            self.add_class("-wall")

    def style(self, name: str) -> Style:
        """The style of component `name`, cached by Textual until the theme changes (the
        palette never refreshes, so the cache is only emptied by a real style update)."""
        return self.get_component_rich_style(name, partial=True)
