"""examples/remember-me.yaml (seed 001) against a stand-in of Remember Me: the API and its
/api/metrics, real PostgreSQL holding "IntegrationJob"/"MessageLog" in the runbook's states,
real Redis holding rate-limit keys, and a recorder standing in for `docker compose`. Every
probe reads real data; every runbook is walked end to end through a Runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from opstui.actions.base import Classification
from opstui.config.models import Config
from opstui.engine.check import check_once
from opstui.states import State
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.servers.started import app_in_thread, postgres_with_database, redis_started
from tests.systems.remember_me import standin
from tests.systems.remember_me.harness import (
    EXAMPLES,
    Parts,
    Recorder,
    ThreadedApp,
    classifications,
    confirm_and_run,
    load_example,
    make_recorder,
    make_runner,
    preview_action,
    run_diagnose,
    run_read_action,
    tick_manual,
)

READ = Classification.READ_ONLY
MUTATES = Classification.MUTATING
RATE_PROBES = {"webhook-errors", "messages-failing", "slow-requests", "rate-limit-rejected"}


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with postgres_with_database(tmp_path_factory.mktemp("rm-pg"), "remember_me") as server:
        yield server


@pytest.fixture(scope="module")
def dsn(pg: PostgresServer) -> str:
    return pg.dsn_for(database="remember_me")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("rm-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def api(dsn: str) -> Iterator[tuple[ThreadedApp, standin.RememberMe]]:
    with app_in_thread(standin.RememberMe(dsn), lambda state: state.app()) as served:
        yield served


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rm-project")


@pytest.fixture(scope="module")
def docker(project: Path) -> Recorder:
    return make_recorder(project / "bin", "docker")


@pytest.fixture(scope="module")
def env(
    api: tuple[ThreadedApp, standin.RememberMe],
    dsn: str,
    redis_server: RedisServer,
    docker: Recorder,
    project: Path,
) -> dict[str, str]:
    return {
        "REMEMBER_ME_ENV": "staging",
        "REMEMBER_ME_URL": api[0].url,
        "REMEMBER_ME_JWT": standin.JWT,
        "REMEMBER_ME_METRICS_TOKEN": standin.METRICS_TOKEN,
        "REMEMBER_ME_REDIS_URL": redis_server.url,
        "REMEMBER_ME_DATABASE_URL": dsn,
        "REMEMBER_ME_BIN": str(docker.path.parent),
        "REMEMBER_ME_DIR": str(project),
    }


@pytest.fixture(scope="module")
def config(env: dict[str, str]) -> Config:
    return load_example("remember-me.yaml", env)


@pytest.fixture
async def db(dsn: str, redis_server: RedisServer) -> AsyncIterator[asyncpg.Connection]:
    """The incident's state, fresh for each test; a connection to check the tables."""
    await standin.reseed(dsn)
    with redis_server.sync_client() as client:
        standin.seed_redis(client)
    conn = await asyncpg.connect(dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def parts(config: Config, tmp_path: Path, db: asyncpg.Connection) -> AsyncIterator[Parts]:
    made = make_runner(config, tmp_path)
    yield made
    await made.close()


async def job_states(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch('SELECT status, count(*) AS n FROM "IntegrationJob" GROUP BY status')
    return {row["status"]: row["n"] for row in rows}


async def stuck(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            """SELECT count(*) FROM "IntegrationJob" WHERE status = 'PROCESSING'
               AND "updatedAt" < now() - interval '5 minutes'"""
        )
    )


def test_opstui_validate_accepts_the_example_without_any_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEMBER_ME_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "opstui",
            "validate",
            "--config",
            str(EXAMPLES / "remember-me.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok (12 probes, 2 views)" in result.stdout


async def test_every_probe_reads_real_data(
    config: Config, db: asyncpg.Connection, parts: Parts
) -> None:
    snapshots = {s.probe_id: s for s in await check_once(config)}
    assert set(snapshots) == {p.id for p in config.probes}
    errors = {pid: s.error for pid, s in snapshots.items() if s.state is State.ERROR}
    assert errors == {}
    values = {pid: s.value for pid, s in snapshots.items()}
    assert values["jobs-pending"] == 14
    assert snapshots["jobs-pending"].state is State.PENDING  # above 10, for 5m not yet over
    assert values["jobs-oldest-pending"] is not None and values["jobs-oldest-pending"] > 170_000
    assert snapshots["jobs-oldest-pending"].state is State.WARN
    assert values["jobs-stuck"] == 6 and snapshots["jobs-stuck"].state is State.CRIT
    assert values["jobs-failed"] == 12 and snapshots["jobs-failed"].state is State.CRIT
    assert values["messages-failed"] == 7
    # p95 of the fixed observations: in the 30000-60000 bucket, so above the 30 s limit
    assert values["job-latency-p95"] is not None and 30_000 < values["job-latency-p95"] <= 60_000
    assert values["http-p95"] is not None and 2_000 < values["http-p95"] <= 5_000
    assert snapshots["redis"].state is State.OK and values["redis"] is not None
    for pid in RATE_PROBES:  # one scrape cannot make a rate: NO DATA, said why
        assert snapshots[pid].state is State.NODATA, pid
        assert snapshots[pid].no_data == "rate needs two scrapes", pid
    # a second scrape gives every rate a real, positive value (the stand-in's traffic)
    for pid in RATE_PROBES:
        await parts.probes.fresh(pid)
        second = await parts.probes.fresh(pid)
        assert second.state is not State.ERROR and second.value is not None and second.value > 0


async def test_jobs_acumulados(parts: Parts, db: asyncpg.Connection, docker: Recorder) -> None:
    runner = parts.runner
    before = len(docker.calls())
    results = dict(await run_diagnose(runner, "jobs-acumulados"))
    assert (
        '"pendingCount": 14'
        in results[
            "Métricas de jobs (pendingCount > 10, oldestPendingAgeMs > 60000, lastRunAt)"
        ].output
    )
    assert (
        "integration_jobs_pending_count 14.0"
        in results["Métricas Prometheus (integration_jobs_*)"].output
    )
    assert docker.calls()[before:] == [["compose", "logs", "--no-color", "--tail", "50", "worker"]]
    assert await classifications(runner, "jobs-acumulados", {}) == {
        "restart-worker": MUTATES,
        "restart-redis": MUTATES,
        "reset-stuck-jobs": MUTATES,
        "raise-concurrency": READ,
    }

    preview = await preview_action(runner, "jobs-acumulados", "reset-stuck-jobs")
    assert preview is not None and preview.error is None
    assert preview.lines == ("UPDATE affects 6 rows (measured in a rolled-back transaction)",)
    assert await stuck(db) == 6 and (await job_states(db))["PENDING"] == 14

    outcome = await confirm_and_run(runner, "jobs-acumulados", "reset-stuck-jobs")
    assert outcome.summary == "UPDATE 6"
    assert await stuck(db) == 0
    assert await job_states(db) == {"PENDING": 20, "PROCESSING": 2, "FAILED": 12, "DONE": 30}
    prepared = await runner.prepare_action("jobs-acumulados", "reset-stuck-jobs")
    then = await runner.run_then(prepared)
    assert then is not None and then.ok, then

    await confirm_and_run(runner, "jobs-acumulados", "restart-worker")
    await confirm_and_run(runner, "jobs-acumulados", "restart-redis")
    prepared = await runner.prepare_action("jobs-acumulados", "restart-redis")
    then = await runner.run_then(prepared)
    assert then is not None and then.ok, then
    assert docker.calls()[-2:] == [
        ["compose", "restart", "worker"],
        ["compose", "restart", "redis"],
    ]
    assert tick_manual(runner, "jobs-acumulados") == [
        "Concurrency bajo - subir INTEGRATION_WORKER_CONCURRENCY"
    ]
    assert parts.audited() == [
        ("jobs-acumulados", "reset-stuck-jobs", True),
        ("jobs-acumulados", "restart-worker", True),
        ("jobs-acumulados", "restart-redis", True),
    ]


async def test_webhooks_fallan(parts: Parts, docker: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "webhooks-fallan"))
    logs = results[
        "Logs de la API (Invalid signature, Webhook verification failed, Missing raw body)"
    ]
    assert "Invalid signature" in logs.output
    assert docker.calls()[-1] == ["compose", "logs", "--no-color", "--tail", "500", "api"]
    metrics = results["Métricas (webhook_events_total, webhook_processing_duration_ms)"].output
    assert 'webhook_events_total{status="error"}' in metrics
    assert "webhook_processing_duration_ms_bucket" in metrics
    kinds = await classifications(runner, "webhooks-fallan", {})
    assert set(kinds.values()) == {READ} and len(kinds) == 5
    assert len(tick_manual(runner, "webhooks-fallan")) == 5
    assert parts.audit.path.read_text().count("webhooks-fallan") == 5


async def test_rate_limit_pegando(
    parts: Parts, docker: Recorder, api: tuple[ThreadedApp, standin.RememberMe]
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "rate-limit-pegando"))
    scan = results["Claves de rate limit en Redis (KEYS rate_limit:*, as a SCAN)"].output
    assert "rate_limit:auth.login:org-123" in scan and "rate_limit:auth.login:org-456" in scan
    metrics = results["Métricas (rate_limit_rejected_total, rate_limit_hits_total)"].output
    assert 'rate_limit_rejected_total{action="auth.login"}' in metrics
    params = {"org-counter": {"org": "org-123"}}
    assert await classifications(runner, "rate-limit-pegando", params) == {
        "login-headers": MUTATES,
        "org-counter": READ,
        "raise-limit": READ,
        "check-org": READ,
        "disable-rate-limit": MUTATES,
        "tune-per-action": READ,
    }
    counter = await run_read_action(runner, "rate-limit-pegando", "org-counter", {"org": "org-123"})
    assert "57" in counter.output

    state = api[1]
    logins = sum(1 for r in state.requests if r == ("POST", "/api/auth/login"))
    outcome = await confirm_and_run(runner, "rate-limit-pegando", "login-headers")
    assert "429" in outcome.summary
    assert sum(1 for r in state.requests if r == ("POST", "/api/auth/login")) == logins + 1

    prepared = await runner.prepare_action("rate-limit-pegando", "disable-rate-limit")
    assert prepared.danger == "medium"
    await confirm_and_run(runner, "rate-limit-pegando", "disable-rate-limit")
    assert docker.calls()[-1] == ["compose", "restart", "api", "worker"]
    assert len(tick_manual(runner, "rate-limit-pegando")) == 3


async def test_mensajes_failed(parts: Parts, db: asyncpg.Connection, docker: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "mensajes-failed"))
    assert '"total": 12' in results["Mensajes failed (API)"].output  # 7 + 3 old + 2 inbound
    last_error = results["lastError de los jobs FAILED"]
    assert last_error.summary == "12 rows" and "WhatsApp API error" in last_error.output
    assert (
        "message_status_transitions_total"
        in results["Métricas (message_status_transitions_total)"].output
    )
    assert docker.calls()[-1] == ["compose", "logs", "--no-color", "--tail", "200", "worker"]
    params = {"retry-message": {"message_id": "msg-f1"}, "retry-job": {"job_id": "job-f1"}}
    assert await classifications(runner, "mensajes-failed", params) == {
        "retry-message": MUTATES,
        "check-cause": READ,
        "retry-job": MUTATES,
        "bulk-retry-failed": MUTATES,
    }

    await confirm_and_run(runner, "mensajes-failed", "retry-message", {"message_id": "msg-f1"})
    row = await db.fetchrow(
        'SELECT direction, status FROM "MessageLog" WHERE id = $1', "msg-f1-retry"
    )
    assert row is not None and dict(row) == {"direction": "OUTBOUND", "status": "QUEUED"}

    preview = await preview_action(runner, "mensajes-failed", "retry-job", {"job_id": "job-f1"})
    assert preview is not None
    assert preview.lines == ("UPDATE affects 1 row (measured in a rolled-back transaction)",)
    assert await db.fetchval('SELECT status FROM "IntegrationJob" WHERE id = $1', "job-f1") == (
        "FAILED"
    )
    await confirm_and_run(runner, "mensajes-failed", "retry-job", {"job_id": "job-f1"})
    job = await db.fetchrow('SELECT status, attempts FROM "IntegrationJob" WHERE id = $1', "job-f1")
    assert job is not None and dict(job) == {"status": "PENDING", "attempts": 0}

    preview = await preview_action(runner, "mensajes-failed", "bulk-retry-failed")
    assert preview is not None
    assert preview.lines == ("UPDATE affects 7 rows (measured in a rolled-back transaction)",)
    failed = "SELECT count(*) FROM \"MessageLog\" WHERE status = 'FAILED'"
    assert await db.fetchval(failed) == 12
    outcome = await confirm_and_run(runner, "mensajes-failed", "bulk-retry-failed")
    assert outcome.summary == "UPDATE 7"
    assert await db.fetchval(failed) == 5  # 3 older than 24 h and 2 inbound stay
    prepared = await runner.prepare_action("mensajes-failed", "bulk-retry-failed")
    then = await runner.run_then(prepared)
    assert then is not None and then.ok, then
    assert tick_manual(runner, "mensajes-failed") == ["Verificar causa del fallo"]
