"""The redis executor against a real redis-server: classification by COMMAND INFO, previews,
execution and redis-cli-like output, called directly (the Runner's gate is tested separately)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from opstui.actions.base import Classification, Outcome, PreparedStep, Progress
from opstui.actions.context import ExecutionContext
from opstui.actions.executors.redis import (
    CommandInfoUnavailable,
    RedisExecutor,
    format_reply,
    redis_cli,
)
from opstui.actions.runner import Refused
from opstui.config.kinds.redis import RedisConnection
from opstui.config.models import Config
from opstui.engine.snapshot import ProbeSnapshot
from opstui.sources.registry import ClientPool
from tests.actions.support import make_runner
from tests.servers.redis import RedisServer, commandstats
from tests.servers.started import redis_started
from tests.support import free_port, require_binary

FAILED = "bull:anclora-whatsapp:failed"


class NoProbes:
    """A ProbeReader with no readings: redis steps never read probes."""

    def current(self, probe_id: str) -> ProbeSnapshot | None:
        return None

    async def fresh(self, probe_id: str) -> ProbeSnapshot:
        raise KeyError(probe_id)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_started(tmp_path_factory.mktemp("redis-exec")) as server:
        yield server


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.sync_client()
    client.flushall()
    yield client
    client.close()


def make_config(url: str, **runbook: Any) -> Config:
    data: dict[str, Any] = {"connections": {"r": {"kind": "redis", "url": url}}}
    if runbook:
        data["runbooks"] = [{"id": "rb", "title": "Redis", **runbook}]
    return Config.model_validate(data)


@pytest.fixture
async def ctx(redis_server: RedisServer, r: redis.Redis) -> AsyncIterator[ExecutionContext]:
    pool = ClientPool()
    yield ExecutionContext(make_config(redis_server.url), pool, NoProbes())
    await pool.aclose()


def step(*argv: str, **rendered: Any) -> PreparedStep:
    return PreparedStep(
        kind="redis",
        title=" ".join(argv),
        runbook_id=None,
        action_id=None,
        step_index=None,
        connection="r",
        params={},
        rendered={"command": list(argv), **rendered},
        equivalent="",
        target=argv[-1],
        environment=None,
    )


async def run(ctx: ExecutionContext, prepared: PreparedStep, *, read_only: bool) -> Outcome:
    lines: list[str] = []
    outcome = await RedisExecutor().execute(
        prepared, ctx, read_only=read_only, output=lines.append, progress=Progress()
    )
    assert lines == ([outcome.output] if outcome.output else [])
    return outcome


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("GET", "k"),
        ("LLEN", "bull:q:wait"),
        ("INFO",),
        ("info", "memory"),
        ("PING",),
        ("SLOWLOG", "GET", "10"),
        ("CLIENT", "LIST"),
        ("XINFO", "GROUPS", "s"),
        ("EVAL_RO", "return 1", "0"),
        ("CONFIG", "GET", "maxclients"),
        ("MEMORY", "USAGE", "k"),
        ("LATENCY", "LATEST"),
    ],
)
async def test_reads_are_read_only(ctx: ExecutionContext, argv: tuple[str, ...]) -> None:
    verdict = await RedisExecutor().classify(step(*argv), ctx)
    assert verdict.classification is Classification.READ_ONLY, verdict
    assert verdict.overruled is None


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("SET", "k", "v"), "Redis flags SET as write"),
        (("DEL", "k"), "Redis flags DEL as write"),
        (("EXPIRE", "k", "10"), "Redis flags EXPIRE as write"),
        (("CONFIG", "SET", "maxclients", "20"), "CONFIG SET is always treated as mutating"),
        (("CONFIG", "REWRITE"), "CONFIG REWRITE is always treated as mutating"),
        (("SLOWLOG", "RESET"), "SLOWLOG RESET is always treated as mutating"),
        (("MEMORY", "PURGE"), "MEMORY PURGE is always treated as mutating"),
        (("CLIENT", "KILL", "ID", "1"), "CLIENT KILL is always treated as mutating"),
        (("FLUSHDB",), "FLUSHDB is always treated as mutating"),
        (("EVAL", "return 1", "0"), "EVAL is always treated as mutating"),
        (("PUBLISH", "ch", "m"), "PUBLISH is always treated as mutating"),
        (("XGROUP", "CREATE", "s", "g", "$"), "Redis flags XGROUP CREATE as write"),
        (("KEYS", "*"), "Redis files KEYS under @dangerous"),
        (("LASTSAVE",), "Redis flags LASTSAVE as admin"),
    ],
)
async def test_writes_and_admin_are_mutating(
    ctx: ExecutionContext, argv: tuple[str, ...], reason: str
) -> None:
    verdict = await RedisExecutor().classify(step(*argv), ctx)
    assert verdict.mutating
    assert verdict.reason == reason
    assert verdict.overruled is None


async def test_a_readonly_claim_on_a_write_is_overruled(ctx: ExecutionContext) -> None:
    verdict = await RedisExecutor().classify(step("DEL", FAILED, readonly=True), ctx)
    assert verdict.mutating
    assert verdict.overruled == "config says readonly, Redis flags DEL as write"


async def test_the_claim_is_read_from_the_config_too(
    redis_server: RedisServer, r: redis.Redis
) -> None:
    config = make_config(
        redis_server.url,
        diagnose=[
            {
                "title": "drop",
                "kind": "redis",
                "connection": "r",
                "command": ["DEL", "k"],
                "readonly": True,
            },
            {
                "title": "len",
                "kind": "redis",
                "connection": "r",
                "command": ["LLEN", "k"],
                "readonly": False,
            },
        ],
    )
    pool = ClientPool()
    ctx = ExecutionContext(config, pool, NoProbes())
    executor = RedisExecutor()
    try:
        drop = PreparedStep(
            "redis", "drop", "rb", None, 0, "r", {}, {"command": ["DEL", "k"]}, "", "k", None
        )
        verdict = await executor.classify(drop, ctx)
        assert verdict.overruled == "config says readonly, Redis flags DEL as write"
        length = PreparedStep(
            "redis", "len", "rb", None, 1, "r", {}, {"command": ["LLEN", "k"]}, "", "k", None
        )
        verdict = await executor.classify(length, ctx)
        assert verdict.mutating and verdict.reason == "declared readonly: false"
    finally:
        await pool.aclose()


async def test_unknown_commands_are_errors_and_never_sent(
    ctx: ExecutionContext, r: redis.Redis
) -> None:
    executor = RedisExecutor()
    verdict = await executor.classify(step("FROBNICATE", "k"), ctx)
    assert verdict.mutating and verdict.reason == "Redis does not know FROBNICATE"
    outcome = await run(ctx, step("FROBNICATE", "k"), read_only=False)
    assert not outcome.ok and outcome.error == "unknown command FROBNICATE"
    verdict = await executor.classify(step("CONFIG", "FROB", "x"), ctx)
    assert verdict.reason == "Redis does not know CONFIG FROB"
    outcome = await run(ctx, step("CONFIG", "FROB", "x"), read_only=False)
    assert not outcome.ok and outcome.error == "unknown command CONFIG FROB"


async def test_command_info_is_cached_per_connection(ctx: ExecutionContext, r: redis.Redis) -> None:
    executor = RedisExecutor()
    await executor.classify(step("GET", "a"), ctx)
    before = commandstats(r).get("command|info", 0)
    for key in ("b", "c", "d"):
        assert not (await executor.classify(step("GET", key), ctx)).mutating
    assert commandstats(r).get("command|info", 0) == before
    await executor.classify(step("DEL", "a"), ctx)  # another command: one more lookup
    assert commandstats(r).get("command|info", 0) == before + 1


async def test_without_command_info_everything_is_mutating(tmp_path: Any) -> None:
    server = RedisServer(
        tmp_path, binary=require_binary("redis-server"), extra=["--rename-command", "COMMAND", ""]
    )
    server.start()
    pool = ClientPool()
    try:
        ctx = ExecutionContext(make_config(server.url), pool, NoProbes())
        executor = RedisExecutor()
        verdict = await executor.classify(step("GET", "k", readonly=True), ctx)
        assert verdict.mutating
        assert verdict.reason.startswith("COMMAND INFO unavailable (unknown command 'COMMAND'")
        assert verdict.reason.endswith("): assumed mutating")
        assert verdict.overruled is not None
        refused = await run(ctx, step("GET", "k"), read_only=True)
        assert not refused.ok and "COMMAND INFO unavailable" in refused.summary
        confirmed = await run(ctx, step("SET", "k", "v"), read_only=False)
        assert confirmed.ok and confirmed.summary == "OK"
    finally:
        await pool.aclose()
        server.stop()


# --- previews -------------------------------------------------------------------------------


async def test_del_preview_shows_type_size_ttl_and_leaves_the_keys(
    ctx: ExecutionContext, r: redis.Redis
) -> None:
    r.zadd(FAILED, {f"job-{i}": i for i in range(1204)})
    r.rpush("bull:q:wait", "a", "b", "c")
    r.expire("bull:q:wait", 300)
    r.set("plain", "hello")
    preview = await RedisExecutor().preview(
        step("DEL", FAILED, "bull:q:wait", "plain", "missing"), ctx
    )
    assert preview is not None and preview.error is None
    assert preview.lines == (
        f"DEL {FAILED}: zset, 1,204 members, no TTL",
        "DEL bull:q:wait: list, 3 items, TTL 5m",
        "DEL plain: string, 5 bytes, no TTL",
        "DEL missing: no such key",
    )
    assert r.zcard(FAILED) == 1204 and r.llen("bull:q:wait") == 3 and r.exists("plain")


async def test_executing_del_removes_the_key(ctx: ExecutionContext, r: redis.Redis) -> None:
    r.zadd(FAILED, {"a": 1})
    outcome = await run(ctx, step("DEL", FAILED), read_only=False)
    assert outcome.ok and outcome.summary == "(integer) 1" and outcome.output == "(integer) 1"
    assert not r.exists(FAILED)


async def test_config_set_preview_shows_current_and_new(
    ctx: ExecutionContext, r: redis.Redis
) -> None:
    current = r.config_get("maxclients")["maxclients"]
    preview = await RedisExecutor().preview(
        step("CONFIG", "SET", "maxclients", "20000", "slowlog-max-len", "64"), ctx
    )
    assert preview is not None
    slowlog = r.config_get("slowlog-max-len")["slowlog-max-len"]
    assert preview.lines == (f"maxclients {current} -> 20000", f"slowlog-max-len {slowlog} -> 64")
    assert r.config_get("maxclients")["maxclients"] == current


async def test_client_kill_preview_counts_the_matching_clients(
    ctx: ExecutionContext, redis_server: RedisServer, r: redis.Redis
) -> None:
    victims = [redis_server.sync_client() for _ in range(2)]
    try:
        for victim in victims:
            victim.client_setname("victim")
        addr = str(victims[0].client_info()["addr"])
        executor = RedisExecutor()
        preview = await executor.preview(step("CLIENT", "KILL", "ADDR", addr), ctx)
        assert preview is not None
        connected = len(r.client_list())
        assert preview.lines == (f"CLIENT KILL matches 1 client of {connected} connected: {addr}",)
        preview = await executor.preview(step("CLIENT", "KILL", "TYPE", "normal"), ctx)
        assert preview is not None  # everyone but the connection that asks (SKIPME yes)
        assert preview.lines[0].startswith(
            f"CLIENT KILL matches {connected - 1} clients of {connected} connected: "
        )
        assert victims[0].ping()  # nobody was killed
    finally:
        for victim in victims:
            victim.close()


async def test_flushdb_preview_counts_keys(ctx: ExecutionContext, r: redis.Redis) -> None:
    r.mset({"a": "1", "b": "2", "c": "3"})
    preview = await RedisExecutor().preview(step("FLUSHDB"), ctx)
    assert preview is not None and preview.lines == ("FLUSHDB removes 3 keys of db 0",)
    assert r.dbsize() == 3


# --- execution --------------------------------------------------------------------------------


async def test_read_only_replies_look_like_redis_cli(ctx: ExecutionContext, r: redis.Redis) -> None:
    r.rpush("l", "a", "b c", 'say "hi"')
    listed = await run(ctx, step("LRANGE", "l", "0", "-1"), read_only=True)
    assert listed.ok and listed.summary == "3 items"
    assert listed.output == '1) "a"\n2) "b c"\n3) "say \\"hi\\""'
    missing = await run(ctx, step("GET", "nope"), read_only=True)
    assert missing.ok and missing.output == "(nil)"
    info = await run(ctx, step("INFO", "server"), read_only=True)
    assert info.ok and info.output.startswith("# Server\nredis_version:")
    assert "\r" not in info.output


async def test_server_errors_are_failed_outcomes(ctx: ExecutionContext, r: redis.Redis) -> None:
    r.set("s", "x")
    outcome = await run(ctx, step("LLEN", "s"), read_only=True)
    assert not outcome.ok and outcome.summary.startswith("(error) WRONGTYPE")


async def test_a_write_is_refused_when_asked_to_run_read_only(
    ctx: ExecutionContext, r: redis.Redis
) -> None:
    outcome = await run(ctx, step("SET", "k", "v"), read_only=True)
    assert not outcome.ok and outcome.error == "refused: SET is not read-only"
    assert not r.exists("k")


async def test_cancel_stops_a_blocking_command(ctx: ExecutionContext) -> None:
    progress = Progress()
    executor = RedisExecutor()
    prepared = step("BLPOP", "never", "30")
    running = asyncio.create_task(
        executor.execute(prepared, ctx, read_only=False, output=lambda _: None, progress=progress)
    )
    await asyncio.sleep(0.2)
    progress.cancel.set()
    outcome = await asyncio.wait_for(running, 10)
    assert outcome.cancelled and not outcome.ok


def test_nested_replies_are_numbered_and_indented() -> None:
    assert format_reply([["a", 1], [], None]) == (
        '1) 1) "a"\n   2) (integer) 1\n2) (empty array)\n3) (nil)'
    )


def test_the_equivalent_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PW", "s3cret-pw")
    connection = RedisConnection.model_validate(
        {"kind": "redis", "url": "redis://:${REDIS_PW}@10.0.0.5:6380/2"}
    )
    line = redis_cli(connection, ["DEL", "bull:q:failed job"])
    assert line == "redis-cli -h 10.0.0.5 -p 6380 -n 2 --askpass DEL 'bull:q:failed job'"
    assert RedisExecutor.equivalent({"command": ["GET", "k"]}, connection).endswith(" GET k")
    assert "s3cret" not in line


# --- through the Runner (the one gate) ------------------------------------------------------


def runbook_config(url: str) -> Config:
    return make_config(
        url,
        diagnose=[
            {
                "title": "Failed jobs",
                "kind": "redis",
                "connection": "r",
                "command": ["ZCARD", FAILED],
            },
            {
                "title": "A write in disguise",
                "kind": "redis",
                "connection": "r",
                "command": ["DEL", FAILED],
                "readonly": True,
            },
        ],
        actions=[
            {
                "id": "drop-failed",
                "key": "D",
                "kind": "redis",
                "title": "Drop failed jobs",
                "connection": "r",
                "command": ["DEL", "{{ params.key }}"],
                "readonly": True,
                "params": {"key": {"type": "str", "default": FAILED}},
                "verb": "Delete",
            },
        ],
    )


async def test_runner_runs_a_diagnose_step_without_a_token(
    redis_server: RedisServer, r: redis.Redis, tmp_path: Any
) -> None:
    r.zadd(FAILED, {f"job-{i}": i for i in range(7)})
    parts = make_runner(runbook_config(redis_server.url), tmp_path)
    try:
        outcome = await parts.runner.run(await parts.runner.prepare_diagnose("rb", 0))
        assert outcome.ok and outcome.summary == "(integer) 7"
        assert parts.audit.records() == []  # reads are on the timeline, not in the audit log
    finally:
        await parts.close()


async def test_runner_treats_a_readonly_claim_on_del_as_mutating(
    redis_server: RedisServer, r: redis.Redis, tmp_path: Any
) -> None:
    r.zadd(FAILED, {"a": 1, "b": 2})
    parts = make_runner(runbook_config(redis_server.url), tmp_path)
    runner = parts.runner
    try:
        disguised = await runner.prepare_diagnose("rb", 1)
        verdict = await runner.classify(disguised)
        assert verdict.mutating
        assert verdict.overruled == "config says readonly, Redis flags DEL as write"
        with pytest.raises(Refused):
            await runner.run(disguised)
        step_ = await runner.prepare_action("rb", "drop-failed")
        with pytest.raises(Refused):
            await runner.run(step_)
        assert r.zcard(FAILED) == 2
        preview = await runner.preview(step_)
        assert preview is not None and preview.lines == (f"DEL {FAILED}: zset, 2 members, no TTL",)
        token = runner.confirm(step_, via="modal")
        outcome = await runner.run(step_, token=token)
        assert outcome.ok and outcome.summary == "(integer) 1"
        assert not r.exists(FAILED)
        r.zadd(FAILED, {"c": 3})
        with pytest.raises(Refused):  # double Enter: the token is spent
            await runner.run(step_, token=token)
        assert r.zcard(FAILED) == 1
        records = parts.audit.records()
        phases = [(rec["phase"], rec["action"]) for rec in records if rec["phase"] != "refused"]
        assert any(rec["phase"] == "refused" for rec in records)  # refusals are audited too
        assert phases == [("intent", "drop-failed"), ("result", "drop-failed")]
    finally:
        await parts.close()


async def test_runner_in_read_only_mode_refuses_redis_writes(
    redis_server: RedisServer, r: redis.Redis, tmp_path: Any
) -> None:
    r.zadd(FAILED, {"a": 1})
    parts = make_runner(runbook_config(redis_server.url), tmp_path, read_only=True)
    try:
        step_ = await parts.runner.prepare_action("rb", "drop-failed")
        token = parts.runner.confirm(step_, via="--yes")
        with pytest.raises(Refused):
            await parts.runner.run(step_, token=token)
        assert r.exists(FAILED)
        assert (await parts.runner.run(await parts.runner.prepare_diagnose("rb", 0))).ok
    finally:
        await parts.close()


async def test_an_unreachable_server_is_not_a_cached_verdict(tmp_path: Any) -> None:
    config = make_config(f"redis://127.0.0.1:{free_port()}/0")
    pool = ClientPool()
    try:
        ctx = ExecutionContext(config, pool, NoProbes())
        with pytest.raises(CommandInfoUnavailable, match="refused"):
            await RedisExecutor().classify(step("GET", "k"), ctx)
        parts = make_runner(
            make_config(
                f"redis://127.0.0.1:{free_port()}/0",
                diagnose=[
                    {"title": "g", "kind": "redis", "connection": "r", "command": ["GET", "k"]}
                ],
            ),
            tmp_path,
        )
        try:
            verdict = await parts.runner.classify(await parts.runner.prepare_diagnose("rb", 0))
            assert verdict.mutating and verdict.reason.startswith("cannot classify (refused")
        finally:
            await parts.close()
    finally:
        await pool.aclose()


async def test_previews_never_show_passwords_and_reads_have_none(
    ctx: ExecutionContext, r: redis.Redis
) -> None:
    executor = RedisExecutor()
    preview = await executor.preview(step("CONFIG", "SET", "requirepass", "new-pass-123"), ctx)
    assert preview is not None and preview.lines == ("requirepass *** -> ***",)
    r.set("k", "v")
    assert await executor.preview(step("GET", "k"), ctx) is None


async def test_runner_shows_the_redis_cli_equivalent_and_skips_previews_when_read_only(
    redis_server: RedisServer, r: redis.Redis, tmp_path: Any
) -> None:
    r.zadd(FAILED, {"a": 1})
    parts = make_runner(runbook_config(redis_server.url), tmp_path, read_only=True)
    try:
        step_ = await parts.runner.prepare_action("rb", "drop-failed")
        assert step_.equivalent.startswith("redis-cli -h 127.0.0.1 -p ")
        assert step_.equivalent.endswith(f"DEL {FAILED}")
        preview = await parts.runner.preview(step_)
        assert preview is not None and preview.lines == ()
        assert preview.error is not None and "read-only mode" in preview.error
        assert r.zcard(FAILED) == 1
    finally:
        await parts.close()
