"""examples/whatsapp-agent.yaml (seed 003) against a stand-in of WhatsApp Agent: the app and
the outside services it calls, real PostgreSQL (conversations, pg_stat_statements), real
Redis with cache keys, and a project directory whose logs, scripts and tools (recorders for
docker, certbot, iptables...) the guide's commands run on. Every probe reads real data;
every runbook is walked end to end through a Runner."""

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
from tests.systems.remember_me.harness import (
    EXAMPLES,
    Parts,
    ThreadedApp,
    classifications,
    confirm_and_run,
    load_example,
    make_runner,
    run_diagnose,
    run_read_action,
    tick_manual,
)
from tests.systems.whatsapp_agent import standin

READ = Classification.READ_ONLY
MUTATES = Classification.MUTATING
DB_USER = "wa_user"
PG_ISREADY = ["compose", "exec", "-T", "postgres", "pg_isready", "-U", DB_USER]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with postgres_with_database(
        tmp_path_factory.mktemp("wa-pg"), "whatsapp_agent",
        settings={"shared_preload_libraries": "pg_stat_statements"},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def dsn(pg: PostgresServer) -> str:
    return pg.dsn_for(database="whatsapp_agent")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("wa-redis")) as server:
        yield server


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[ThreadedApp, standin.WhatsappAgent]]:
    with app_in_thread(standin.WhatsappAgent(), lambda state: state.app()) as served:
        yield served


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> standin.Project:
    return standin.make_project(tmp_path_factory.mktemp("wa-project"))


@pytest.fixture(scope="module")
def config(
    api: tuple[ThreadedApp, standin.WhatsappAgent],
    dsn: str,
    redis_server: RedisServer,
    project: standin.Project,
) -> Config:
    url = api[0].url
    return load_example(
        "whatsapp-agent.yaml",
        {
            # opstui substitutes ${DB_USER} in shell argv when it loads the config
            "DB_USER": DB_USER,
            "DB_NAME": "whatsapp_agent",
            "WHATSAPP_AGENT_ENV": "staging",
            "WHATSAPP_AGENT_URL": url,
            "WHATSAPP_AGENT_PUBLIC_URL": url,
            "OPENAI_URL": url,
            "OPENAI_API_KEY": standin.OPENAI_KEY,
            "META_GRAPH_URL": url,
            "META_ACCESS_TOKEN": standin.META_TOKEN,
            "PHONE_NUMBER_ID": "1098765",
            "SECURITY_WEBHOOK": f"{url}/security-hook",
            "WHATSAPP_AGENT_REDIS_URL": redis_server.url,
            "WHATSAPP_AGENT_DATABASE_URL": dsn,
            "WHATSAPP_AGENT_BIN": str(project.bin),
            "WHATSAPP_AGENT_DIR": str(project.root),
        },
    )


@pytest.fixture
async def db(
    dsn: str, redis_server: RedisServer, project: standin.Project
) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    await conn.execute(standin.SCHEMA)
    await conn.execute(standin.SLOW_QUERY)
    with redis_server.sync_client() as client:
        standin.seed_redis(client)
    project.write_logs()
    yield conn
    await conn.close()


@pytest.fixture
async def parts(
    config: Config, tmp_path: Path, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Parts]:
    monkeypatch.setenv("DB_USER", DB_USER)  # the shell steps read it from the environment
    monkeypatch.setenv("DB_NAME", "whatsapp_agent")
    made = make_runner(config, tmp_path)
    yield made
    await made.close()


def test_opstui_validate_accepts_the_example_without_any_environment() -> None:
    prefixes = ("WHATSAPP_AGENT_", "OPENAI_", "META_", "DB_", "PHONE_", "SECURITY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "opstui",
            "validate",
            "--config",
            str(EXAMPLES / "whatsapp-agent.yaml"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok (6 probes, 1 views)" in result.stdout


async def test_every_probe_reads_real_data(config: Config, db: asyncpg.Connection) -> None:
    snapshots = {s.probe_id: s for s in await check_once(config)}
    assert set(snapshots) == {p.id for p in config.probes}
    problems = {
        pid: (s.state, s.error or s.no_data)
        for pid, s in snapshots.items()
        if s.state in (State.ERROR, State.NODATA) or s.value is None
    }
    assert problems == {}
    for pid in ("health", "performance", "business", "db", "slow-queries", "redis-memory"):
        assert snapshots[pid].state is State.OK, (pid, snapshots[pid].state)
    assert snapshots["slow-queries"].value is not None and snapshots["slow-queries"].value >= 140
    ratio = snapshots["redis-memory"].value
    assert ratio is not None and 0 < ratio < 0.8


async def test_sistema_indisponivel(parts: Parts, project: standin.Project) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "sistema-indisponivel"))
    assert "Filesystem" in results["Espaço em disco"].output
    assert "Mem:" in results["Memória"].output and "PID" in results["Processos top"].output
    assert project.docker()[-2:] == [["compose", "ps"], ["compose", "logs", "--tail=50", "app"]]
    assert await classifications(runner, "sistema-indisponivel", {}) == {
        "compose-down": MUTATES,
        "compose-up": MUTATES,
        "system-prune": MUTATES,
        "rebuild": MUTATES,
        "rollback": MUTATES,
        "monitor-health": READ,
        "escalate": READ,
    }
    for action in ("compose-down", "compose-up", "system-prune", "rebuild", "rollback"):
        await confirm_and_run(runner, "sistema-indisponivel", action)
    assert project.docker()[-4:] == [
        ["compose", "down"],
        ["compose", "up", "-d"],
        ["system", "prune", "-f"],
        ["compose", "build", "--no-cache"],
    ]
    assert project.scripts["rolling_update.sh"].calls()[-1] == ["rollback"]
    then = await runner.run_then(await runner.prepare_action("sistema-indisponivel", "compose-up"))
    assert then is not None and then.ok
    await run_read_action(runner, "sistema-indisponivel", "monitor-health")
    assert project.scripts["monitor_health.sh"].calls()[-1] == []
    assert tick_manual(runner, "sistema-indisponivel") == [
        "Acionar Engenheiro DevOps (> 10 minutos)"
    ]


async def test_banco_inacessivel(parts: Parts, project: standin.Project) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "banco-inacessivel"))
    assert "PostgreSQL" in results["Conectividade (SELECT version())"].output
    assert project.docker()[-4:] == [
        ["compose", "ps", "postgres"],
        ["compose", "logs", "postgres", "--tail=100"],
        PG_ISREADY,
        ["system", "df"],
    ]
    kinds = await classifications(runner, "banco-inacessivel", {})
    assert set(kinds.values()) == {MUTATES} and len(kinds) == 7
    logs = project.root / "logs"
    await confirm_and_run(runner, "banco-inacessivel", "delete-old-logs")
    assert not (logs / "old.log").exists() and (logs / "app.log").exists()
    assert (logs / "app.log.1").exists()
    for action in (
        "start-postgres",
        "system-prune",
        "stop-postgres",
        "restore-backup",
        "remove-volume",
        "migrate",
    ):
        await confirm_and_run(runner, "banco-inacessivel", action)
    assert project.docker()[-5:] == [
        ["compose", "up", "-d", "postgres"],
        ["system", "prune", "-f"],
        ["compose", "down", "postgres"],
        ["volume", "rm", "whatsapp_postgres_data"],
        ["compose", "exec", "-T", "app", "alembic", "upgrade", "head"],
    ]
    assert project.scripts["restore_backup.sh"].calls()[-1] == ["latest"]
    volume = await runner.prepare_action("banco-inacessivel", "remove-volume")
    assert volume.danger == "high"
    then = await runner.run_then(await runner.prepare_action("banco-inacessivel", "start-postgres"))
    assert then is not None and then.ok


async def test_webhook_falhando(
    parts: Parts, project: standin.Project, api: tuple[ThreadedApp, standin.WhatsappAgent]
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "webhook-falhando"))
    assert results["Logs de webhook"].output.count("webhook") == 3
    assert "POST /webhook 200" in results["POST /webhook nos logs"].output
    assert project.docker()[-1] == ["compose", "exec", "-T", "nginx", "nginx", "-t"]
    assert await classifications(runner, "webhook-falhando", {}) == {
        "test-local": MUTATES,
        "test-external": MUTATES,
        "renew-certificate": MUTATES,
        "restart-nginx": MUTATES,
        "restart-app": MUTATES,
        "firewall": READ,
        "rate-limits": READ,
    }
    received = len(api[1].received)
    await confirm_and_run(runner, "webhook-falhando", "test-local")
    await confirm_and_run(runner, "webhook-falhando", "test-external")
    payload = {"object": "whatsapp_business_account", "entry": []}
    assert api[1].received[received:] == [("/webhook", payload), ("/webhook", payload)]
    await confirm_and_run(runner, "webhook-falhando", "renew-certificate")
    assert project.tools["certbot"].calls()[-1] == ["renew", "--force-renewal"]
    await confirm_and_run(runner, "webhook-falhando", "restart-nginx")
    await confirm_and_run(runner, "webhook-falhando", "restart-app")
    assert project.docker()[-2:] == [["compose", "restart", "nginx"], ["compose", "restart", "app"]]
    limits = await run_read_action(runner, "webhook-falhando", "rate-limits")
    assert "RATE_LIMIT_PER_MINUTE" in limits.output
    assert tick_manual(runner, "webhook-falhando") == ["Caso 3: firewall/proxy"]


async def test_performance_degradada(
    parts: Parts, project: standin.Project, redis_server: RedisServer
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "performance-degradada"))
    assert '"sla_metrics"' in results["Métricas de performance"].output
    assert "pg_sleep" in results["Performance do banco (pg_stat_statements)"].output
    assert "took 2400ms" in results["Logs de performance (slow, timeout, took)"].output
    assert "Iface" in results["Network (netstat -i)"].output
    assert project.tools["iostat"].calls()[-1] == ["1", "5"]
    assert await classifications(runner, "performance-degradada", {}) == {
        "restart-app": MUTATES,
        "flushall": MUTATES,
        "optimize-db": MUTATES,
        "scale-app": MUTATES,
        "reset-stats": MUTATES,
    }
    await confirm_and_run(runner, "performance-degradada", "restart-app")
    then = await runner.run_then(
        await runner.prepare_action("performance-degradada", "restart-app")
    )
    assert then is not None and then.ok
    flush = await runner.prepare_action("performance-degradada", "flushall")
    assert flush.danger == "high"
    with redis_server.sync_client() as client:
        assert client.dbsize() == 20
        await confirm_and_run(runner, "performance-degradada", "flushall")
        assert client.dbsize() == 0
        client.select(1)
        assert client.dbsize() == 0  # FLUSHALL: every database
    await confirm_and_run(runner, "performance-degradada", "optimize-db")
    assert project.tools["python"].calls()[-1] == ["scripts/run_optimizations.py"]
    await confirm_and_run(runner, "performance-degradada", "scale-app", {"replicas": "3"})
    await confirm_and_run(runner, "performance-degradada", "reset-stats")
    assert project.docker()[-2:] == [
        ["compose", "up", "-d", "--scale", "app=3"],
        [
            "compose",
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            DB_USER,
            "-c",
            "SELECT pg_stat_reset();",
        ],
    ]


async def test_error_rate_elevada(parts: Parts, project: standin.Project) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "error-rate-elevada"))
    assert results["Erros por tipo (ERROR, 500, CRITICAL)"].output.count("\n") >= 3
    assert results["Respostas 5xx no access log (nginx)"].output.strip() == "2"
    common = results["Erros mais comuns"].output
    assert "2 TimeoutError" in common and "1 RateLimitError" in common
    assert "gpt-4o-mini" in results["Dependência OpenAI"].output
    assert results["Dependência Meta"].ok and results["Integridade da aplicação"].ok
    assert await classifications(runner, "error-rate-elevada", {}) == {
        "check-fallbacks": READ,
        "recent-changes": READ,
        "rollback": MUTATES,
        "validate-configuration": READ,
        "validate-secrets": READ,
        "restart-app": MUTATES,
    }
    fallbacks = await run_read_action(runner, "error-rate-elevada", "check-fallbacks")
    assert "retry" in fallbacks.output
    changes = await run_read_action(runner, "error-rate-elevada", "recent-changes")
    assert "deploy: new prompt" in changes.output
    await run_read_action(runner, "error-rate-elevada", "validate-configuration")
    await run_read_action(runner, "error-rate-elevada", "validate-secrets")
    assert project.scripts["validate_secrets.py"].calls()[-1] == []
    await confirm_and_run(runner, "error-rate-elevada", "rollback")
    assert project.scripts["rolling_update.sh"].calls()[-1] == ["rollback"]
    await confirm_and_run(runner, "error-rate-elevada", "restart-app")
    assert project.docker()[-1] == ["compose", "restart", "app"]


async def test_alertas_seguranca(
    parts: Parts, project: standin.Project, api: tuple[ThreadedApp, standin.WhatsappAgent]
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "alertas-seguranca"))
    assert "10.0.0.9" in results["Logs de segurança"].output
    assert "auth login failed" in results["Tentativas de login falhas"].output
    assert results["IPs suspeitos (top 20)"].output.split()[:2] == ["3", "10.0.0.9"]
    assert "openai_client.py" in results["Checksums do código (comparar com os conhecidos)"].output
    ip = {"block-ip": {"ip": "10.0.0.9"}}
    assert await classifications(runner, "alertas-seguranca", ip) == {
        "block-ip": MUTATES,
        "rotate-secrets": READ,
        "isolate": MUTATES,
        "notify-security": MUTATES,
    }
    await confirm_and_run(runner, "alertas-seguranca", "block-ip", ip["block-ip"])
    assert project.tools["iptables"].calls()[-1] == ["-A", "INPUT", "-s", "10.0.0.9", "-j", "DROP"]
    await confirm_and_run(runner, "alertas-seguranca", "isolate")
    assert project.docker()[-1] == ["compose", "down"]
    await confirm_and_run(runner, "alertas-seguranca", "notify-security")
    assert api[1].received[-1] == ("/security-hook", {"text": "🚨 Incident detected"})
    assert tick_manual(runner, "alertas-seguranca") == ["2 Regenerar tokens/senhas comprometidos"]


async def test_logs_enchendo_disco(parts: Parts, project: standin.Project) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "logs-enchendo-disco"))
    assert "logs/app.log" in results["Tamanho dos logs"].output
    assert results["Logs grandes (> 100M)"].output.strip() == ""
    kinds = await classifications(runner, "logs-enchendo-disco", {})
    assert kinds == {
        "delete-old-logs": MUTATES,
        "delete-rotated-logs": MUTATES,
        "logrotate": MUTATES,
        "log-level": READ,
    }
    logs = project.root / "logs"
    await confirm_and_run(runner, "logs-enchendo-disco", "delete-old-logs")
    await confirm_and_run(runner, "logs-enchendo-disco", "delete-rotated-logs")
    assert sorted(os.listdir(logs)) == ["access.log", "app.log", "performance.log", "security.log"]
    await confirm_and_run(runner, "logs-enchendo-disco", "logrotate")
    assert project.tools["logrotate"].calls()[-1] == ["-f", "/etc/logrotate.conf"]
    assert tick_manual(runner, "logs-enchendo-disco") == ["Ajustar nível de log"]


async def test_cache_redis_cheio(parts: Parts, redis_server: RedisServer) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "cache-redis-cheio"))
    assert "maxmemory:67108864" in results["Uso de memória do Redis"].output
    assert await classifications(runner, "cache-redis-cheio", {}) == {
        "flushdb": MUTATES,
        "eviction-policy": MUTATES,
    }
    flush = await runner.prepare_action("cache-redis-cheio", "flushdb")
    assert flush.danger == "high"
    with redis_server.sync_client() as client:
        assert client.dbsize() == 20
        await confirm_and_run(runner, "cache-redis-cheio", "flushdb")
        assert client.dbsize() == 0
        client.select(1)
        assert client.get("sessions:keep") == "1"  # FLUSHDB: this database only
        await confirm_and_run(runner, "cache-redis-cheio", "eviction-policy")
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}


async def test_dependencias_externas(parts: Parts) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "dependencias-externas"))
    assert "gpt-4o-mini" in results["OpenAI API"].output
    assert "RateLimitError" in results["Erros OpenAI nos logs"].output
    assert '"1098765"' in results["Meta WhatsApp API"].output
    assert await classifications(runner, "dependencias-externas", {}) == {
        "openai-fallback": READ,
        "meta-status": READ,
    }
    assert len(tick_manual(runner, "dependencias-externas")) == 2


async def test_recovery_aplicacao_and_banco(
    parts: Parts, project: standin.Project, db: asyncpg.Connection
) -> None:
    runner = parts.runner
    await run_diagnose(runner, "recovery-aplicacao")
    kinds = await classifications(runner, "recovery-aplicacao", {})
    assert set(kinds.values()) == {MUTATES} and len(kinds) == 4
    for action in ("soft-restart", "stop-app", "remove-app", "start-app"):
        await confirm_and_run(runner, "recovery-aplicacao", action)
    assert project.docker()[-4:] == [
        ["compose", "restart", "app"],
        ["compose", "stop", "app"],
        ["compose", "rm", "-f", "app"],
        ["compose", "up", "-d", "app"],
    ]
    then = await runner.run_then(await runner.prepare_action("recovery-aplicacao", "start-app"))
    assert then is not None and then.ok

    results = dict(await run_diagnose(runner, "recovery-banco"))
    assert results["4 Verificar integridade (conversations)"].output.splitlines()[2].strip() == "50"
    kinds = await classifications(runner, "recovery-banco", {})
    assert set(kinds.values()) == {MUTATES} and len(kinds) == 4
    before = set(os.listdir(project.root))
    for action in ("stop-app", "emergency-dump", "restore-backup", "start-app"):
        await confirm_and_run(runner, "recovery-banco", action)
    dumps = [n for n in set(os.listdir(project.root)) - before if n.startswith("emergency_backup_")]
    assert len(dumps) == 1
    assert project.docker()[-3:] == [
        ["compose", "stop", "app"],
        ["compose", "exec", "-T", "postgres", "pg_dump", "-U", DB_USER, "whatsapp_agent"],
        ["compose", "up", "-d", "app"],
    ]
    (project.root / dumps[0]).unlink()


async def test_recovery_configuracao_and_disaster(parts: Parts, project: standin.Project) -> None:
    runner = parts.runner
    assert await classifications(runner, "recovery-configuracao", {}) == {
        "git-restore": MUTATES,
        "backup-restore": MUTATES,
        "validate-configuration": READ,
        "compose-down": MUTATES,
        "compose-up": MUTATES,
    }
    env = project.root / ".env"
    env.write_text("LOG_LEVEL=broken\n")
    await confirm_and_run(runner, "recovery-configuracao", "git-restore")
    assert env.read_text() == standin.ENV_FILE
    await confirm_and_run(runner, "recovery-configuracao", "backup-restore")
    assert (project.root / "restored-config.txt").read_text() == "restored from backup\n"
    await run_read_action(runner, "recovery-configuracao", "validate-configuration")
    await confirm_and_run(runner, "recovery-configuracao", "compose-down")
    await confirm_and_run(runner, "recovery-configuracao", "compose-up")
    assert project.docker()[-2:] == [["compose", "down"], ["compose", "up", "-d"]]
    for name in os.listdir(project.root):
        if name.startswith(("config_", "restored-config")):
            (project.root / name).unlink()

    params = {"restore-full": {"backup_path": "/backups/full/2025-08-09"}}
    assert await classifications(runner, "disaster-recovery", params) == {
        "new-server": READ,
        "restore-full": MUTATES,
        "validate-configuration": READ,
        "compose-up": MUTATES,
        "monitor-health": READ,
        "dns": READ,
    }
    await confirm_and_run(runner, "disaster-recovery", "restore-full", params["restore-full"])
    assert project.scripts["restore_full_backup.sh"].calls()[-1] == ["/backups/full/2025-08-09"]
    await confirm_and_run(runner, "disaster-recovery", "compose-up")
    await run_read_action(runner, "disaster-recovery", "monitor-health")
    assert len(tick_manual(runner, "disaster-recovery")) == 2


async def test_teste_funcional_and_checklist(
    parts: Parts, project: standin.Project, api: tuple[ThreadedApp, standin.WhatsappAgent]
) -> None:
    runner = parts.runner
    results = dict(await run_diagnose(runner, "teste-funcional"))
    assert '"messages_today": 1234' in results["4 Metrics"].output
    assert '"count": 0' in results["Alertas ativos"].output
    assert project.docker()[-1] == PG_ISREADY
    assert await classifications(runner, "teste-funcional", {}) == {"webhook-test": MUTATES}
    await confirm_and_run(runner, "teste-funcional", "webhook-test")
    assert api[1].received[-1][0] == "/webhook"
    kinds = await classifications(runner, "checklist", {})
    assert set(kinds.values()) == {READ} and len(kinds) == 6
    assert len(tick_manual(runner, "checklist")) == 6
    assert parts.audit.path.read_text().count('"kind": "manual"') == 6
