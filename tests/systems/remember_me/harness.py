"""What the seed-system tests (remember_me, whatsapp_agent, agente_api) share: a stand-in app
served from its own thread for a whole module (Prometheus scrapes it between tests), a
recorder script that stands in for docker/make, loading an example with its environment, and
a Runner that polls probes for real (so `then` watches and param defaults read live data).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from opstui.actions.audit import AuditLog
from opstui.actions.base import Classification, Outcome, Preview
from opstui.actions.probe_readers import PollingProbeReader
from opstui.actions.runner import Runner
from opstui.config.loader import load_config
from opstui.config.models import Config
from opstui.engine.events import Timeline
from opstui.sources.registry import ClientPool
from tests.support import environment

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


class ThreadedApp:
    """An aiohttp app on 127.0.0.1:<random> served by a loop in a daemon thread.

    Module-scoped fixtures need a server that outlives each test's event loop (pytest-asyncio
    gives every test its own), and Prometheus must be able to scrape it at any time.
    """

    def __init__(self, make_app: Callable[[], Awaitable[web.Application]]) -> None:
        self._make_app = make_app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    async def _start(self) -> None:
        app = await self._make_app()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def call(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine in the app's loop (to read or change the stand-in's state)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


_RECORDER = r"""#!%(python)s
import json, sys
with open(%(log)r, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
words = sys.argv[1:]
if "logs" in words:
    print("worker-1  | ERROR Redis connection failed (retrying)")
    print("worker-1  | WARN Lock not acquired")
    print("api-1     | ERROR webhook: Invalid signature")
elif "ps" in words:
    print("NAME       STATUS")
    print("app        Up 2 hours")
else:
    print("recorded: " + " ".join(words))
"""


@dataclass
class Recorder:
    """An executable that records its argv (one JSON list a line) and prints plausible output:
    the `docker` / `make` the examples run in tests."""

    path: Path
    log: Path

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


def make_recorder(directory: Path, name: str) -> Recorder:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    log = directory / f"{name}.calls"
    path.write_text(_RECORDER % {"python": sys.executable, "log": str(log)})
    path.chmod(0o755)
    return Recorder(path, log)



def load_example(name: str, env: Mapping[str, str]) -> Config:
    """The example file, with `${VAR}` resolved from `env` (as opstui does at start)."""
    with environment(env):
        return load_config(EXAMPLES / name)


@dataclass
class Parts:
    runner: Runner
    pool: ClientPool
    probes: PollingProbeReader
    audit: AuditLog

    async def close(self) -> None:
        await self.runner.aclose()
        await self.pool.aclose()

    def audited(self) -> list[tuple[str, str, bool]]:
        """(runbook, action, ok) of each result line of the audit log, in order."""
        if not self.audit.path.exists():
            return []
        lines = [json.loads(line) for line in self.audit.path.read_text().splitlines()]
        return [(e["runbook"], e["action"], e["ok"]) for e in lines if e["phase"] == "result"]


def make_runner(config: Config, tmp_path: Path) -> Parts:
    """A Runner whose probe readings are real polls of the stand-in."""
    pool = ClientPool()
    probes = PollingProbeReader(config, pool)
    audit = AuditLog(tmp_path / "state" / "audit.jsonl")
    runner = Runner(config, pool=pool, probes=probes, audit=audit, timeline=Timeline())
    return Parts(runner, pool, probes, audit)


async def run_diagnose(runner: Runner, runbook_id: str) -> list[tuple[str, Outcome]]:
    """Every diagnose step of a runbook, as the runbook screen runs them: each must classify
    read-only; a manual item is ticked, every other step must succeed."""
    results: list[tuple[str, Outcome]] = []
    runbook = runner.config.runbook(runbook_id)
    for index, step in enumerate(runbook.diagnose):
        prepared = await runner.prepare_diagnose(runbook_id, index)
        verdict = await runner.classify(prepared)
        assert verdict.classification is Classification.READ_ONLY, (step.title, verdict)
        if step.kind == "manual":
            runner.tick_checklist(runbook_id, step.title, True)
            continue
        outcome = await runner.run(prepared)
        assert outcome.ok, (runbook_id, step.title, outcome.summary, outcome.error)
        results.append((step.title, outcome))
    return results


async def classifications(
    runner: Runner, runbook_id: str, params: Mapping[str, Any]
) -> dict[str, Classification]:
    """Each action's classification (params given per action id where it needs some)."""
    found: dict[str, Classification] = {}
    for action in runner.config.runbook(runbook_id).actions:
        prepared = await runner.prepare_action(runbook_id, action.id, params.get(action.id))
        found[action.id] = (await runner.classify(prepared)).classification
    return found


async def preview_action(
    runner: Runner, runbook_id: str, action_id: str, params: Mapping[str, Any] | None = None
) -> Preview | None:
    prepared = await runner.prepare_action(runbook_id, action_id, params)
    return await runner.preview(prepared)


async def confirm_and_run(
    runner: Runner, runbook_id: str, action_id: str, params: Mapping[str, Any] | None = None
) -> Outcome:
    """Prepare, classify (must mutate), confirm as the TUI does (typing the target when the
    action is danger: high) and run."""
    prepared = await runner.prepare_action(runbook_id, action_id, params)
    assert (await runner.classify(prepared)).mutating, (runbook_id, action_id)
    typed = prepared.target if prepared.danger == "high" else None
    token = runner.confirm(prepared, via="modal", typed_target=typed)
    outcome = await runner.run(prepared, token=token)
    assert outcome.ok, (runbook_id, action_id, outcome.summary, outcome.error)
    return outcome


async def run_read_action(
    runner: Runner, runbook_id: str, action_id: str, params: Mapping[str, Any] | None = None
) -> Outcome:
    """A read-only action runs without a confirmation."""
    prepared = await runner.prepare_action(runbook_id, action_id, params)
    assert not (await runner.classify(prepared)).mutating, (runbook_id, action_id)
    outcome = await runner.run(prepared)
    assert outcome.ok, (runbook_id, action_id, outcome.summary, outcome.error)
    return outcome


def tick_manual(runner: Runner, runbook_id: str) -> list[str]:
    """Tick every manual action of a runbook; returns their titles."""
    ticked = []
    for action in runner.config.runbook(runbook_id).actions:
        if action.kind == "manual":
            runner.tick_checklist(runbook_id, action.title, True)
            ticked.append(action.title)
    return ticked
