"""A throwaway redis-server on a random loopback port, no persistence, in a temp dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import redis

from tests.servers.process import ServerProcess


class RedisServer(ServerProcess):
    """redis-server with `--save "" --appendonly no`; `requirepass` turns AUTH on."""

    name = "redis"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        binary: str = "redis-server",
        requirepass: str | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, port)
        self.binary = binary
        self.requirepass = requirepass
        self.extra = tuple(extra)

    def argv(self) -> Sequence[str]:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "no",
        ]
        if self.requirepass is not None:
            argv += ["--requirepass", self.requirepass]
        return [*argv, *self.extra]

    def ready(self) -> bool:
        try:
            with self.sync_client(socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def sync_client(self, db: int = 0, **options: object) -> redis.Redis:
        """A plain redis-py client for setting up and checking data in tests."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            password=self.requirepass,
            decode_responses=True,
            socket_timeout=options.pop("socket_timeout", 5),  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )


def commandstats(client: redis.Redis) -> dict[str, int]:
    """Calls per command since start (INFO commandstats), e.g. {"llen": 3, "zcard": 5}."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats.items()
        if isinstance(entry, dict)
    }


def commands_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands the server ran between two commandstats reads, minus the reads themselves."""
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta["info"] = delta.get("info", 0) - 1  # the first commandstats read (`before`)
    return {name: n for name, n in delta.items() if n > 0}
