"""examples/agente-api.yaml (seed 004) against a stand-in of Agente API: the API with its
/metrics scraped by a real Prometheus, real PostgreSQL (agente_db with pg_stat_statements),
real Redis with the rate-limit and feature-flag keys, and recorders standing in for docker and
make. Every probe reads real data; every runbook is walked end to end through a Runner."""

from __future__ import annotations

import math
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
from tests.support import require_binary
from tests.systems.agente_api import standin
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
LOGS = ["logs", "--tail", "200", "agente-api-prod"]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with postgres_with_database(
        tmp_path_factory.mktemp("ag-pg"), "agente_db",
        settings={"shared_preload_libraries": "pg_stat_statements"},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def dsn(pg: PostgresServer) -> str:
    return pg.dsn_for(database="agente_db")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("ag-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[ThreadedApp, standin.AgenteApi]]:
    with app_in_thread(standin.AgenteApi(), lambda state: state.app()) as served:
        yield served


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, api: tuple[ThreadedApp, standin.AgenteApi]
) -> Iterator[standin.AgentePrometheus]:
    require_binary("prometheus")
    server = standin.AgentePrometheus(tmp_path_factory.mktemp("ag-prom"), api[0].port)
    server.start()
    try:
        server.wait_for_rates()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project directory: a git repository with a stable and a later commit."""
    root = tmp_path_factory.mktemp("ag-project")
    git = ["git", "-C", str(root), "-c", "user.name=ops", "-c", "user.email=ops@example.com"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=30)
    for message in ("PRODUCTION STABLE: v1.4.2", "feat: availability cache"):
        subprocess.run(
            [*git, "commit", "-q", "--allow-empty", "-m", message], check=True, timeout=30
        )
    return root


@pytest.fixture(scope="module")
def docker(project: Path) -> Recorder:
    return make_recorder(project / "bin", "docker")


@pytest.fixture(scope="module")
def make(project: Path) -> Recorder:
    return make_recorder(project / "bin", "make")


@pytest.fixture(scope="module")
def config(
    api: tuple[ThreadedApp, standin.AgenteApi],
    prometheus: standin.AgentePrometheus,
    dsn: str,
    redis_server: RedisServer,
    docker: Recorder,
    make: Recorder,
    project: Path,
) -> Config:
    url = api[0].url
    return load_example(
        "agente-api.yaml",
        {
            "AGENTE_ENV": "staging",
            "AGENTE_API_URL": url,
            "ADMIN_TOKEN": standin.ADMIN_TOKEN,
            "AGENTE_PROMETHEUS_URL": prometheus.url,
            "AGENTE_ALERTMANAGER_URL": url,
            "AGENTE_JAEGER_URL": url,
            "PMS_URL": url,
            "AGENTE_REDIS_URL": redis_server.url,
            "AGENTE_DATABASE_URL": dsn,
            "AGENTE_BIN": str(docker.path.parent),
            "AGENTE_DIR": str(project),
        },
    )


@pytest.fixture
async def db(dsn: str, redis_server: RedisServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    await conn.execute(standin.SCHEMA)
    await conn.execute(standin.SLOW_QUERY)
    with redis_server.sync_client() as client:
        standin.seed_redis(client)
    yield conn
    await conn.close()


@pytest.fixture
async def parts(config: Config, tmp_path: Path, db: asyncpg.Connection) -> AsyncIterator[Parts]:
    made = make_runner(config, tmp_path)
    yield made
    await made.close()


def test_opstui_validate_accepts_the_example_without_any_environment() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTE_", "ADMIN_TOKEN", "PMS_URL"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "opstui", "validate", "--config", str(EXAMPLES / "agente-api.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok (10 probes, 2 views)" in result.stdout


async def test_every_probe_reads_real_data(config: Config, db: asyncpg.Connection) -> None:
    snapshots = {s.probe_id: s for s in await check_once(config)}
    assert set(snapshots) == {p.id for p in config.probes}
    problems = {
        pid: (s.state, s.error or s.no_data)
        for pid, s in snapshots.items()
        if s.state in (State.ERROR, State.NODATA) or s.value is None or math.isnan(s.value)
    }
    assert problems == {}
    value = {pid: s.value for pid, s in snapshots.items() if s.value is not None}
    assert snapshots["api-ready"].state is State.OK
    assert value["error-rate-5xx"] == pytest.approx(8 / 63, rel=0.05)
    assert snapshots["error-rate-5xx"].state is State.PENDING  # crit after 1m
    assert value["circuit-breaker"] == 1 and snapshots["circuit-breaker"].state is State.WARN
    assert 0.25 < value["latency-p95"] <= 1.0 and snapshots["latency-p95"].state is State.PENDING
    assert value["targets"] == 0 and snapshots["targets"].state is State.OK
    assert value["alerts"] == 0 and snapshots["alerts"].state is State.OK
    assert value["rate-429"] > 0
    assert value["db"] >= 1 and value["redis"] > 0


async def test_respuesta_rapida(parts: Parts, docker: Recorder, make: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "respuesta-rapida"))
    assert '"dependencies"' in results["Estado de servicios"].output
    assert "agente-api" in results["Métricas críticas (up)"].output
    assert docker.calls()[-1] == ["logs", "--tail", "50", "agente-api-prod"]
    assert await classifications(runner, "respuesta-rapida", {}) == {
        "make-health": READ,
        "make-logs": READ,
        "make-docker-restart": MUTATES,
        "restart-api": MUTATES,
        "restart-deps": MUTATES,
    }
    await run_read_action(runner, "respuesta-rapida", "make-health")
    await run_read_action(runner, "respuesta-rapida", "make-logs")
    await confirm_and_run(runner, "respuesta-rapida", "make-docker-restart")
    assert make.calls()[-3:] == [["health"], ["logs"], ["docker-restart"]]
    await confirm_and_run(runner, "respuesta-rapida", "restart-api")
    then = await runner.run_then(await runner.prepare_action("respuesta-rapida", "restart-api"))
    assert then is not None and then.ok
    await confirm_and_run(runner, "respuesta-rapida", "restart-deps")
    assert docker.calls()[-2:] == [
        ["restart", "agente-api-prod"],
        ["restart", "postgres-prod", "redis-prod"],
    ]


async def test_api_no_responde(parts: Parts, docker: Recorder, make: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "api-no-responde"))
    assert '"pms"' in results["Dependencias (/health/ready .dependencies)"].output
    assert docker.calls()[-2:] == [LOGS, ["stats", "agente-api-prod", "--no-stream"]]
    kinds = await classifications(runner, "api-no-responde", {})
    assert kinds == {
        "restart-api": MUTATES,
        "restart-deps": MUTATES,
        "docker-stop": MUTATES,
        "docker-up": MUTATES,
        "escalate": READ,
    }
    for action in ("restart-api", "restart-deps", "docker-stop", "docker-up"):
        await confirm_and_run(runner, "api-no-responde", action)
    stop = await runner.prepare_action("api-no-responde", "docker-stop")
    assert stop.danger == "high"
    assert docker.calls()[-2:] == [
        ["restart", "agente-api-prod"],
        ["restart", "postgres-prod", "redis-prod"],
    ]
    assert make.calls()[-2:] == [["docker-stop"], ["docker-up"]]
    then = await runner.run_then(await runner.prepare_action("api-no-responde", "restart-deps"))
    assert then is not None and then.ok
    assert tick_manual(runner, "api-no-responde") == [
        "Escalación (> 5 min): commits, rollback, equipo de backend"
    ]


async def test_circuit_breaker_abierto(
    parts: Parts,
    docker: Recorder,
    redis_server: RedisServer,
    api: tuple[ThreadedApp, standin.AgenteApi],
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "circuit-breaker-abierto"))
    assert "pms_circuit_breaker_state" in results["Estado del circuit breaker"].output
    calls = results["Intentos recientes"]
    assert calls.summary == "2 series" and "failure" in calls.output and "rejected" in calls.output
    assert docker.calls()[-1] == ["logs", "--tail", "300", "agente-api-prod"]
    assert await classifications(runner, "circuit-breaker-abierto", {}) == {
        "check-pms": READ,
        "raise-recovery-timeout": READ,
        "restart-api": MUTATES,
        "fallback-flag": MUTATES,
        "fallback-flag-api": MUTATES,
    }
    pms = await run_read_action(runner, "circuit-breaker-abierto", "check-pms")
    assert "200" in pms.summary

    flag = "feature_flags:pms.fallback.enabled"
    preview = await preview_action(runner, "circuit-breaker-abierto", "fallback-flag")
    with redis_server.sync_client() as client:
        assert client.get(flag) == "false"
        await confirm_and_run(runner, "circuit-breaker-abierto", "fallback-flag")
        assert client.get(flag) == "true"
    assert preview is None or preview.error is None

    await confirm_and_run(runner, "circuit-breaker-abierto", "fallback-flag-api")
    assert api[1].admin[-1] == (
        "/admin/feature-flags",
        {"flag": "pms.fallback.enabled", "enabled": True},
    )
    await confirm_and_run(runner, "circuit-breaker-abierto", "restart-api")
    assert docker.calls()[-1] == ["restart", "agente-api-prod"]
    assert len(tick_manual(runner, "circuit-breaker-abierto")) == 1


async def test_database_critico(parts: Parts, db: asyncpg.Connection, docker: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "database-critico"))
    assert results["Conexión directa (SELECT 1)"].ok
    assert docker.calls()[-3:] == [
        ["ps", "--filter", "name=postgres-prod"],
        ["logs", "--tail", "50", "postgres-prod"],
        ["exec", "postgres-prod", "df", "-h"],
    ]
    assert await classifications(runner, "database-critico", {}) == {
        "restart-postgres": MUTATES,
        "delete-old-logs": MUTATES,
        "restore-backup": READ,
        "compose-up-postgres": MUTATES,
    }
    preview = await preview_action(runner, "database-critico", "delete-old-logs")
    assert preview is not None
    assert preview.lines == ("DELETE affects 40 rows (measured in a rolled-back transaction)",)
    assert await db.fetchval("SELECT count(*) FROM logs") == 55
    prepared = await runner.prepare_action("database-critico", "delete-old-logs")
    assert prepared.danger == "high"
    outcome = await confirm_and_run(runner, "database-critico", "delete-old-logs")
    assert outcome.summary == "DELETE 40"
    assert await db.fetchval("SELECT count(*) FROM logs") == 15
    await confirm_and_run(runner, "database-critico", "restart-postgres")
    then = await runner.run_then(
        await runner.prepare_action("database-critico", "restart-postgres")
    )
    assert then is not None and then.ok
    await confirm_and_run(runner, "database-critico", "compose-up-postgres")
    assert docker.calls()[-2:] == [
        ["restart", "postgres-prod"],
        ["compose", "up", "-d", "postgres-prod"],
    ]


async def test_rate_limiting(
    parts: Parts,
    docker: Recorder,
    redis_server: RedisServer,
    api: tuple[ThreadedApp, standin.AgenteApi],
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "rate-limiting"))
    assert "120" in results["Límite actual (rate_limit:max_requests)"].output
    assert "false" in results["Modo estricto (rate_limit:strict_mode)"].output
    rejected = results["Tasa de 429 (Prometheus)"].output.splitlines()
    assert "status" in rejected[0] and "429" in rejected[1]
    ip = {"ip": "192.168.1.100"}
    assert await classifications(
        runner, "rate-limiting", {"block-ip-nginx": ip, "block-ip-iptables": ip}
    ) == {
        "block-ip-nginx": MUTATES,
        "block-ip-iptables": MUTATES,
        "set-max-requests": MUTATES,
        "set-limits-api": MUTATES,
        "strict-mode": MUTATES,
        "notify-security": READ,
    }
    await confirm_and_run(runner, "rate-limiting", "block-ip-nginx", ip)
    await confirm_and_run(runner, "rate-limiting", "block-ip-iptables", ip)
    assert docker.calls()[-2:] == [
        [
            "exec",
            "nginx-prod",
            "sh",
            "-c",
            'echo "deny $1;" >> /etc/nginx/conf.d/blacklist.conf && nginx -s reload',
            "sh",
            "192.168.1.100",
        ],
        ["exec", "nginx-prod", "iptables", "-A", "INPUT", "-s", "192.168.1.100", "-j", "DROP"],
    ]
    with redis_server.sync_client() as client:
        await confirm_and_run(runner, "rate-limiting", "set-max-requests")
        assert client.get("rate_limit:max_requests") == "300"
        await confirm_and_run(runner, "rate-limiting", "set-max-requests", {"max_requests": "60"})
        assert client.get("rate_limit:max_requests") == "60"
        await confirm_and_run(runner, "rate-limiting", "strict-mode")
        assert client.get("rate_limit:strict_mode") == "true"
    await confirm_and_run(runner, "rate-limiting", "set-limits-api")
    assert api[1].admin[-1] == ("/admin/rate-limits", {"max_requests": 300, "window_seconds": 60})
    assert tick_manual(runner, "rate-limiting") == ["Notificar a equipo de seguridad"]


async def test_p95_latency(parts: Parts, db: asyncpg.Connection, redis_server: RedisServer) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "p95-latency"))
    assert "GET /availability" in results["Operaciones lentas (Jaeger traces)"].output
    slow = results["Queries lentas (pg_stat_statements, mean > 100 ms)"]
    assert "pg_sleep" in slow.output
    assert "used_memory" in results["Tamaño de cache (INFO memory)"].output
    assert await classifications(runner, "p95-latency", {}) == {
        "open-jaeger": READ,
        "create-index": MUTATES,
        "redis-maxmemory": MUTATES,
        "redis-eviction": MUTATES,
    }
    index = "SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_sessions_guest_id'"
    preview = await preview_action(runner, "p95-latency", "create-index")
    assert preview is not None and preview.error is None
    assert await db.fetchval(index) == 0
    await confirm_and_run(runner, "p95-latency", "create-index")
    assert await db.fetchval(index) == 1

    preview = await preview_action(runner, "p95-latency", "redis-maxmemory")
    assert preview is not None and preview.lines == ("maxmemory 0 -> 1gb",)
    await confirm_and_run(runner, "p95-latency", "redis-maxmemory")
    await confirm_and_run(runner, "p95-latency", "redis-eviction")
    with redis_server.sync_client() as client:
        assert client.config_get("maxmemory") == {"maxmemory": str(1024**3)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    assert tick_manual(runner, "p95-latency") == ["Analizar traces en Jaeger (duración > 300 ms)"]


async def test_memory_leak(parts: Parts, docker: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "memory-leak"))
    assert "process_resident_memory_bytes" in results["Memoria residente"].output
    assert docker.calls()[-1] == ["stats", "agente-api-prod", "--no-stream"]
    assert await classifications(runner, "memory-leak", {}) == {
        "graceful-stop": MUTATES,
        "start-api": MUTATES,
        "scheduled-restart": READ,
        "profile-memory": READ,
    }
    await confirm_and_run(runner, "memory-leak", "graceful-stop")
    await confirm_and_run(runner, "memory-leak", "start-api")
    assert docker.calls()[-2:] == [
        ["kill", "--signal", "SIGTERM", "agente-api-prod"],
        ["start", "agente-api-prod"],
    ]
    then = await runner.run_then(await runner.prepare_action("memory-leak", "start-api"))
    assert then is not None and then.ok
    assert len(tick_manual(runner, "memory-leak")) == 2


async def test_the_three_alerts(parts: Parts, docker: Recorder) -> None:
    runner = parts.runner
    await run_diagnose(runner, "alert-high-error-rate")
    assert docker.calls()[-1] == LOGS
    assert await classifications(runner, "alert-high-error-rate", {}) == {"check-causes": READ}
    results = dict(await run_diagnose(runner, "alert-service-degradation"))
    assert '"degraded"' in results["Dependencias"].output
    assert await classifications(runner, "alert-service-degradation", {}) == {"check-related": READ}
    assert await classifications(runner, "alert-pod-memory", {}) == {
        "reduce-traffic": READ,
        "restart-api": MUTATES,
    }
    await confirm_and_run(runner, "alert-pod-memory", "restart-api")
    assert docker.calls()[-1] == ["restart", "agente-api-prod"]
    for runbook in ("alert-high-error-rate", "alert-service-degradation", "alert-pod-memory"):
        assert len(tick_manual(runner, runbook)) == 1


async def test_escalacion(parts: Parts, docker: Recorder) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "escalacion"))
    assert '"activeTargets"' in results["Capturar targets de Prometheus"].output
    assert "feat: availability cache" in results["Commits recientes"].output
    stable = results["Último commit estable"].output
    assert "PRODUCTION STABLE: v1.4.2" in stable and "availability" not in stable
    assert docker.calls()[-2:] == [["ps"], ["logs", "--tail", "1000", "agente-api-prod"]]
    assert await classifications(runner, "escalacion", {}) == {
        "contact": READ,
        "post-incident": READ,
    }
    assert len(tick_manual(runner, "escalacion")) == 2


async def test_verificacion_recuperacion(
    parts: Parts, api: tuple[ThreadedApp, standin.AgenteApi]
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "verificacion-recuperacion"))
    assert results["4 Alertas activas (debe ser 0)"].output.endswith("\n\n[]")
    assert await classifications(runner, "verificacion-recuperacion", {}) == {"api-test": MUTATES}
    outcome = await confirm_and_run(runner, "verificacion-recuperacion", "api-test")
    assert '"success"' in outcome.output
    assert api[1].admin[-1] == ("/api/test", {"message": "test"})
