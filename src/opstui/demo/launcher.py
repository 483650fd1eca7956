"""`opstui demo`: start the demo's backends, write its effective config, run the dashboard.

Backends, all on loopback and all stopped on every exit path (quit, Ctrl-C, SIGTERM,
SIGHUP, a failed start): a Redis (redis-server child or the in-process stand-in), moto's ECS
in a child process when the `demo` extra is installed, and the stand-in service whose world
ticks in its thread. They start beside the dashboard (plan_backends, then start()): its
panels say `… waiting` until Redis and the stand-in answer, and it polls only then.
demo.yaml is the template: without moto its ECS connection, probe and view cells are
dropped from the parsed YAML before the loader validates the result, so the demo works with
and without the extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml

from opstui.demo.aws import DemoEcs, apply_env, demo_aws_env, moto_available, restore_env
from opstui.demo.redis_backend import DemoRedis, planned_redis
from opstui.demo.runner import WorldRunner, demo_runner

if TYPE_CHECKING:
    from opstui.demo.server import DemoServer

TEMPLATE = Path(__file__).with_name("demo.yaml")
SEED = 7
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def effective_config_text(template: str, *, with_ecs: bool) -> str:
    """demo.yaml as YAML text, without its AWS connections and ECS probes when asked. With
    them it is the template itself (parsing and printing it again in pure-Python YAML cost
    a tenth of a second of the demo's start, for the same config)."""
    if with_ecs:
        return template
    data = yaml.load(template, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
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


READY_TIMEOUT = 30.0
"""Longest wait for the world's servers (moto's child takes the longest, about a second)."""


@dataclass
class DemoBackends:
    """Everything the demo started, or will start; `stop()` ends it all (safe to call twice).

    Made in two steps, so the dashboard need not wait for the servers: `plan_backends` takes
    the ports (the stand-in's socket is bound then, so a taken port fails at once) and writes
    the effective config; `start()` starts the servers in a thread of their own while the
    dashboard starts, `until_ready()` waits for them (the dashboard polls only after it).
    """

    workdir: Path
    redis: DemoRedis | None = None
    ecs: DemoEcs | None = None
    server: DemoServer | None = None
    config_path: Path | None = None
    notices: list[str] = field(default_factory=list)
    http_url: str = ""
    error: str = ""
    """Why Redis or the stand-in did not start ("" while starting and once they did)."""
    ecs_error: str = ""
    """Why moto did not start (its panel says ERR; the demo says why when it ends)."""
    _runner: WorldRunner | None = None
    _sock: socket.socket | None = None
    _starter: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _ecs_ready: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False
    _waiters: list[Callable[[], None]] = field(default_factory=list)
    _waiters_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def env(self) -> dict[str, str]:
        """The variables the effective config refers to (and the dummy AWS ones)."""
        env: dict[str, str] = {}
        if self.http_url:
            env["OPSTUI_DEMO_URL"] = self.http_url
        if self.redis is not None:
            env["OPSTUI_DEMO_REDIS_URL"] = self.redis.url
        if self.ecs is not None:
            env["OPSTUI_DEMO_AWS_URL"] = self.ecs.url
            env.update(demo_aws_env(self.workdir))
        return env

    def start(self) -> None:
        """Start the servers: child processes spawned here (call it on the thread that
        outlives them: their death signal follows the thread that forked them), the rest in
        a thread of its own; `until_ready()`/`wait_ready()` tell when they all answer."""
        if self._starter is None:
            if self.ecs is not None:
                try:
                    self.ecs.spawn()  # the slowest to answer (about a second): first
                except Exception as exc:
                    self.ecs_error = f"moto could not start: {_one_line(exc)}"
            if self.redis is not None:
                try:
                    self.redis.spawn()
                except Exception as exc:
                    self.error = _one_line(exc)
            self._starter = threading.Thread(
                target=self._start_all, name="opstui-demo-start", daemon=True
            )
            self._starter.start()

    def _start_all(self) -> None:
        try:
            if self.error:
                raise RuntimeError(self.error)
            if self.redis is not None:
                self._unless_stopping(self.redis.start)
            self._unless_stopping(self._start_server)
        except Exception as exc:  # reported by until_ready/wait_ready
            self.error = _one_line(exc)
        finally:
            with self._waiters_lock:
                self._ready.set()
                waiters, self._waiters = self._waiters, []
            for wake in waiters:
                wake()
        if self.ecs is not None and not self.error and not self.ecs_error:
            # Not waited for by until_ready: moto's socket listens already, so an early ECS
            # poll waits for the child (within its timeout) instead of being refused.
            try:
                self.ecs.wait_ready()
            except RuntimeError as exc:
                self.ecs_error = str(exc)
        self._ecs_ready.set()

    def _unless_stopping(self, step: Callable[[], None]) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError("stopped while starting")
            step()

    def _start_server(self) -> None:
        from opstui.demo.server import DemoServer

        assert self._runner is not None and self._sock is not None
        self.server = DemoServer(runner=self._runner, sock=self._sock)
        self._sock = None  # the server owns it now
        self.server.start()

    def wait_ready(self, timeout: float = READY_TIMEOUT, *, ecs: bool = True) -> None:
        """Block until the servers answer (moto's too, unless `ecs` is False); RuntimeError
        if one failed or they took too long."""
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the demo's servers did not start within {timeout:g} s")
        if self.error:
            raise RuntimeError(self.error)
        if ecs and not self._ecs_ready.wait(timeout):
            raise RuntimeError(f"moto did not start within {timeout:g} s")
        if ecs and self.ecs_error:
            raise RuntimeError(self.ecs_error)

    async def until_ready(self) -> None:
        """wait_ready(ecs=False) for an event loop (the dashboard's), which keeps drawing
        meanwhile: Redis and the stand-in service answer, polls may start."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(ready.set)

        with self._waiters_lock:
            if self._ready.is_set():
                ready.set()
            else:
                self._waiters.append(wake)
        async with asyncio.timeout(READY_TIMEOUT):
            await ready.wait()
        try:
            self.wait_ready(0, ecs=False)
        except RuntimeError as exc:  # the dashboard ends with it as its failure
            raise RuntimeError(f"demo: {exc}") from None

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        if self.ecs is not None:
            self.ecs.stop()  # a start still waiting for moto's child returns at once
        starter = self._starter
        if starter is not None:
            starter.join(timeout=READY_TIMEOUT)
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
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def plan_backends(
    port: int = 0,
    *,
    seed: int = SEED,
    redis_binary: str | None = None,
    find_redis: bool = True,
) -> DemoBackends:
    """Choose the servers and their ports, bind the stand-in's, build the world and write the
    effective config; start nothing. RuntimeError/OSError (everything undone) on failure."""
    backends = DemoBackends(Path(tempfile.mkdtemp(prefix="opstui-demo-")))
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        backends._sock = sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        backends.http_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        backends.redis = planned_redis(backends.workdir, redis_binary, find=find_redis)
        backends.notices.append(f"demo: {backends.redis.description}")
        if moto_available():
            backends.ecs = DemoEcs()
            backends.notices.append(f"demo: {backends.ecs.description}")
        else:
            backends.notices.append(
                "demo: no ECS panel (moto is not installed: pip install 'opstui[demo]')"
            )
        backends._runner = demo_runner(
            seed,
            redis_url=backends.redis.url,
            ecs_tasks=backends.ecs.desired_count if backends.ecs is not None else None,
        )
        text = effective_config_text(TEMPLATE.read_text("utf-8"), with_ecs=backends.ecs is not None)
        backends.config_path = backends.workdir / "demo.yaml"
        backends.config_path.write_text(text, "utf-8")
    except BaseException:
        backends.stop()
        raise
    return backends


def start_backends(
    port: int = 0,
    *,
    seed: int = SEED,
    redis_binary: str | None = None,
    find_redis: bool = True,
) -> DemoBackends:
    """Start Redis, ECS (if moto is installed), the world and the stand-in service, and
    write the effective config; return once they answer. RuntimeError/OSError (everything
    stopped) on failure."""
    backends = plan_backends(port, seed=seed, redis_binary=redis_binary, find_redis=find_redis)
    try:
        backends.start()
        backends.wait_ready()
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
    """The `opstui demo` command: 0 on a clean exit, 2 if the demo could not start.

    The servers start beside the dashboard: its panels say `… waiting` until they answer,
    then it polls (so no first poll meets a server that is not up yet)."""
    from opstui.config.loader import ConfigError, load_config
    from opstui.ui.run import run_tui

    with _interrupt_on_hangup():
        backends: DemoBackends | None = None
        saved: dict[str, str | None] = {}
        try:
            try:
                backends = plan_backends(port)
            except (OSError, RuntimeError) as exc:
                print(f"opstui: demo: {exc}", file=sys.stderr)
                return EXIT_USAGE
            for notice in backends.notices:
                print(notice, file=sys.stderr)
            backends.start()
            saved = apply_env(backends.env)
            assert backends.config_path is not None
            try:
                config = load_config(backends.config_path)
            except ConfigError as exc:
                for line in exc.lines():
                    print(line, file=sys.stderr)
                return EXIT_USAGE
            code = run_tui(
                config, theme=theme, read_only=read_only, poll_after=backends.until_ready
            )
            if backends.ecs_error:
                print(f"opstui: demo: {backends.ecs_error}", file=sys.stderr)
            return EXIT_USAGE if backends.error else code  # the demo could not start
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        finally:
            if backends is not None:
                backends.stop()
            restore_env(saved)


def environment_for(backends: DemoBackends) -> dict[str, str]:
    """This process's environment plus the demo's: for `opstui check` in a child process."""
    return {**os.environ, **backends.env}
