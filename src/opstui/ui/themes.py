"""Themes as YAML files (DESIGN.md section 8): Textual Theme fields plus opstui's state colours.

State colours are custom theme `variables` (`state-ok`, `state-crit`...). Textual's
App.get_css_variables() merges `Theme.variables` over the generated colour system, so CSS can
say `$state-crit`. CSS that names a variable the active theme lacks fails to parse, so an app
also returns STATE_DEFAULTS from App.get_theme_variable_defaults() (Textual's hook for custom
variables) and every shipped theme must define every state variable (checked at load time).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from textual.color import Color, ColorParseError
from textual.theme import Theme

if TYPE_CHECKING:
    from textual.app import App

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "opstui-dark"

STATE_VARIABLES = (
    "state-ok",
    "state-warn",
    "state-crit",
    "state-error",
    "state-nodata",
    "state-stale",
    "state-pending",
    "state-flapping",
    "state-init",
)

STATE_DEFAULTS: dict[str, str] = {
    "state-ok": "ansi_green",
    "state-warn": "ansi_yellow",
    "state-crit": "ansi_bright_red",
    "state-error": "ansi_red",
    "state-nodata": "ansi_magenta",
    "state-stale": "ansi_white",
    "state-pending": "ansi_bright_yellow",
    "state-flapping": "ansi_cyan",
    "state-init": "ansi_white",
}
"""Fallbacks for App.get_theme_variable_defaults(), so opstui's CSS parses under any theme
(Textual's built-in ones included)."""

ANSI_VARIABLES = ("ansi-background", "ansi-foreground")

_FIELDS = {f.name: f for f in dataclasses.fields(Theme)}
_COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)


class ThemeFileError(ValueError):
    """A theme file that cannot become a Theme; the message names the file and the key."""

    def __init__(self, path: Path, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


def _check_color(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(path, key, f"expected a colour string, got {value!r}")
    try:
        Color.parse(value.split()[0] if value.endswith("%") else value)
    except ColorParseError:
        raise ThemeFileError(path, key, f"{value!r} is not a colour") from None
    return value


def theme_from_mapping(data: Any, path: Path) -> Theme:
    """Validate one parsed YAML document and build its Theme; errors name the file and key."""
    if not isinstance(data, dict):
        raise ThemeFileError(path, None, "a theme file must be a mapping of Theme fields")
    for key in data:
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ThemeFileError(path, str(key), f"unknown field; known fields: {known}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ThemeFileError(path, "name", "a theme needs a non-empty name")
    if "primary" not in data:
        raise ThemeFileError(path, "primary", "a theme needs a primary colour")
    for key in _COLOR_FIELDS:
        if data.get(key) is not None:
            _check_color(path, key, data[key])
    for key in ("dark", "ansi"):
        if key in data and not isinstance(data[key], bool):
            raise ThemeFileError(path, key, f"expected true or false, got {data[key]!r}")
    for key in ("luminosity_spread", "text_alpha"):
        value = data.get(key)
        if key in data and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ThemeFileError(path, key, f"expected a number, got {value!r}")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeFileError(path, "variables", "expected a mapping of variable: value")
    for state in STATE_VARIABLES:
        if state not in variables:
            raise ThemeFileError(path, f"variables.{state}", "missing state colour")
    if data.get("ansi") is True:
        # Textual's ANSI colour system leaves these to the theme; its CSS fails without them.
        for key in ANSI_VARIABLES:
            if key not in variables:
                raise ThemeFileError(path, f"variables.{key}", "an ansi theme must define it")
    clean: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(value, str):
            raise ThemeFileError(path, f"variables.{key}", f"expected a string, got {value!r}")
        if str(key).startswith("state-"):
            _check_color(path, f"variables.{key}", value)
        clean[str(key)] = value
    fields = {**data, "variables": clean}
    theme = Theme(**fields)
    try:
        theme.to_color_system().generate()
    except (ColorParseError, ValueError) as exc:
        raise ThemeFileError(path, None, f"Textual rejects the colours: {exc}") from None
    return theme


def load_theme_file(path: Path) -> Theme:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThemeFileError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise ThemeFileError(path, where, "not valid YAML") from None
    return theme_from_mapping(data, path)


def load_themes(directory: Path | None = None) -> dict[str, Theme]:
    """Every `*.yaml` theme in `directory` (default: the shipped themes), keyed by name."""
    folder = THEMES_DIR if directory is None else directory
    themes: dict[str, Theme] = {}
    for path in sorted(folder.glob("*.yaml")):
        theme = load_theme_file(path)
        if theme.name in themes:
            raise ThemeFileError(path, "name", f"theme {theme.name!r} is defined twice")
        themes[theme.name] = theme
    return themes


def register_themes(app: App[Any], directory: Path | None = None) -> dict[str, Theme]:
    """Register every theme with the app; returns them so the caller can pick one."""
    themes = load_themes(directory)
    for theme in themes.values():
        app.register_theme(theme)
    return themes


def resolve_theme_name(name: str | None, themes: dict[str, Theme]) -> str:
    """The theme to use for a `--theme`/config name; an unknown one lists the known names."""
    chosen = DEFAULT_THEME if name is None else name
    if chosen not in themes:
        known = ", ".join(sorted(themes))
        raise ValueError(f"unknown theme {chosen!r}; known themes: {known}")
    return chosen
