"""The exporter process: engine + aiohttp on one loop, until SIGTERM or SIGINT.

/metrics renders the registry at scrape time (generate_latest over SnapshotCollector), so
nothing accumulates between scrapes; /healthz says whether the engine is polling.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from opstui.config.models import Config
from opstui.engine.scheduler import Engine
from opstui.export.collector import SnapshotCollector
from opstui.stopping import stop_on_signals

DEFAULT_LISTEN = "127.0.0.1:9464"
SHUTDOWN_TIMEOUT = 2.0


class ExportError(Exception):
    """A one-line reason the exporter cannot start (bad --listen, port in use)."""


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') as (host, port); port 0 picks a free one."""
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise ExportError(f"bad --listen {text!r}: expected HOST:PORT, e.g. {DEFAULT_LISTEN}")
    port = int(port_text)
    if port > 65535:
        raise ExportError(f"bad --listen {text!r}: port must be 0-65535")
    return host, port


def metrics_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/metrics"


class Exporter:
    """The engine, its collector and registry, and the web app that serves them."""

    def __init__(self, config: Config, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else Engine(config)
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector(self.engine)
        self.registry.register(self.collector)
        self.polling = False
        self.app = web.Application()
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        if self.polling:
            return web.Response(text="ok")
        return web.Response(text="engine stopped", status=503)

    async def start(self) -> None:
        await self.engine.start()
        self.polling = True

    async def stop(self) -> None:
        self.polling = False
        await self.engine.stop()
        self.collector.close()


async def _bind(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Listen on host:port; ExportError (one line) when the address is taken or invalid."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        raise ExportError(f"cannot listen on {host}:{port}: {reason}") from None
    bound = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound = int(address[1])
            break
    return runner, bound


def _announce(line: str) -> None:
    print(line, flush=True)


async def serve(
    config: Config, host: str, port: int, announce: Callable[[str], None] | None = None
) -> int:
    """Run until SIGTERM/SIGINT; announce the bound /metrics URL once listening. Exit code."""
    exporter = Exporter(config)
    runner, bound = await _bind(exporter.app, host, port)
    with stop_on_signals() as stop:
        try:
            await exporter.start()
            (announce or _announce)(f"opstui export: listening on {metrics_url(host, bound)}")
            await stop.wait()
        finally:
            await exporter.stop()
            await runner.cleanup()
    return 0
