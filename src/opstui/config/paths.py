"""Where the config file is: `--config`, then `$OPSTUI_CONFIG`, then the user config dir."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from opstui.config.loader import ConfigError

ENV_VAR = "OPSTUI_CONFIG"


def default_config_path() -> Path:
    """The per-user location, e.g. ~/.config/opstui/config.yaml on Linux."""
    return platformdirs.user_config_path("opstui") / "config.yaml"


def resolve_config_path(cli_value: str | None) -> Path:
    """The first of --config, $OPSTUI_CONFIG, the default path; ConfigError if it is missing.

    An explicit choice (option or variable) that does not exist is an error: falling back to
    another file would show the wrong system without saying so.
    """
    if cli_value:
        return _existing(Path(cli_value).expanduser(), "given with --config")
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return _existing(Path(from_env).expanduser(), f"named by ${ENV_VAR}")
    default = default_config_path()
    if default.is_file():
        return default
    raise ConfigError(
        default,
        f"no config file: looked for --config (not given), ${ENV_VAR} (not set) and this "
        f"default path; pass --config FILE or set {ENV_VAR}",
    )


def _existing(path: Path, how: str) -> Path:
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise ConfigError(path, f"no such file ({how})")
    if path.is_dir():
        raise ConfigError(path, f"is a directory, not a config file ({how})")
    return path
