"""The demo launcher: the effective config with and without moto, backends up and down."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from opstui.config.loader import load_config
from opstui.demo import launcher
from opstui.demo.aws import CLUSTER, SERVICE
from opstui.demo.launcher import effective_config_text, run_demo, start_backends
from opstui.demo.redis_backend import RedisServerProcess
from tests.demo.conftest import wait_until
from tests.support import require_binary

TEMPLATE = launcher.TEMPLATE.read_text("utf-8")
DEMO_ENV = {
    "OPSTUI_DEMO_URL": "http://127.0.0.1:1",
    "OPSTUI_DEMO_REDIS_URL": "redis://127.0.0.1:1/0",
    "OPSTUI_DEMO_AWS_URL": "http://127.0.0.1:2",
}


def demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("opstui-demo")]


def load(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "demo.yaml"
    path.write_text(text, "utf-8")
    return load_config(path)


def test_effective_config_keeps_ecs_with_moto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(effective_config_text(TEMPLATE, with_ecs=True), tmp_path, monkeypatch)
    ids = [p.id for p in config.probes]  # type: ignore[attr-defined]
    assert ids[:6] == ["queue", "ecs", "anclora-health", "p95", "redis", "throughput"]
    views = {v.name: v.rows for v in config.views}  # type: ignore[attr-defined]
    assert views["Overview"][0] == ["queue", "ecs"]
    assert all(len(row) <= 2 for rows in views.values() for row in rows)  # fits 80 columns


def test_effective_config_without_moto_drops_ecs_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = effective_config_text(TEMPLATE, with_ecs=False)
    data = yaml.safe_load(text)
    assert "aws" not in data["connections"]
    assert all(p["kind"] != "ecs" for p in data["probes"])
    config = load(text, tmp_path, monkeypatch)
    overview = next(v for v in config.views if v.name == "Overview")  # type: ignore[attr-defined]
    assert overview.rows[0] == ["queue"]
    assert "ecs" not in [pid for row in overview.rows for pid in row]
    backlog = config.runbook("high-queue-backlog")  # type: ignore[attr-defined]
    assert "scale-up" not in [a.id for a in backlog.actions]
    assert "pause-queue" in [a.id for a in backlog.actions]
    assert all(getattr(s, "connection", None) != "aws" for s in backlog.diagnose)
    assert "ecs" not in backlog.probes


def test_the_demo_runbooks_act_on_the_demo_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(effective_config_text(TEMPLATE, with_ecs=True), tmp_path, monkeypatch)
    backlog = config.runbook("high-queue-backlog")  # type: ignore[attr-defined]
    assert [a.key for a in backlog.actions if a.key] == ["S", "P", "U", "D"]
    scale = next(a for a in backlog.actions if a.id == "scale-up")
    assert scale.then is not None and scale.then.watch == "queue"
    assert config.runbooks_for("queue")[0] is backlog  # type: ignore[attr-defined]


def test_backends_without_moto_or_redis_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher, "moto_available", lambda: False)
    backends = start_backends(find_redis=False)
    try:
        assert backends.notices == [
            "demo: in-process Redis stand-in (redis-server not installed)",
            "demo: no ECS panel (moto is not installed: pip install 'opstui[demo]')",
        ]
        assert backends.ecs is None and "OPSTUI_DEMO_AWS_URL" not in backends.env
        assert backends.config_path is not None
        assert "kind: ecs" not in backends.config_path.read_text("utf-8")
        server = backends.server
        assert server is not None
        wait_until(lambda: server.runner.redis_ok is True and server.runner.ticks >= 2,
                   "the world to write to the stand-in")
        assert server.runner.world.tasks == 2  # no ECS: the default size stays
    finally:
        workdir = backends.workdir
        backends.stop()
    assert not workdir.exists()
    assert demo_threads() == []


def test_backends_with_moto_and_redis_server_follow_desired_count() -> None:
    require_binary("redis-server")
    pytest.importorskip("moto.server")
    backends = start_backends()
    try:
        assert backends.notices[0].startswith("demo: redis-server on 127.0.0.1:")
        assert backends.notices[1].startswith("demo: ECS (moto) on 127.0.0.1:")
        assert isinstance(backends.redis, RedisServerProcess)
        process = backends.redis._process
        assert process is not None and process.poll() is None
        assert backends.ecs is not None and backends.server is not None
        runner = backends.server.runner
        wait_until(lambda: runner.redis_ok is True, "the world to write to redis-server")
        backends.ecs._client().update_service(cluster=CLUSTER, service=SERVICE, desiredCount=5)
        wait_until(lambda: runner.world.tasks == 5, "the world to read desiredCount 5")
        assert runner.world.workers == 5 * runner.world.settings.concurrency
    finally:
        workdir = backends.workdir
        backends.stop()
    assert process.poll() is not None  # redis-server stopped
    assert not workdir.exists()
    assert demo_threads() == []


def test_run_demo_that_cannot_start_says_so_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The stand-in's port is taken: one line, exit 2, Redis and the temp dir gone."""
    monkeypatch.setattr(launcher, "moto_available", lambda: False)
    made: list[Path] = []

    def mkdtemp(prefix: str) -> str:
        path = tmp_path / f"{prefix}{len(made)}"
        path.mkdir()
        made.append(path)
        return str(path)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code = run_demo(None, False, taken.getsockname()[1])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("opstui: demo:") and len(err.strip().splitlines()) == 1
    assert len(made) == 1 and not made[0].exists()
    assert demo_threads() == []
    assert not [c for c in psutil.Process().children() if "redis" in c.name()]


def test_sigterm_and_sighup_unwind_like_ctrl_c() -> None:
    before = signal.getsignal(signal.SIGTERM)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with pytest.raises(KeyboardInterrupt), launcher._interrupt_on_hangup():
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the signal arrives first; this never finishes
    assert signal.getsignal(signal.SIGTERM) is before


def _demo_children() -> list[str]:
    names = []
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "redis-server" in line or "moto_child" in line:
            names.append(line)
    return names


def test_stopped_while_its_servers_start_leaves_nothing() -> None:
    """Quit before the world answers (the dashboard is up at once): every child, thread and
    the temp dir go, and what had not started yet never starts."""
    require_binary("redis-server")
    pytest.importorskip("moto.server")
    backends = launcher.plan_backends()
    workdir = backends.workdir
    backends.start()
    assert _demo_children()  # redis-server and moto's child are on their way
    backends.stop()
    assert _demo_children() == []
    assert demo_threads() == []
    assert not workdir.exists()
    with pytest.raises(RuntimeError):
        backends.wait_ready(0)


async def test_until_ready_then_every_server_answers() -> None:
    """What the dashboard awaits before polling: Redis and the stand-in answer; moto's port
    takes connections at once (its backlog holds them until the child serves)."""
    require_binary("redis-server")
    pytest.importorskip("moto.server")
    backends = launcher.plan_backends()
    try:
        backends.start()
        await backends.until_ready()
        assert backends.server is not None and backends.redis is not None
        with socket.create_connection(("127.0.0.1", backends.server.port), timeout=5):
            pass
        assert backends.ecs is not None
        with socket.create_connection(("127.0.0.1", backends.ecs.port), timeout=5):
            pass  # accepted by the kernel even while the child still seeds
        backends.wait_ready()  # and moto answers soon after
        assert backends.ecs.desired_count() in (None, 2)
    finally:
        backends.stop()
    assert _demo_children() == []
