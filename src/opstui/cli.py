"""The `opstui` command: the dashboard by default, plus validate, schema, check and demo.

Every failure a person can cause (a bad config, a missing file, an unknown theme) is one line
on stderr and exit code 2, never a traceback. Textual is imported only by the commands that
draw, so `opstui check` stays fast and works without a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opstui import __version__

if TYPE_CHECKING:
    from opstui.config.models import Config

EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", "-c", metavar="FILE", default=default,
                        help="config file (default: $OPSTUI_CONFIG, then the user config dir)")


def _tui_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--theme", metavar="NAME", default=default,
                        help="opstui-dark, opstui-light, opstui-wall, opstui-bastion")
    parser.add_argument("--read-only", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="refuse every mutating action")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opstui",
        description="A terminal dashboard for production services, runbooks one key away.",
    )
    parser.add_argument("--version", action="version", version=f"opstui {__version__}")
    _common(parser, suppress=False)
    _tui_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser("validate", help="check a config file and exit (2 if it is bad)")
    _common(validate, suppress=True)

    sub.add_parser("schema", help="print the config's JSON Schema (for editors)")

    check = sub.add_parser(
        "check", help="poll every probe once; exit 0 ok, 1 warn, 2 crit/error/nodata"
    )
    _common(check, suppress=True)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")

    demo = sub.add_parser("demo", help="run the dashboard against a local stand-in service")
    _tui_options(demo, suppress=True)
    demo.add_argument("--port", type=int, default=0, help="stand-in port (default: any free)")
    return parser


def _fail(message: str) -> int:
    print(f"opstui: {message}", file=sys.stderr)
    return EXIT_USAGE


def _load(config_arg: str | None) -> Config:
    """Load the config, or raise ConfigError whose lines the caller prints."""
    from opstui.config.loader import load_config
    from opstui.config.paths import resolve_config_path

    return load_config(resolve_config_path(config_arg))


def _print_config_error(exc: Exception) -> int:
    lines = [str(e) for e in getattr(exc, "errors", None) or [exc]]
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_USAGE


def cmd_validate(config_arg: str | None) -> int:
    from opstui.config.loader import ConfigError
    from opstui.config.paths import resolve_config_path

    try:
        path = resolve_config_path(config_arg)
        config = _load(str(path))
    except ConfigError as exc:
        return _print_config_error(exc)
    print(f"{path}: ok ({len(config.probes)} probes, {len(config.views)} views)")
    return 0


def cmd_schema() -> int:
    from opstui.config.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_check(config_arg: str | None, as_json: bool) -> int:
    from opstui.config.loader import ConfigError
    from opstui.engine.check import check_once
    from opstui.report import check_json, check_table
    from opstui.states import rollup

    try:
        config = _load(config_arg)
    except ConfigError as exc:
        return _print_config_error(exc)
    snapshots = asyncio.run(check_once(config))
    print(check_json(config.title, snapshots) if as_json else check_table(config.title, snapshots))
    return rollup([s.state for s in snapshots]).exit_code if snapshots else 0


def cmd_tui(config: Config, theme: str | None, read_only: bool) -> int:
    from opstui.ui.run import run_tui

    return run_tui(config, theme=theme, read_only=read_only)


def cmd_dashboard(config_arg: str | None, theme: str | None, read_only: bool) -> int:
    from opstui.config.loader import ConfigError

    try:
        config = _load(config_arg)
    except ConfigError as exc:
        return _print_config_error(exc)
    return cmd_tui(config, theme, read_only)


def cmd_demo(theme: str | None, read_only: bool, port: int) -> int:
    from opstui.demo.launcher import run_demo

    return run_demo(theme, read_only, port)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            return cmd_validate(args.config)
        if args.command == "schema":
            return cmd_schema()
        if args.command == "check":
            return cmd_check(args.config, args.json)
        if args.command == "demo":
            return cmd_demo(args.theme, args.read_only, args.port)
        return cmd_dashboard(args.config, args.theme, args.read_only)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
