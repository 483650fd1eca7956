"""`opstui demo`: start the demo's backends, write its effective config, run the dashboard.

Backends, all on loopback and all stopped on every exit path (quit, Ctrl-C, SIGTERM,
SIGHUP, a failed start): a Redis (redis-server child or the in-process stand-in), moto's ECS
when the `demo` extra is installed, and the stand-in service whose world ticks in its thread.
demo.yaml is the template: without moto its ECS connection, probe and view cells are
dropped from the parsed YAML before the loader validates the result, so the demo works with
and without the extra.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from opstui.demo.aws import DemoEcs, apply_env, demo_aws_env, moto_available, restore_env
from opstui.demo.redis_backend import DemoRedis, start_redis
from opstui.demo.runner import demo_runner
from opstui.demo.server import DemoServer

TEMPLATE = Path(__file__).with_name("demo.yaml")
SEED = 7
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def effective_config_text(template: str, *, with_ecs: bool) -> str:
    """demo.yaml as YAML text, without its AWS connections and ECS probes when asked."""
    data = yaml.safe_load(template)
    if with_ecs:
        return yaml.safe_dump(data, sort_keys=False)
    connections: dict[str, Any] = data.get("connections") or {}
    dropped = {name for name, c in connections.items() if c.get("kind") == "aws"}
    data["connections"] = {n: c for n, c in connections.items() if n not in dropped}
    removed = {
        p["id"] for p in data.get("probes") or [] if p.get("kind") == "ecs"
        or p.get("connection") in dropped
    }
    data["probes"] = [p for p in data.get("probes") or [] if p["id"] not in removed]
    views = []
    for view in data.get("views") or []:
        rows = [[pid for pid in row if pid not in removed] for row in view.get("rows") or []]
        rows = [row for row in rows if row]
        if rows:
            views.append({**view, "rows": rows})
    data["views"] = views
    runbooks = data.get("runbooks") or []
    data["runbooks"] = [_without(runbook, dropped, removed) for runbook in runbooks]
    return yaml.safe_dump(data, sort_keys=False)


def _without(runbook: dict[str, Any], connections: set[str], probes: set[str]) -> dict[str, Any]:
    """A runbook without the steps that need a dropped connection or watch a dropped probe."""

    def keeps(step: dict[str, Any]) -> bool:
        then = step.get("then") or {}
        return (
            step.get("connection") not in connections
            and step.get("watch") not in probes
            and then.get("watch") not in probes
        )

    return {
        **runbook,
        "probes": [p for p in runbook.get("probes") or [] if p not in probes],
        "diagnose": [s for s in runbook.get("diagnose") or [] if keeps(s)],
        "actions": [a for a in runbook.get("actions") or [] if keeps(a)],
    }


@dataclass
class DemoBackends:
    """Everything the demo started; `stop()` ends it all (safe to call twice)."""

    workdir: Path
    redis: DemoRedis | None = None
    ecs: DemoEcs | None = None
    server: DemoServer | None = None
    config_path: Path | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The variables the effective config refers to (and the dummy AWS ones)."""
        env: dict[str, str] = {}
        if self.server is not None:
            env["OPSTUI_DEMO_URL"] = self.server.url
        if self.redis is not None:
            env["OPSTUI_DEMO_REDIS_URL"] = self.redis.url
        if self.ecs is not None:
            env["OPSTUI_DEMO_AWS_URL"] = self.ecs.url
            env.update(demo_aws_env(self.workdir))
        return env

    def stop(self) -> None:
        steps: list[Callable[[], None]] = []
        if self.server is not None:
            steps.append(self.server.stop)
        if self.ecs is not None:
            steps.append(self.ecs.stop)
        if self.redis is not None:
            steps.append(self.redis.stop)
        self.server = self.ecs = self.redis = None
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_backends(
    port: int = 0,
    *,
    seed: int = SEED,
    redis_binary: str | None = None,
    find_redis: bool = True,
) -> DemoBackends:
    """Start Redis, ECS (if moto is installed), the world and the stand-in service, and
    write the effective config; raise RuntimeError/OSError (everything stopped) on failure."""
    backends = DemoBackends(Path(tempfile.mkdtemp(prefix="opstui-demo-")))
    try:
        backends.redis = start_redis(backends.workdir, redis_binary, find=find_redis)
        backends.notices.append(f"demo: {backends.redis.description}")
        if moto_available():
            backends.ecs = DemoEcs()
            backends.ecs.start()
            backends.notices.append(f"demo: {backends.ecs.description}")
        else:
            backends.notices.append(
                "demo: no ECS panel (moto is not installed: pip install 'opstui[demo]')"
            )
        runner = demo_runner(
            seed,
            redis_url=backends.redis.url,
            ecs_tasks=backends.ecs.desired_count if backends.ecs is not None else None,
        )
        backends.server = DemoServer(port=port, runner=runner)
        backends.server.start()
        text = effective_config_text(TEMPLATE.read_text("utf-8"), with_ecs=backends.ecs is not None)
        backends.config_path = backends.workdir / "demo.yaml"
        backends.config_path.write_text(text, "utf-8")
    except BaseException:
        backends.stop()
        raise
    return backends


@contextlib.contextmanager
def _interrupt_on_hangup() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` (ours, the TUI's) runs."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(theme: str | None, read_only: bool, port: int) -> int:
    """The `opstui demo` command: 0 on a clean exit, 2 if the demo could not start."""
    from opstui.config.loader import ConfigError, load_config
    from opstui.ui.run import run_tui

    with _interrupt_on_hangup():
        backends: DemoBackends | None = None
        saved: dict[str, str | None] = {}
        try:
            try:
                backends = start_backends(port)
            except (OSError, RuntimeError) as exc:
                print(f"opstui: demo: {exc}", file=sys.stderr)
                return EXIT_USAGE
            for notice in backends.notices:
                print(notice, file=sys.stderr)
            saved = apply_env(backends.env)
            assert backends.config_path is not None
            try:
                config = load_config(backends.config_path)
            except ConfigError as exc:
                for line in exc.lines():
                    print(line, file=sys.stderr)
                return EXIT_USAGE
            return run_tui(config, theme=theme, read_only=read_only)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        finally:
            if backends is not None:
                backends.stop()
            restore_env(saved)


def environment_for(backends: DemoBackends) -> dict[str, str]:
    """This process's environment plus the demo's: for `opstui check` in a child process."""
    return {**os.environ, **backends.env}
