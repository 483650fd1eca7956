"""Wall mode: the options, the theme choice, and which view the rotation shows next.

A wall screen is read by people walking past, not driven by one: it never mutates anything,
it shows every view in turn, and while something is CRIT it keeps the views that show it on
screen instead of rotating the incident away. The rules live here as plain functions so they
can be tested without a terminal.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from opstui.ui.themes import DEFAULT_THEME

DEFAULT_ROTATE = 30.0
WALL_THEME = "opstui-wall"
BASTION_THEME = "opstui-bastion"
SIXTEEN_COLOUR_SYSTEMS = frozenset({"standard", "windows"})
"""Rich's names for terminals with only the 16 ANSI colours (TERM=xterm, screen, vt100...)."""

@dataclass(frozen=True)
class WallOptions:
    """`--wall [--rotate N]`: seconds between views, 0 to never rotate."""

    rotate: float = DEFAULT_ROTATE


def pick_theme(
    explicit: str | None,
    configured: str | None,
    *,
    wall: bool,
    color_system: str | None,
) -> str:
    """The theme to start with: --theme wins; on a 16-colour terminal the bastion theme
    (hex colours rounded to 16 would make states hard to tell apart); then the wall theme
    in wall mode; then the config's theme; then the default."""
    if explicit:
        return explicit
    if color_system in SIXTEEN_COLOUR_SYSTEMS:
        return BASTION_THEME
    if wall:
        return WALL_THEME
    return configured or DEFAULT_THEME


def next_view(current: int, views: Sequence[Collection[str]], crit: Collection[str]) -> int:
    """The view to show after `current`, given each view's probe ids and the CRIT probes.

    Without a CRIT probe on any view: the next view, wrapping round. Otherwise the next view
    (after `current`, wrapping) among those showing a CRIT probe, which is `current` itself
    when it is the only one: the incident stays on the wall. (`opstui --help` says so.)"""
    count = len(views)
    if count == 0:
        return 0
    order = [(current + step) % count for step in range(1, count + 1)]
    critical = set(crit)
    if critical:
        for index in order:
            if critical.intersection(views[index]):
                return index
    return order[0]
