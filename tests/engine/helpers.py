"""Test doubles for the engine: scripted sources (no I/O) and a real aiohttp-backed source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp

from opstui.config.models import Config
from opstui.sources.base import ProbeError, Reading, Source
from opstui.states import Severity

Outcome = Reading | ProbeError | BaseException


def make_config(*probes: dict[str, Any], refresh: str = "1s", timeout: str = "2s") -> Config:
    """A Config with one http connection and the given probes (kind health by default)."""
    return Config.model_validate(
        {
            "refresh": refresh,
            "connections": {
                "app": {"kind": "http", "base_url": "http://127.0.0.1:9", "timeout": timeout}
            },
            "probes": [{"kind": "health", "connection": "app", **p} for p in probes],
        }
    )


def ok(value: float = 10.0, **kw: Any) -> Reading:
    return Reading(value=value, **kw)


def verdict(severity: Severity, value: float = 10.0, **kw: Any) -> Reading:
    return Reading(value=value, verdict=severity, **kw)


class ScriptedSource(Source):
    """Returns (or raises) the scripted outcomes in order, then repeats the last one.

    `gate`, when set, makes each poll wait for it (a slow or hung service); the source counts
    polls and the most polls it ever had in flight at once.
    """

    kind: ClassVar[str] = "scripted"

    def __init__(self, *outcomes: Outcome | Callable[[], Outcome]) -> None:
        self.outcomes = list(outcomes) or [ok()]
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None

    @classmethod
    def build(cls, probe: Any, connection: Any, pool: Any) -> Source:
        return cls()

    def script(self, *outcomes: Outcome | Callable[[], Outcome]) -> None:
        self.outcomes = list(outcomes)

    async def poll(self) -> Reading:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            item = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
            if callable(item) and not isinstance(item, BaseException):
                item = item()
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, Reading)
            return item
        finally:
            self.in_flight -= 1


class AiohttpSource(Source):
    """GETs a URL with aiohttp: 2xx is an ok reading with latency, anything else crit.

    Transport errors are left to propagate, so the engine's own handling is what is tested.
    """

    kind: ClassVar[str] = "aiohttp-test"

    def __init__(self, url: str) -> None:
        self.url = url
        self.session: aiohttp.ClientSession | None = None

    @classmethod
    def build(cls, probe: Any, connection: Any, pool: Any) -> Source:
        raise NotImplementedError("tests construct it directly")

    async def poll(self) -> Reading:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        started = time.perf_counter()
        async with self.session.get(self.url) as response:
            await response.read()
            latency = (time.perf_counter() - started) * 1000
            severity = Severity.OK if response.status < 300 else Severity.CRIT
            return Reading(
                value=latency,
                latency_ms=latency,
                verdict=severity,
                notes=(f"HTTP {response.status}",),
            )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


async def settle(rounds: int = 20) -> None:
    """Let ready tasks run (ManualClock tests: after advancing time)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll `predicate` until true; fails after a generous real-time deadline."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)
