"""Themes: every shipped YAML loads, defines every state colour, and reaches CSS as $state-*."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import BUILTIN_THEMES
from textual.widgets import Static

from opstui.ui.themes import (
    DEFAULT_THEME,
    STATE_DEFAULTS,
    STATE_VARIABLES,
    THEMES_DIR,
    ThemeFileError,
    load_themes,
    register_themes,
    resolve_theme_name,
)

SHIPPED = {"opstui-dark", "opstui-light", "opstui-wall", "opstui-bastion"}


def test_every_shipped_theme_loads() -> None:
    themes = load_themes()
    assert set(themes) == SHIPPED
    assert DEFAULT_THEME in themes
    for name, theme in themes.items():
        assert theme.name == name
        assert theme.to_color_system().generate()["primary"]


def test_repo_themes_folder_is_the_package_one() -> None:
    repo_themes = Path(__file__).resolve().parents[2] / "themes"
    assert repo_themes.resolve() == THEMES_DIR.resolve()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_theme_defines_every_state_colour(name: str) -> None:
    theme = load_themes()[name]
    for variable in STATE_VARIABLES:
        assert variable in theme.variables, f"{name} lacks {variable}"
        Color.parse(theme.variables[variable])
    # crit and ok must differ, or a colour-only reader could not tell them apart
    assert theme.variables["state-crit"] != theme.variables["state-ok"]


def test_light_and_dark_flags() -> None:
    themes = load_themes()
    assert themes["opstui-light"].dark is False
    assert all(themes[n].dark for n in SHIPPED - {"opstui-light"})


def test_bastion_uses_only_the_16_ansi_colours() -> None:
    theme = load_themes()["opstui-bastion"]
    assert theme.ansi is True
    generated = theme.to_color_system().generate()
    colours = {**generated, **theme.variables}
    checked = 0
    for key, value in colours.items():
        head = value.split()[0]
        if head in {"transparent", "bold", "none", "underline", "reverse", "not", "b"}:
            continue
        color = Color.parse(head)
        assert color.ansi is not None, f"{key} = {value} is not an ANSI colour"
        checked += 1
    assert checked > 50


def _write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _valid_body() -> str:
    states = "\n".join(f"  {v}: '#112233'" for v in STATE_VARIABLES)
    return f"name: mine\nprimary: '#336699'\nvariables:\n{states}\n"


def test_a_valid_custom_folder_loads(tmp_path: Path) -> None:
    _write(tmp_path, _valid_body(), "mine.yaml")
    assert set(load_themes(tmp_path)) == {"mine"}


def test_missing_state_colour_names_file_and_key(tmp_path: Path) -> None:
    body = _valid_body().replace("  state-crit: '#112233'\n", "")
    path = _write(tmp_path, body)
    with pytest.raises(ThemeFileError) as info:
        load_themes(tmp_path)
    assert str(path) in str(info.value)
    assert "variables.state-crit" in str(info.value)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("primry: '#fff'\n", "primry"),
        ("primary: 'not-a-colour'\n", "primary"),
        ("dark: maybe\n", "dark"),
        ("text_alpha: high\n", "text_alpha"),
        ("name: ''\n", "name"),
    ],
)
def test_bad_keys_are_named(tmp_path: Path, body: str, key: str) -> None:
    text = _valid_body()
    if body.startswith("name"):
        text = text.replace("name: mine\n", body)
    elif body.startswith("primary"):
        text = text.replace("primary: '#336699'\n", body)
    else:
        text += body
    path = _write(tmp_path, text)
    with pytest.raises(ThemeFileError) as info:
        load_themes(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}:"), message


def test_bad_state_colour_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid_body().replace("state-ok: '#112233'", "state-ok: greenish"))
    with pytest.raises(ThemeFileError, match=r"variables\.state-ok") as info:
        load_themes(tmp_path)
    assert str(path) in str(info.value)


def test_broken_yaml_and_non_mapping(tmp_path: Path) -> None:
    _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ThemeFileError, match=r"bad\.yaml: line \d+: not valid YAML"):
        load_themes(tmp_path)
    _write(tmp_path, "- a list\n")
    with pytest.raises(ThemeFileError, match="must be a mapping"):
        load_themes(tmp_path)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, _valid_body(), "a.yaml")
    _write(tmp_path, _valid_body(), "b.yaml")
    with pytest.raises(ThemeFileError, match="defined twice"):
        load_themes(tmp_path)


def test_unknown_theme_name_lists_the_known_ones() -> None:
    themes = load_themes()
    assert resolve_theme_name(None, themes) == DEFAULT_THEME
    assert resolve_theme_name("opstui-wall", themes) == "opstui-wall"
    with pytest.raises(ValueError, match="unknown theme 'neon'") as info:
        resolve_theme_name("neon", themes)
    for name in SHIPPED:
        assert name in str(info.value)


def test_state_defaults_cover_every_state() -> None:
    assert set(STATE_DEFAULTS) == set(STATE_VARIABLES)


class _CssApp(App[None]):
    CSS = """
    #ok { color: $state-ok; }
    #crit { color: $state-crit; background: $state-nodata; }
    """

    def __init__(self, theme_name: str) -> None:
        super().__init__()
        self._wanted = theme_name

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(STATE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield Static("ok", id="ok")
        yield Static("crit", id="crit")

    def on_mount(self) -> None:
        register_themes(self)
        self.theme = self._wanted


@pytest.mark.parametrize("name", sorted(SHIPPED))
async def test_state_variables_reach_css(name: str) -> None:
    app = _CssApp(name)
    theme = load_themes()[name]
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        assert app.theme == name
        crit = app.query_one("#crit", Static)
        ok = app.query_one("#ok", Static)
        expected_crit = Color.parse(theme.variables["state-crit"])
        assert crit.styles.color.rgb == expected_crit.rgb
        assert crit.styles.color.ansi == expected_crit.ansi
        assert ok.styles.color.rgb == Color.parse(theme.variables["state-ok"]).rgb


async def test_css_parses_under_a_builtin_theme_thanks_to_defaults() -> None:
    builtin = next(iter(BUILTIN_THEMES))
    app = _CssApp(builtin)
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        crit = app.query_one("#crit", Static)
        assert crit.styles.color.ansi == Color.parse(STATE_DEFAULTS["state-crit"]).ansi


def test_ansi_theme_without_ansi_background_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _valid_body() + "ansi: true\n")
    with pytest.raises(ThemeFileError) as info:
        load_themes(tmp_path)
    assert f"{path}: variables.ansi-background" in str(info.value)
