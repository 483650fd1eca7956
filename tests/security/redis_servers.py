"""The Redis area's throwaway server: a redis-server WITH a password (requirepass), a second
secret in masterauth, DEBUG enabled (so a DEBUG that got through would run), and
rename-command lines in its redis.conf, so a harmless-looking name runs a write.

Module-scoped: one server per test module; `reset` puts the data every attack checks back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.servers.redis import RedisServer
from tests.support import require_binary

PASSWORD_ENV = "OPSTUI_SEC_REDIS_PASSWORD"
RENAMED = {"FLUSHDB": "HARMLESS", "DEL": "PEEK"}
"""rename-command lines of the server's redis.conf: `HARMLESS` flushes, `PEEK` deletes."""
KEY = "sec:key"
VALUE = "original"
LIBRARY = """#!lua name=seclib
redis.register_function('secwrite', function(keys, args)
  return redis.call('SET', keys[1], 'overwritten')
end)
"""
WRITE_SCRIPT = "return redis.call('SET', KEYS[1], 'overwritten')"


class ConfiguredRedis(RedisServer):
    """redis-server reading a redis.conf first (rename-command lives only in a config file)."""

    def __init__(self, workdir: Path, conf: Path, *, requirepass: str, masterauth: str) -> None:
        super().__init__(workdir, requirepass=requirepass)
        self.conf = conf
        self.masterauth = masterauth
        """A second secret, in redis.conf only: opstui never resolves it, so only the CONFIG
        GET mask can keep it out of the output."""

    def argv(self) -> Sequence[str]:
        argv = list(super().argv())
        return [argv[0], str(self.conf), *argv[1:]]

    def admin(self) -> redis.Redis:
        """A client of the test (not of opstui) that reaches the renamed commands' new names."""
        return self.sync_client()


@contextmanager
def password_redis(workdir: Path) -> Iterator[ConfiguredRedis]:
    """Started with a random requirepass and masterauth; skips without redis-server."""
    require_binary("redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "redis.conf"
    masterauth = "masterauth-" + secrets.token_hex(8)
    lines = [f"rename-command {old} {new}" for old, new in RENAMED.items()]
    lines += ["enable-debug-command yes", f"masterauth {masterauth}"]
    lines += ["slowlog-log-slower-than 0", "latency-monitor-threshold 1"]
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)
    requirepass = "requirepass-" + secrets.token_hex(8)
    server = ConfiguredRedis(workdir, conf, requirepass=requirepass, masterauth=masterauth)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def reset(client: redis.Redis, password: str) -> None:
    """Every key, stream, group, script, function and setting the attacks aim at, as they
    were (the password too: one attack that got through must not hide the next)."""
    client.config_set("requirepass", password)
    client.flushall()  # db 1 stays empty: a SWAPDB that got through would show there
    client.set(KEY, VALUE)
    client.rpush("sec:list", "a", "b", "c")
    client.sadd("sec:set", "3", "1", "2")
    client.geoadd("sec:geo", (13.361389, 38.115556, "palermo"))
    client.xadd("sec:stream", {"f": "v"})
    client.xgroup_create("sec:stream", "sec-group", id="0")
    client.function_load(LIBRARY, replace=True)
    client.script_load(WRITE_SCRIPT)
    client.config_set("maxclients", "1000")


@contextmanager
def password_redis_in_env(workdir: Path) -> Iterator[ConfiguredRedis]:
    """password_redis, with its password in PASSWORD_ENV for the block (the configs name it
    as ${...}); for module fixtures, which cannot use the monkeypatch fixture."""
    with password_redis(workdir) as started, pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, started.requirepass or "")
        yield started
