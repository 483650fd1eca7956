"""The `opstui` command: the dashboard by default, plus validate, schema, check, demo,
runbooks and run.

Every failure a person can cause (a bad config, a missing file, an unknown theme) is one line
on stderr and exit code 2, never a traceback. Textual is imported only by the commands that
draw, so `opstui check` stays fast and works without a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opstui import __version__

if TYPE_CHECKING:
    from opstui.config.kinds.prometheus import ViaPrometheus
    from opstui.config.models import Config
    from opstui.ui.wall import WallOptions

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_REFUSED = 3
RUN_EPILOG = (
    "exit codes: 0 the step ran and succeeded, 1 it ran and failed, 2 usage or config error "
    "(unknown runbook/action, bad --param), 3 refused (read-only mode, no terminal and no "
    "--yes, confirmation declined or wrong target name)"
)


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", "-c", metavar="FILE", default=default,
                        help="config file (default: $OPSTUI_CONFIG, then the user config dir)")


def _tui_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--theme", metavar="NAME", default=default,
                        help="opstui-dark, opstui-light, opstui-wall, opstui-bastion (default: "
                        "the config's; opstui-bastion on a 16-colour terminal such as "
                        "TERM=xterm; opstui-wall with --wall)")
    parser.add_argument("--read-only", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="refuse every mutating action")
    parser.add_argument("--wall", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="wall screen: read-only (no runbooks), no footer or focus, large "
                        "state words, opstui-wall theme unless --theme, views rotating")
    parser.add_argument("--rotate", metavar="DURATION", default=default,
                        help=f"with --wall: {WALL_ROTATION_HELP} (default 30s, e.g. 1m)")


def _via_option(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    parser.add_argument("--via-prometheus", metavar="URL",
                        default=argparse.SUPPRESS if suppress else None,
                        help="draw the panels from `opstui export` series in this Prometheus "
                        "(or Thanos/Mimir) instead of polling the backends; runbook actions "
                        "still run directly (default: the config's via_prometheus)")


WALL_ROTATION_HELP = (
    "seconds between views, 0 never; while any probe is CRIT only the views showing a CRIT "
    "probe rotate, so a single one holds the screen"
)


def _wall_options(wall: bool, rotate: str | None) -> WallOptions | None:
    """--wall/--rotate as options for the TUI; ValueError with a one-line reason."""
    from opstui.config.types import parse_duration
    from opstui.ui.wall import DEFAULT_ROTATE, WallOptions

    if not wall:
        if rotate is not None:
            raise ValueError("--rotate only applies with --wall")
        return None
    seconds = DEFAULT_ROTATE if rotate is None else parse_duration(rotate)
    if 0 < seconds < 1:
        raise ValueError(f"--rotate {rotate}: use 0 (never) or at least 1s")
    return WallOptions(rotate=seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opstui",
        description="A terminal dashboard for production services, runbooks one key away.",
    )
    parser.add_argument("--version", action="version", version=f"opstui {__version__}")
    _common(parser, suppress=False)
    _tui_options(parser, suppress=False)
    _via_option(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser("validate", help="check a config file and exit (2 if it is bad)")
    _common(validate, suppress=True)

    sub.add_parser("schema", help="print the config's JSON Schema (for editors)")

    check = sub.add_parser(
        "check", help="poll every probe once; exit 0 ok, 1 warn, 2 crit/error/nodata"
    )
    _common(check, suppress=True)
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")

    runbooks = sub.add_parser(
        "runbooks", help="list runbooks, their diagnose steps and actions with classification"
    )
    _common(runbooks, suppress=True)
    runbooks.add_argument("--json", action="store_true", help="print JSON instead of text")

    run = sub.add_parser(
        "run",
        help="run one runbook action (or diagnose step N) through the runner and audit log",
        description="Prepare, classify and preview one action; a mutation asks on a terminal, "
        "needs --yes without one, and is always refused in read-only mode.",
        epilog=RUN_EPILOG,
    )
    _common(run, suppress=True)
    run.add_argument("runbook", metavar="RUNBOOK")
    run.add_argument("action", metavar="ACTION", help="action id, or diagnose:N (1-based)")
    run.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                     help="a param value (repeatable)")
    run.add_argument("--yes", action="store_true",
                     help="confirm a mutation without asking (needed without a terminal)")
    run.add_argument("--confirm-target", metavar="NAME", default=None,
                     help="with --yes, a danger: high action's target name, typed out")
    run.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                     help="refuse every mutating action")

    export = sub.add_parser(
        "export", help="poll every probe without a UI and serve Prometheus metrics"
    )
    _common(export, suppress=True)
    export.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9464",
                        help="address for /metrics and /healthz (default 127.0.0.1:9464; "
                        "port 0 picks a free one)")

    serve = sub.add_parser(
        "serve", help="serve the dashboard to web browsers (textual-serve), e.g. for wall TVs",
        description="Every browser runs its own opstui. Read-only, on loopback only, unless "
        "the config's serve: section names tokens or users (see docs/config.md).",
    )
    _common(serve, suppress=True)
    _tui_options(serve, suppress=True)
    _via_option(serve, suppress=True)
    serve.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:8000",
                       help="address of the web page (default 127.0.0.1:8000; port 0 picks a "
                       "free one)")
    serve.add_argument("--public-url", metavar="URL", default=None,
                       help="the URL browsers use, when it is not http://HOST:PORT (a proxy)")

    demo = sub.add_parser("demo", help="run the dashboard against a local stand-in service")
    _tui_options(demo, suppress=True)
    demo.add_argument("--port", type=int, default=0, help="stand-in port (default: any free)")
    return parser


def _fail(message: str) -> int:
    print(f"opstui: {message}", file=sys.stderr)
    return EXIT_USAGE


def _load(config_arg: str | None, *, defer_secrets: bool = False) -> Config:
    """Load the config, or raise ConfigError whose lines the caller prints."""
    from opstui.actions.static import load_checked
    from opstui.config.paths import resolve_config_path
    from opstui.redaction import redactor_for

    config = load_checked(resolve_config_path(config_arg), defer_secrets=defer_secrets)
    redactor_for(config)  # built now, so even a crash report knows this config's secrets
    return config


def load_for_view(
    config_arg: str | None, via_url: str | None
) -> tuple[Config, ViaPrometheus | None]:
    """The config and the Prometheus to read it from, if any. A view via Prometheus polls
    nothing, so it starts without the backends' secrets (only an action that needs one fails,
    saying which); a direct view needs every one, as before. ConfigError or ValueError."""
    config = _load(config_arg, defer_secrets=True)
    via = via_prometheus(config, via_url)
    if via is None and config.deferred_secrets:
        config = _load(config_arg)  # raises the usual one line per missing secret
    return config, via


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
    from opstui.redaction import redactor_for

    snapshots = asyncio.run(check_once(config))
    text = check_json(config.title, snapshots) if as_json else check_table(config.title, snapshots)
    print(redactor_for(config).scrub(text))  # the engine scrubbed; this is the sink's guard
    return rollup([s.state for s in snapshots]).exit_code if snapshots else 0


def cmd_tui(
    config: Config,
    theme: str | None,
    read_only: bool,
    wall: WallOptions | None = None,
    via: ViaPrometheus | None = None,
) -> int:
    from opstui.ui.run import run_tui

    return run_tui(config, theme=theme, read_only=read_only, wall=wall, via=via)


def via_prometheus(config: Config, url: str | None) -> ViaPrometheus | None:
    """--via-prometheus URL over the config's via_prometheus (keeping its match, headers and
    timeout); ValueError with a one-line reason for a bad URL."""
    from pydantic import ValidationError

    from opstui.config.kinds.prometheus import ViaPrometheus

    if url is None:
        return config.via_prometheus
    base = config.via_prometheus.model_dump() if config.via_prometheus is not None else {}
    try:
        return ViaPrometheus.model_validate({**base, "url": url})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"--via-prometheus {url!r}: {reason}") from None


def cmd_dashboard(
    config_arg: str | None,
    theme: str | None,
    read_only: bool,
    wall: WallOptions | None = None,
    via_url: str | None = None,
) -> int:
    from opstui.config.loader import ConfigError

    try:
        config, via = load_for_view(config_arg, via_url)
    except ConfigError as exc:
        return _print_config_error(exc)
    except ValueError as exc:
        return _fail(str(exc))
    return cmd_tui(config, theme, read_only, wall, via)


def cmd_demo(
    theme: str | None, read_only: bool, port: int, wall: WallOptions | None = None
) -> int:
    from opstui.demo.launcher import run_demo
    from opstui.ui.run import wall_mode

    with wall_mode(wall):
        return run_demo(theme, read_only, port)


def _runner_parts(config: Config, read_only: bool) -> tuple[Any, Any, Any, Any]:
    """A pool, a polling probe reader, the audit log and a Runner for one command."""
    from opstui.actions.audit import AuditLog
    from opstui.actions.probe_readers import PollingProbeReader
    from opstui.actions.runner import Runner
    from opstui.sources.registry import ClientPool

    pool = ClientPool()
    probes = PollingProbeReader(config, pool)
    audit = AuditLog(AuditLog.default_path(config))
    runner = Runner(config, pool=pool, probes=probes, audit=audit, read_only=read_only)
    return pool, probes, audit, runner


def _classification_words(verdict: Any) -> str:
    if verdict.mutating and "assumed mutating" in verdict.reason:
        return f"mutating? ({verdict.reason})"
    words = f"{verdict.classification.value} ({verdict.reason})"
    return f"{words}; overruled: {verdict.overruled}" if verdict.overruled else words


async def _list_runbooks(config: Config) -> list[dict[str, Any]]:
    from opstui.actions.runner import ActionError

    pool, probes, _, runner = _runner_parts(config, read_only=True)
    listed: list[dict[str, Any]] = []
    primed = False

    async def prepare(runbook_id: str, action_id: str) -> Any:
        """Param defaults may read probes: poll them once, only when a default needs it."""
        nonlocal primed
        try:
            return await runner.prepare_action(runbook_id, action_id)
        except ActionError:
            if primed:
                raise
            primed = True
            await probes.prime()
            return await runner.prepare_action(runbook_id, action_id)

    try:
        for runbook in config.runbooks:
            entry: dict[str, Any] = {
                "id": runbook.id,
                "title": runbook.title,
                "severity": runbook.severity,
                "probes": list(runbook.probes),
                "diagnose": [],
                "actions": [],
            }
            for index, step in enumerate(runbook.diagnose):
                item: dict[str, Any] = {"index": index + 1, "title": step.title, "kind": step.kind}
                try:
                    prepared = await runner.prepare_diagnose(runbook.id, index)
                    item["verdict"] = await runner.classify(prepared)
                    item["equivalent"] = prepared.equivalent
                except ActionError as exc:
                    item["problem"] = str(exc)
                entry["diagnose"].append(item)
            for action in runbook.actions:
                item = {
                    "id": action.id,
                    "key": action.key,
                    "title": action.title,
                    "kind": action.kind,
                    "danger": action.danger,
                }
                try:
                    prepared = await prepare(runbook.id, action.id)
                    item["verdict"] = await runner.classify(prepared)
                    item["equivalent"] = prepared.equivalent
                except ActionError as exc:
                    item["problem"] = str(exc)
                entry["actions"].append(item)
            listed.append(entry)
    finally:
        await runner.aclose()
        await pool.aclose()
    return listed


def _item_json(item: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k != "verdict"}
    verdict = item.get("verdict")
    if verdict is not None:
        out["classification"] = verdict.classification.value
        out["reason"] = verdict.reason
        out["overruled"] = verdict.overruled
        out["assumed"] = "assumed mutating" in verdict.reason
    else:
        out["classification"] = "mutating"
        out["reason"] = f"cannot prepare ({item.get('problem')}): assumed mutating"
        out["assumed"] = True
    return out


def _item_words(item: dict[str, Any]) -> str:
    verdict = item.get("verdict")
    if verdict is None:
        return f"mutating? (cannot prepare without params: {item.get('problem')})"
    if item.get("kind") == "sql" and "assumed mutating" not in verdict.reason:
        words = f"{verdict.classification.value}: {verdict.reason}"  # the statement's own why
        return f"{words} (overruled: the config did not declare it)" if verdict.overruled else words
    return _classification_words(verdict)


def cmd_runbooks(config_arg: str | None, as_json: bool) -> int:
    from opstui.config.loader import ConfigError

    try:
        config = _load(config_arg)
    except ConfigError as exc:
        return _print_config_error(exc)
    from opstui.redaction import redactor_for

    scrub = redactor_for(config).scrub
    listed = asyncio.run(_list_runbooks(config))
    if as_json:
        for entry in listed:
            entry["diagnose"] = [_item_json(i) for i in entry["diagnose"]]
            entry["actions"] = [_item_json(i) for i in entry["actions"]]
        print(scrub(json.dumps(listed, indent=2)))
        return 0
    if not listed:
        print("no runbooks in the config")
    for entry in listed:
        probes = f"  [{', '.join(entry['probes'])}]" if entry["probes"] else ""
        print(f"{entry['id']}: {entry['title']} ({entry['severity']}){probes}")
        for item in entry["diagnose"]:
            print(scrub(f"  diagnose {item['index']}  {item['title']}  [{item['kind']}]  "
                        f"{_item_words(item)}"))
        for item in entry["actions"]:
            key = item["key"] or "-"
            danger = f"  danger {item['danger']}" if item["danger"] != "low" else ""
            print(scrub(f"  action {key} {item['id']}  {item['title']}  [{item['kind']}]  "
                        f"{_item_words(item)}{danger}"))
    return 0


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"bad --param {pair!r}: expected NAME=VALUE")
        params[name.strip()] = value
    return params


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _ask(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    return sys.stdin.readline().strip()


async def _run_step(
    config: Config,
    runbook_id: str,
    action_id: str,
    params: dict[str, str],
    *,
    yes: bool,
    read_only: bool,
    confirm_target: str | None,
) -> int:
    import signal

    from opstui.actions.base import Progress
    from opstui.actions.runner import ActionError, Refused

    pool, probes, _, runner = _runner_parts(config, read_only)
    progress = Progress()
    loop = asyncio.get_running_loop()

    def _say(text: str) -> None:  # everything `run` prints goes through the redactor
        print(runner.redactor.scrub(text), file=sys.stderr, flush=True)

    def _out(line: str) -> None:
        print(runner.redactor.scrub(line), flush=True)

    try:
        if "probes." in json.dumps(
            [r.model_dump(mode="json") for r in config.runbooks if r.id == runbook_id]
        ):
            await probes.prime()  # templates read probes: give them readings
        if action_id.startswith("diagnose:"):
            try:
                index = int(action_id.partition(":")[2]) - 1
            except ValueError:
                _say(f"opstui: bad step {action_id!r}: expected diagnose:N")
                return EXIT_USAGE
            if params:
                _say("opstui: a diagnose step takes no params")
                return EXIT_USAGE
            step = await runner.prepare_diagnose(runbook_id, index, attempt=True)
        else:
            step = await runner.prepare_action(runbook_id, action_id, params, attempt=True)
        verdict = await runner.classify(step)
        token = None
        if verdict.mutating:
            verb = (step.verb or "run").lower()
            lines = [
                f"environment: {step.environment or '-'}",
                f"target:      {step.target}",
                f"command:     {step.equivalent}",
                f"mutating:    {_classification_words(verdict)}",
            ]
            lines += [f"param:       {k} = {v}" for k, v in step.params.items()]
            if runner.read_only:
                _say("\n".join(lines))
                await runner.run(step)  # the gate refuses it (Refused below), and says why
                return EXIT_REFUSED
            preview = await runner.preview(step)
            if preview is not None:
                lines += [f"preview:     {line}" for line in preview.lines]
                if preview.error:
                    lines.append(f"preview:     ({preview.error})")
            _say("\n".join(lines))
            typed: str | None = confirm_target
            if yes:
                via = "--yes"
                if step.danger == "high" and confirm_target is None:
                    runner.refused(step, via=via, why="danger high without --confirm-target")
                    _say(f"opstui: refused: danger high: add --confirm-target {step.target!r}")
                    return EXIT_REFUSED
            elif sys.stdin.isatty():
                via = "prompt"
                try:
                    if step.danger == "high":
                        typed = _ask(f"Type the target's name ({step.target}) to {verb}: ")
                    elif _ask(f"Type yes to {verb}: ").lower() != "yes":
                        runner.cancelled(step, via=via, why="the prompt was not answered yes")
                        _say("cancelled: nothing was run")
                        return EXIT_REFUSED
                except KeyboardInterrupt:
                    runner.cancelled(step, via=via, why="Ctrl+C at the prompt")
                    _say("\ncancelled: nothing was run")
                    return 130
            else:
                runner.refused(step, via=None, why="no terminal to confirm and no --yes")
                _say("opstui: refused: a mutation needs a terminal to confirm, or --yes")
                return EXIT_REFUSED
            token = runner.confirm(step, via=via, typed_target=typed)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, progress.cancel.set)
        outcome = await runner.run(step, token=token, output=_out, progress=progress)
        _say(f"{step.title}: {'ok' if outcome.ok else 'FAILED'}: {outcome.summary}")
        if outcome.data == {"manual": True}:
            return 0
        if not outcome.ok:
            return EXIT_FAILED
        if verdict.mutating:
            then = await runner.run_then(step, output=_out, progress=progress)
            if then is not None:
                _say(f"then: {'ok' if then.ok else 'FAILED'}: {then.summary}")
                return 0 if then.ok else EXIT_FAILED
        return 0
    except Refused as exc:
        _say(f"opstui: refused: {exc}")
        return EXIT_REFUSED
    except ActionError as exc:
        _say(f"opstui: {exc}")
        return EXIT_USAGE
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        await runner.aclose()
        await pool.aclose()


def cmd_run(
    config_arg: str | None,
    runbook_id: str,
    action_id: str,
    param_pairs: Sequence[str],
    *,
    yes: bool,
    read_only: bool,
    confirm_target: str | None,
) -> int:
    from opstui.actions.audit import AuditLog, AuditUnavailable, report_unfinished
    from opstui.config.loader import ConfigError

    try:
        params = _parse_params(param_pairs)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        config = _load(config_arg)
    except ConfigError as exc:
        return _print_config_error(exc)
    audit = AuditLog(AuditLog.default_path(config))
    if not (read_only or config.read_only):
        try:  # before anything runs: one line and exit 2, not a traceback after a confirm
            audit.check_writable()
        except AuditUnavailable as exc:
            return _fail(str(exc))
    try:
        unfinished = report_unfinished(audit)
    except OSError as exc:
        unfinished = [f"audit: cannot read {audit.path}: {exc.strerror or exc}"]
    for line in unfinished:
        _say(line)
    return asyncio.run(
        _run_step(
            config,
            runbook_id,
            action_id,
            params,
            yes=yes,
            read_only=read_only,
            confirm_target=confirm_target,
        )
    )


def cmd_export(config_arg: str | None, listen: str) -> int:
    from opstui.config.loader import ConfigError
    from opstui.export.server import ExportError, parse_listen, serve

    try:
        host, port = parse_listen(listen)
    except ExportError as exc:
        return _fail(str(exc))
    try:
        config = _load(config_arg)
    except ConfigError as exc:
        return _print_config_error(exc)
    try:
        return asyncio.run(serve(config, host, port))
    except ExportError as exc:
        return _fail(str(exc))


def viewer_flags(
    theme: str | None, read_only: bool, wall: bool, rotate: str | None, via: str | None
) -> list[str]:
    """The dashboard options `opstui serve` passes on to each browser's own opstui."""
    flags: list[str] = []
    if theme is not None:
        flags += ["--theme", theme]
    if read_only:
        flags.append("--read-only")
    if wall:
        flags.append("--wall")
    if rotate is not None:
        flags += ["--rotate", rotate]
    if via is not None:
        flags += ["--via-prometheus", via]
    return flags


def cmd_serve(config_arg: str | None, listen: str, public_url: str | None,
              flags: Sequence[str], via_url: str | None = None) -> int:
    """Check the config here (a bad one exits 2 before anything listens), then serve a page
    whose every browser runs its own `opstui --config <absolute path> ...`: read-only unless
    the config's serve: section names who may sign in."""
    from opstui.config.loader import ConfigError
    from opstui.config.paths import resolve_config_path
    from opstui.export.server import ExportError, parse_listen
    from opstui.serve import ServeError, gate_from, serve_web

    try:
        host, port = parse_listen(listen)
    except ExportError as exc:
        return _fail(str(exc))
    try:
        path = resolve_config_path(config_arg)
        config, _ = load_for_view(str(path), via_url)
    except ConfigError as exc:
        return _print_config_error(exc)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        gate = gate_from(config.serve)
    except ServeError as exc:
        return _fail(str(exc))
    if gate is None and "--read-only" not in flags:
        flags = [*flags, "--read-only"]
    command = [sys.executable, "-m", "opstui", "--config", str(path.resolve()), *flags]
    try:
        return serve_web(
            command, host, port, public_url=public_url, title=config.title, gate=gate
        )
    except ServeError as exc:
        return _fail(str(exc))


def skip_httpx_cli() -> None:
    """httpx's `__init__` imports its command-line client (click, rich, pygments: 50 ms, a
    sixth of `opstui check`) whenever click and rich are installed, as they are beside
    Textual; opstui never runs it. A None in sys.modules makes that one import fail and httpx
    falls back to its stub `main`, as it does where click is missing. httpx itself is
    untouched and imported, as before, only where an HTTP origin or request needs it."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def entry() -> int:
    """The `opstui` command (console script and `python -m opstui`): main(), then everything
    it built is moved out of the garbage collector's reach, so the interpreter's last full
    collections at exit skip it (they took 0.15-0.2 s after `opstui check`). Not in main():
    tests call main() many times in one process, where frozen garbage would never be freed."""
    code = main()
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    skip_httpx_cli()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "validate":
            return cmd_validate(args.config)
        if args.command == "schema":
            return cmd_schema()
        if args.command == "check":
            return cmd_check(args.config, args.json)
        if args.command == "runbooks":
            return cmd_runbooks(args.config, args.json)
        if args.command == "run":
            return cmd_run(
                args.config,
                args.runbook,
                args.action,
                args.param,
                yes=args.yes,
                read_only=args.read_only,
                confirm_target=args.confirm_target,
            )
        if args.command == "export":
            return cmd_export(args.config, args.listen)
        try:
            wall = _wall_options(args.wall, args.rotate)
        except ValueError as exc:
            return _fail(str(exc))
        if args.command == "demo":
            return cmd_demo(args.theme, args.read_only, args.port, wall)
        if args.command == "serve":
            flags = viewer_flags(
                args.theme, args.read_only, args.wall, args.rotate, args.via_prometheus
            )
            return cmd_serve(
                args.config, args.listen, args.public_url, flags, args.via_prometheus
            )
        return cmd_dashboard(args.config, args.theme, args.read_only, wall, args.via_prometheus)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, never a traceback a secret could ride on
        return _crash(exc)


EXIT_INTERNAL = 70
"""EX_SOFTWARE: opstui itself failed (a bug), not the config, a backend or the gate."""


def _crash(exc: BaseException) -> int:
    """Print one scrubbed line for an unexpected exception and keep its scrubbed traceback
    in a file only the user can read, for the bug report."""
    import os
    import traceback

    from platformdirs import user_log_path

    from opstui.redaction import scrub_with_every_redactor
    from opstui.sources.errors import one_line

    report = scrub_with_every_redactor("".join(traceback.format_exception(exc)))
    where = ""
    with contextlib.suppress(OSError):
        folder = user_log_path("opstui", ensure_exists=True)
        path = folder / f"crash-{os.getpid()}.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(report)
        where = f" (traceback in {path})"
    text = "".join(c if c.isprintable() else " " for c in str(exc))  # no terminal escapes
    message = one_line(scrub_with_every_redactor(text) or type(exc).__name__, 200)
    print(f"opstui: internal error: {type(exc).__name__}: {message}{where}", file=sys.stderr)
    return EXIT_INTERNAL
