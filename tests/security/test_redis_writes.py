"""Every way a redis step can try to pass a write off as a read, against a redis-server with a
password, renamed commands and DEBUG enabled (tests/security/redis_servers.py).

Each attack is a step that claims `readonly: true`, tried four ways: as a diagnose step (the
TUI runs those by itself, with no token), through `opstui run` without --yes (no terminal: the
preview runs, then it must refuse), through `opstui run --read-only --yes`, and through the
runner's preview alone (a preview only reads). After each, the SERVER is asked: the key still
holds its value, the config is unchanged, the victim connection is still there, the subscriber
got nothing, the command's call count did not grow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from opstui.actions.runner import Refused
from opstui.actions.static import load_checked
from opstui.cli import main
from tests.actions.support import make_runner
from tests.security.redis_servers import (
    KEY,
    PASSWORD_ENV,
    RENAMED,
    VALUE,
    WRITE_SCRIPT,
    ConfiguredRedis,
    password_redis_in_env,
    reset,
)

EXIT_REFUSED = 3
EXIT_FAILED = 1


@dataclass
class World:
    """The module's server, the clients that watch it, and the config of every attack."""

    server: ConfiguredRedis
    admin: redis.Redis
    victim: redis.Redis
    victim_id: int
    subscriber: Any
    config_path: Path
    audit_path: Path


Check = Callable[[World], None]


def calls(world: World, name: str) -> int:
    """How many times the server has run `name` (its original name, even when renamed)."""
    stats = world.admin.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    return int(entry["calls"]) if isinstance(entry, dict) else 0


def key_unchanged(world: World) -> None:
    assert world.admin.get(KEY) == VALUE
    assert world.admin.ttl(KEY) == -1


def list_unchanged(world: World) -> None:
    assert world.admin.lrange("sec:list", 0, -1) == ["a", "b", "c"]


def not_created(key: str) -> Check:
    def check(world: World) -> None:
        assert world.admin.exists(key) == 0, f"{key} was created"

    return check


def maxclients_unchanged(world: World) -> None:
    assert world.admin.config_get("maxclients") == {"maxclients": "1000"}


def victim_alive(world: World) -> None:
    ids = {int(c["id"]) for c in world.admin.client_list()}
    assert world.victim_id in ids, "the victim connection was killed"


def nothing_published(world: World) -> None:
    assert world.subscriber.get_message(timeout=0.2) is None


def no_transaction_open(world: World) -> None:
    assert all("x" not in c["flags"] for c in world.admin.client_list())


def no_pending_entries(world: World) -> None:
    assert world.admin.xpending("sec:stream", "sec-group")["pending"] == 0


def script_still_cached(world: World) -> None:
    sha = world.admin.script_load(WRITE_SCRIPT)
    assert world.admin.script_exists(sha) == [True]


def function_still_loaded(world: World) -> None:
    libraries = world.admin.function_list()
    assert len(libraries) == 1 and "seclib" in libraries[0], libraries


def stats_kept(world: World) -> None:
    assert calls(world, "set") > 0, "CONFIG RESETSTAT ran"


def still_serving(world: World) -> None:
    assert world.server.proc is not None and world.server.proc.poll() is None
    assert world.admin.ping()


def password_unchanged(world: World) -> None:
    fresh = world.server.sync_client(socket_timeout=2)
    try:
        assert fresh.ping()  # still the old requirepass
    finally:
        fresh.close()


def not_paused(world: World) -> None:
    quick = world.server.sync_client(socket_timeout=1)
    try:
        assert quick.set("sec:probe-write", "1")  # a CLIENT PAUSE WRITE would block this
    finally:
        quick.unlink("sec:probe-write")
        quick.close()


def acl_unchanged(world: World) -> None:
    assert [u for u in world.admin.acl_users()] == ["default"]


def swap_not_done(world: World) -> None:
    key_unchanged(world)
    other = world.server.sync_client(db=1)
    try:
        assert other.dbsize() == 0
    finally:
        other.close()


@dataclass(frozen=True)
class Attack:
    id: str
    command: list[str]
    checks: tuple[Check, ...]
    never_runs: tuple[str, ...] = ()
    """Commands (original names) whose call counts must not grow."""
    read: bool = False
    """A provable read (EVAL_RO): it runs, and the SERVER refuses the write inside it."""


def attacks(victim_id: int) -> list[Attack]:
    return [
        Attack("config-set", ["CONFIG", "SET", "maxclients", "77"], (maxclients_unchanged,),
               ("config|set",)),
        Attack("config-set-requirepass", ["CONFIG", "SET", "requirepass", "taken"],
               (password_unchanged,), ("config|set",)),
        Attack("config-rewrite", ["CONFIG", "REWRITE"], (), ("config|rewrite",)),
        Attack("config-resetstat", ["CONFIG", "RESETSTAT"], (stats_kept,)),
        Attack("client-kill", ["CLIENT", "KILL", "ID", str(victim_id)], (victim_alive,),
               ("client|kill",)),
        Attack("client-pause", ["CLIENT", "PAUSE", "3000", "WRITE"], (not_paused,),
               ("client|pause",)),
        Attack("flushdb", ["FLUSHDB"], (key_unchanged,), ("flushdb",)),
        Attack("flushall", ["FLUSHALL"], (key_unchanged,), ("flushall",)),
        Attack("eval-writing", ["EVAL", WRITE_SCRIPT, "1", KEY], (key_unchanged,), ("eval",)),
        Attack("evalsha-writing", ["EVALSHA", _sha(WRITE_SCRIPT), "1", KEY], (key_unchanged,),
               ("evalsha",)),
        Attack("eval-ro-writing", ["EVAL_RO", WRITE_SCRIPT, "1", KEY], (key_unchanged,),
               read=True),
        Attack("fcall-ro-writing", ["FCALL_RO", "secwrite", "1", KEY], (key_unchanged,),
               read=True),
        Attack("fcall", ["FCALL", "secwrite", "1", KEY], (key_unchanged,), ("fcall",)),
        Attack("publish", ["PUBLISH", "sec:chan", "pwned"], (nothing_published,),
               ("publish",)),
        Attack("multi", ["MULTI"], (no_transaction_open,), ("multi",)),
        Attack("exec", ["EXEC"], (key_unchanged,), ("exec",)),
        Attack("sort-store", ["SORT", "sec:set", "STORE", "sec:sorted"],
               (not_created("sec:sorted"),), ("sort",)),
        Attack("georadius-store",
               ["GEORADIUS", "sec:geo", "15", "37", "200", "km", "STORE", "sec:near"],
               (not_created("sec:near"),), ("georadius",)),
        Attack("xreadgroup", ["XREADGROUP", "GROUP", "sec-group", "c1", "STREAMS",
                              "sec:stream", ">"], (no_pending_entries,), ("xreadgroup",)),
        Attack("blpop", ["BLPOP", "sec:list", "0.1"], (list_unchanged,), ("blpop",)),
        Attack("lpop", ["LPOP", "sec:list"], (list_unchanged,), ("lpop",)),
        Attack("getdel", ["GETDEL", KEY], (key_unchanged,), ("getdel",)),
        Attack("getex", ["GETEX", KEY, "EX", "100"], (key_unchanged,), ("getex",)),
        Attack("select", ["SELECT", "1"], (), ("select",)),
        Attack("swapdb", ["SWAPDB", "0", "1"], (swap_not_done,), ("swapdb",)),
        Attack("debug", ["DEBUG", "SET-ACTIVE-EXPIRE", "0"], (), ("debug",)),
        Attack("script-flush", ["SCRIPT", "FLUSH"], (script_still_cached,),
               ("script|flush",)),
        Attack("function-flush", ["FUNCTION", "FLUSH"], (function_still_loaded,),
               ("function|flush",)),
        Attack("memory-purge", ["MEMORY", "PURGE"], (), ("memory|purge",)),
        Attack("slowlog-reset", ["SLOWLOG", "RESET"], (), ("slowlog|reset",)),
        Attack("latency-reset", ["LATENCY", "RESET"], (), ("latency|reset",)),
        Attack("acl-setuser", ["ACL", "SETUSER", "intruder", "on", ">pw", "+@all"],
               (acl_unchanged,), ("acl|setuser",)),
        Attack("shutdown", ["SHUTDOWN", "NOSAVE"], (still_serving,)),
        Attack("renamed-flushdb", [RENAMED["FLUSHDB"]], (key_unchanged,), ("flushdb",)),
        Attack("renamed-del", [RENAMED["DEL"], KEY], (key_unchanged,), ("del",)),
        Attack("unknown-command", ["FROBNICATE", KEY], (key_unchanged,)),
        Attack("set-claimed-readonly", ["SET", KEY, "overwritten"], (key_unchanged,), ("set",)),
    ]


def _sha(script: str) -> str:
    import hashlib

    return hashlib.sha1(script.encode()).hexdigest()


ATTACK_IDS = [a.id for a in attacks(0)]


def write_config(path: Path, server: ConfiguredRedis, items: list[Attack]) -> None:
    def step(attack: Attack) -> dict[str, Any]:
        return {
            "title": f"attack {attack.id}",
            "kind": "redis",
            "connection": "cache",
            "command": attack.command,
            "readonly": True,
        }

    data = {
        "environment": "production",
        "audit_log": str(path.parent / "audit.jsonl"),
        "connections": {
            "cache": {
                "kind": "redis",
                "url": f"redis://127.0.0.1:{server.port}/0",
                "password": "${" + PASSWORD_ENV + "}",
                "timeout": "2s",
            }
        },
        "runbooks": [
            {
                "id": "attacks",
                "title": "Writes passed off as reads",
                "diagnose": [step(a) for a in items],
                "actions": [{**step(a), "id": a.id.replace("-", "_")} for a in items],
            }
        ],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("redis-sec")
    with password_redis_in_env(workdir / "server") as server:
        admin = server.admin()
        reset(admin, server.requirepass or "")
        victim = server.sync_client()
        victim.client_setname("victim")
        victim_id = int(victim.client_id())
        subscriber = admin.pubsub()  # type: ignore[no-untyped-call]
        subscriber.subscribe("sec:chan")
        assert subscriber.get_message(timeout=2)["type"] == "subscribe"
        config_path = workdir / "opstui.yaml"
        write_config(config_path, server, attacks(victim_id))
        try:
            yield World(
                server, admin, victim, victim_id, subscriber, config_path,
                workdir / "audit.jsonl",
            )
        finally:
            subscriber.close()
            victim.close()
            admin.close()


def _attack(world: World, attack_id: str) -> tuple[int, Attack]:
    items = attacks(world.victim_id)
    index = next(i for i, a in enumerate(items) if a.id == attack_id)
    return index, items[index]


async def _in_process(world: World, mode: str, index: int, attack: Attack, tmp: Path) -> None:
    config = load_checked(world.config_path)
    parts = make_runner(config, tmp)
    try:
        if mode == "diagnose":
            step = await parts.runner.prepare_diagnose("attacks", index)
            if attack.read:
                outcome = await parts.runner.run(step)
                assert not outcome.ok and "(error)" in outcome.summary, outcome
            else:
                with pytest.raises(Refused):
                    await parts.runner.run(step)  # what the TUI does when the runbook opens
        else:
            step = await parts.runner.prepare_action("attacks", attack.id.replace("-", "_"))
            await parts.runner.preview(step)
        for check in attack.checks:  # while opstui's pooled connection is still open
            check(world)
    finally:
        await parts.close()


def _cli(world: World, mode: str, attack: Attack) -> int:
    argv = ["--config", str(world.config_path), "run", "attacks", attack.id.replace("-", "_")]
    if mode == "run-read-only-yes":
        argv += ["--read-only", "--yes"]
    return main(argv)


def _before(world: World, attack: Attack) -> dict[str, int]:
    reset(world.admin, world.server.requirepass or "")
    return {name: calls(world, name) for name in attack.never_runs}


def _after(world: World, attack: Attack, before: dict[str, int], shown: str) -> None:
    for check in (*attack.checks, still_serving, password_unchanged):
        check(world)
    after = {name: calls(world, name) for name in attack.never_runs}
    assert after == before, f"the server ran {attack.id}"
    password = world.server.requirepass
    assert password and password not in shown


@pytest.mark.parametrize("mode", ["diagnose", "preview"])
@pytest.mark.parametrize("attack_id", ATTACK_IDS)
async def test_a_write_never_runs_unconfirmed(
    world: World, attack_id: str, mode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a diagnose step (run with no token) and through the preview, in the runner."""
    index, attack = _attack(world, attack_id)
    before = _before(world, attack)
    await _in_process(world, mode, index, attack, tmp_path)
    _after(world, attack, before, capsys.readouterr().err)


@pytest.mark.parametrize("mode", ["run-without-yes", "run-read-only-yes"])
@pytest.mark.parametrize("attack_id", ATTACK_IDS)
def test_a_write_is_refused_by_opstui_run(
    world: World, attack_id: str, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`opstui run` without --yes (no terminal: the preview runs, then it refuses), and with
    --read-only --yes."""
    _, attack = _attack(world, attack_id)
    before = _before(world, attack)
    code = _cli(world, mode, attack)
    out = capsys.readouterr()
    if attack.read:
        assert code == EXIT_FAILED and "(error)" in out.err, out.err
    else:
        assert code == EXIT_REFUSED, out.err
        assert "refused" in out.err
    _after(world, attack, before, out.out + out.err)
