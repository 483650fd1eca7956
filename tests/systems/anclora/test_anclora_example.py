"""examples/anclora-whatsapp.yaml against a stand-in of the Anclora system: every probe reads
real data, and every runbook is walked end to end through a Runner: diagnose steps run
read-only and succeed, actions are classified as expected, read-only mode and a missing
confirmation refuse every mutation, and each confirmed mutation changes the stand-in."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from opstui.actions.audit import AuditLog
from opstui.actions.probe_readers import PollingProbeReader
from opstui.actions.runner import Refused, Runner
from opstui.engine.check import check_once
from opstui.sources.registry import ClientPool
from opstui.states import State
from tests.systems.anclora.conftest import (
    ADMIN_KEY,
    DESIRED,
    EVOLUTION_KEY,
    EXAMPLE,
    FAILED,
    WAITING,
    System,
)
from tests.systems.anclora.standin import QUEUE

RUNBOOKS = [
    ("application-down", "Application Down (503 Errors)"),
    ("high-memory-usage", "High Memory Usage / OOM Kills"),
    ("redis-connection-failures", "Redis Connection Failures"),
    ("high-queue-backlog", "High Queue Backlog"),
    ("high-error-rate", "High Error Rate"),
    ("slow-response-times", "Slow Response Times"),
    ("whatsapp-instance-disconnected", "WhatsApp Instance Disconnected"),
    ("missing-metrics-in-grafana", "Missing Metrics in Grafana"),
    ("diagnostic-commands", "Diagnostic Commands"),
    ("morning-checklist", "Morning Checklist (10:00 AM)"),
]

READ_ONLY_ACTIONS = {
    ("whatsapp-instance-disconnected", "qr-code"),  # GET /instance/connect: reads the QR
    ("whatsapp-instance-disconnected", "verify"),  # a watch
}
"""Actions that are not mutating besides the manual checklist items."""

PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("application-down", "scale-up"): {"count": 5},
    ("high-memory-usage", "deploy-task-definition"): {"revision": 7},
    ("high-queue-backlog", "deploy-concurrency"): {"revision": 8},
    ("redis-connection-failures", "raise-maxclients"): {"maxclients": 5000},
}

Verify = Callable[[], None]


@dataclass
class Walk:
    system: System
    runner: Runner
    read_only: Runner
    reader: PollingProbeReader


@pytest.fixture
async def walk(system: System, tmp_path: Path) -> AsyncIterator[Walk]:
    pool = ClientPool()
    reader = PollingProbeReader(system.config, pool)
    runner = Runner(
        system.config, pool=pool, probes=reader, audit=AuditLog(tmp_path / "audit.jsonl")
    )
    read_only = Runner(
        system.config,
        pool=pool,
        probes=reader,
        audit=AuditLog(tmp_path / "ro-audit.jsonl"),
        read_only=True,
    )
    yield Walk(system, runner, read_only, reader)
    await runner.aclose()
    await read_only.aclose()
    await pool.aclose()


# --- the file ----------------------------------------------------------------------------------


def test_validate_without_any_environment() -> None:
    """`opstui validate` passes with none of the env vars set: every one has a fallback."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANCLORA", "ADMIN", "EVOLUTION", "REDIS", "PROMETHEUS", "AWS"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "opstui", "validate", "--config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"{EXAMPLE}: ok (19 probes, 5 views)"


def test_runbooks_are_named_and_ordered_as_in_the_seeds(system: System) -> None:
    assert [(r.id, r.title) for r in system.config.runbooks] == RUNBOOKS
    # every probe that names a runbook names one that exists, and every runbook has a panel
    ids = {r.id for r in system.config.runbooks}
    assert {p.runbook for p in system.config.probes if p.runbook} <= ids


# --- probes ------------------------------------------------------------------------------------


async def test_check_once_has_no_probe_in_error(system: System) -> None:
    snapshots = await check_once(system.config)
    errors = {s.probe_id: s.error for s in snapshots if s.state is State.ERROR}
    assert errors == {}


async def test_every_probe_reads_real_data(walk: Walk) -> None:
    """Two polls (rates and quantiles need two scrapes): every probe has a value, and the
    values are the stand-in's."""
    config = walk.system.config
    for probe in config.probes:
        await walk.reader.fresh(probe.id)
    await asyncio.sleep(1.1)  # a second apart, so the rate window is not empty
    snapshots = {p.id: await walk.reader.fresh(p.id) for p in config.probes}
    missing = {
        pid: (s.state.value, s.error or s.no_data)
        for pid, s in snapshots.items()
        if s.reading is None or s.reading.value is None or s.state is State.ERROR
    }
    assert missing == {}

    def value(pid: str) -> float:
        reading = snapshots[pid].reading
        assert reading is not None and reading.value is not None
        return float(reading.value)

    def fields(pid: str) -> dict[str, Any]:
        reading = snapshots[pid].reading
        assert reading is not None
        return dict(reading.fields)

    assert value("queue") == WAITING and fields("queue")["active"] == 4
    assert value("dlq") == FAILED
    assert fields("ecs")["desired"] == DESIRED
    assert value("instances") == 1
    assert value("memory") == 536870912 and value("memory-ratio") == pytest.approx(0.25)
    assert value("event-loop") == pytest.approx(0.004)
    assert 0.05 < value("p95") <= 0.1 and 0.05 < value("p95-5m") <= 0.1
    assert value("error-rate") == pytest.approx(0.002, rel=1e-3)
    assert value("api-success") == pytest.approx(500 / 501, rel=1e-3)
    assert value("throughput") == pytest.approx(499, rel=0.01)
    # a 5m rate over the few seconds Prometheus has: extrapolated, so at most the true 0.4
    assert 0 < value("cpu") <= 0.41
    assert value("targets") == 0 and fields("targets")["up"] == 1
    assert fields("redis")["maxclients"] > 0
    health = snapshots["health"]
    assert health.state is State.OK
    assert health.reading is not None
    assert {"memory", "eventLoop"} <= {c.name for c in health.reading.components}
    assert snapshots["evolution"].state is State.OK
    # every threshold of the file judges a real reading: none of the healthy stand-in's
    # values trips one
    assert {p: s.state.value for p, s in snapshots.items() if s.state is not State.OK} == {}


# --- runbooks ----------------------------------------------------------------------------------


def _effects(system: System) -> dict[tuple[str, str], Callable[[], Verify]]:
    """For each mutating action: take a 'before' now, return the check of the change."""

    def desired(count: int | None = None) -> Callable[[], Verify]:
        def before() -> Verify:
            was = int(system.service()["desiredCount"])

            def check() -> None:
                now = int(system.service()["desiredCount"])
                assert now == (count if count is not None else was * 2), (was, now)
                assert now != was

            return check

        return before

    def redeployed() -> Verify:
        ids = {d["id"] for d in system.service()["deployments"]}

        def check() -> None:
            deployments = system.service()["deployments"]
            primary = next(d for d in deployments if d["status"] == "PRIMARY")
            assert primary["id"] not in ids

        return check

    def recorded(line: str) -> Callable[[], Verify]:
        def before() -> Verify:
            count = system.recorded().count(line)

            def check() -> None:
                assert system.recorded().count(line) == count + 1, system.recorded()

            return check

        return before

    def posted(path: str, header: str, key: str, body: Any = None) -> Callable[[], Verify]:
        def before() -> Verify:
            count = len(system.state.posts(path))

            def check() -> None:
                calls = system.state.posts(path)
                assert len(calls) == count + 1
                headers = {k.lower(): v for k, v in calls[-1].headers.items()}
                assert headers[header.lower()] == key
                if body is not None:
                    assert json.loads(calls[-1].body) == body

            return check

        return before

    def clients_killed() -> Verify:
        canary = system.redis.sync_client()
        first = canary.client_id()

        def check() -> None:
            assert canary.client_id() != first  # its connection was killed; it reconnected
            canary.close()

        return check

    def maxclients() -> Verify:
        def check() -> None:
            with system.redis.sync_client() as client:
                assert client.config_get("maxclients") == {"maxclients": "5000"}

        return check

    def dlq_deleted() -> Verify:
        with system.redis.sync_client() as client:
            assert client.zcard(f"{QUEUE}:failed") == FAILED

        def check() -> None:
            with system.redis.sync_client() as client:
                assert client.exists(f"{QUEUE}:failed") == 0
                assert client.llen(f"{QUEUE}:wait") == WAITING  # nothing else touched

        return check

    def reloaded() -> Verify:
        status = system.prometheus.api("/api/v1/status/runtimeinfo")
        was = status["lastConfigTime"]

        def check() -> None:
            now = system.prometheus.api("/api/v1/status/runtimeinfo")
            assert now["reloadConfigSuccess"] is True and now["lastConfigTime"] != was

        return check

    tail = "--task-definition anclora-whatsapp"
    update = (
        f"aws ecs update-service --cluster anclora-production --service anclora-whatsapp {tail}"
    )
    return {
        ("application-down", "force-new-deployment"): redeployed,
        ("application-down", "scale-up"): desired(5),
        ("application-down", "rollback"): recorded("rollback.sh production"),
        ("high-memory-usage", "heap-snapshot"): posted(
            "/admin/heap-snapshot", "X-Admin-Key", ADMIN_KEY
        ),
        ("high-memory-usage", "restart-tasks"): redeployed,
        ("high-memory-usage", "register-task-definition"): recorded(
            "aws ecs register-task-definition --cli-input-json file://task-definition-updated.json"
        ),
        ("high-memory-usage", "deploy-task-definition"): recorded(f"{update}:7"),
        ("redis-connection-failures", "restart-redis"): recorded("docker-compose restart redis"),
        ("redis-connection-failures", "kill-clients"): clients_killed,
        ("redis-connection-failures", "raise-maxclients"): maxclients,
        ("redis-connection-failures", "restart-app"): redeployed,
        ("high-queue-backlog", "scale-up"): desired(None),
        ("high-queue-backlog", "deploy-concurrency"): recorded(f"{update}:8"),
        ("high-queue-backlog", "pause-low-priority"): posted(
            "/admin/queue/pause-priority", "X-Admin-Key", ADMIN_KEY, {"priority": "low"}
        ),
        ("high-error-rate", "retry-failed"): posted(
            "/admin/queue/retry-failed", "X-Admin-Key", ADMIN_KEY
        ),
        ("high-error-rate", "clear-dlq"): dlq_deleted,
        ("slow-response-times", "profile-cpu"): posted(
            "/admin/profile/cpu", "X-Admin-Key", ADMIN_KEY, {"duration": 30000}
        ),
        ("slow-response-times", "scale-out"): desired(6),
        ("whatsapp-instance-disconnected", "restart-instance"): posted(
            "/instance/restart/anclora", "apikey", EVOLUTION_KEY
        ),
        ("missing-metrics-in-grafana", "restart-prometheus"): recorded(
            "docker-compose restart prometheus"
        ),
        ("missing-metrics-in-grafana", "reload-prometheus"): reloaded,
    }


async def _prime(walk: Walk, runbook_id: str) -> None:
    """Readings the templates and watches use: the runbook's probes and the ECS one."""
    runbook = walk.system.config.runbook(runbook_id)
    linked = {p.id for p in walk.system.config.probes if p.runbook == runbook_id}
    for probe_id in sorted({*runbook.probes, *linked, "ecs"}):
        snapshot = await walk.reader.fresh(probe_id)
        assert snapshot.state is not State.ERROR, (probe_id, snapshot.error)


@pytest.mark.parametrize("runbook_id", [rid for rid, _ in RUNBOOKS])
async def test_walk_runbook(walk: Walk, runbook_id: str) -> None:
    await _prime(walk, runbook_id)
    runbook = walk.system.config.runbook(runbook_id)
    runner = walk.runner

    for index, step in enumerate(runbook.diagnose):
        prepared = await runner.prepare_diagnose(runbook_id, index)
        verdict = await runner.classify(prepared)
        assert not verdict.mutating, (step.title, verdict.reason)
        calls = walk.system.recorded()
        outcome = await walk.read_only.run(prepared)  # read-only mode runs every diagnosis
        assert outcome.ok, (step.title, outcome.summary, outcome.error)
        if step.kind == "shell" and not step.shell:  # the file's argv ran, as written
            line = " ".join(step.argv)
            assert walk.system.recorded().count(line) == calls.count(line) + 1

    effects = _effects(walk.system)
    for action in runbook.actions:
        key = (runbook_id, action.id)
        prepared = await runner.prepare_action(runbook_id, action.id, PARAMS.get(key))
        verdict = await runner.classify(prepared)
        if action.kind == "manual":
            assert not verdict.mutating
            outcome = await runner.run(prepared)
            assert not outcome.ok and outcome.data == {"manual": True}
            runner.tick_checklist(runbook_id, action.title, True)
            continue
        if key in READ_ONLY_ACTIONS:
            assert not verdict.mutating, (key, verdict.reason)
            outcome = await walk.read_only.run(prepared)
            assert outcome.ok, (key, outcome.summary, outcome.error)
            continue
        assert verdict.mutating, (key, verdict.reason)
        assert key in effects, f"{key}: a mutating action with no check of its effect"
        with pytest.raises(Refused, match="confirmation"):
            await runner.run(prepared)
        ro_step = await walk.read_only.prepare_action(runbook_id, action.id, PARAMS.get(key))
        ro_token = walk.read_only.confirm(ro_step, via="--yes", typed_target=ro_step.target)
        with pytest.raises(Refused, match="read-only"):
            await walk.read_only.run(ro_step, token=ro_token)

        check = effects[key]()
        token = runner.confirm(prepared, via="--yes", typed_target=prepared.target)
        outcome = await runner.run(prepared, token=token)
        assert outcome.ok, (key, outcome.summary, outcome.error)
        check()

    mutating = [
        a
        for a in runbook.actions
        if a.kind != "manual" and (runbook_id, a.id) not in READ_ONLY_ACTIONS
    ]
    records = runner.audit.records()
    phases = [(r["phase"], r.get("action")) for r in records if r["phase"] in ("intent", "result")]
    expected = [(phase, a.id) for a in mutating for phase in ("intent", "result")]
    assert phases == expected
    refused = {r.get("action") for r in records if r["phase"] == "refused"}
    assert refused == {a.id for a in mutating}  # the unconfirmed attempt of each, audited
    ticked = [r["target"] for r in records if r["phase"] == "checklist"]
    assert ticked == [a.title for a in runbook.actions if a.kind == "manual"]


async def test_scale_up_then_watches_the_backlog_drain(walk: Walk) -> None:
    """High Queue Backlog's `then` (the seed's `watch -n 10 ... jq .waiting`) against the real
    queue: the backlog is under 1000, so the watch ends at once with success."""
    await _prime(walk, "high-queue-backlog")
    prepared = await walk.runner.prepare_action("high-queue-backlog", "scale-up")
    outcome = await walk.runner.run_then(prepared)
    assert outcome is not None and outcome.ok, outcome


def test_admin_calls_never_reach_the_app_without_the_key(system: System) -> None:
    """The probes' connection carries no admin key; only admin actions send it."""
    request = urllib.request.Request(
        f"{system.app.url}/admin/queue/retry-failed", method="POST", data=b""
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 401
    with system.state.lock:
        reads = [c for c in system.state.calls if c.method == "GET"]
    assert reads and all("X-Admin-Key" not in c.headers for c in reads)
