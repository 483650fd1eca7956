"""Fixtures for source tests: config builders, a self-signed certificate, a TLS server."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from opstui.config.models import HealthProbe, HttpConnection
from tests.support import require_binary


def http_connection(base_url: str, **extra: Any) -> HttpConnection:
    """A validated http connection, as the loader would build it."""
    return HttpConnection.model_validate({"kind": "http", "base_url": base_url, **extra})


def health_probe(**extra: Any) -> HealthProbe:
    data: dict[str, Any] = {"kind": "health", "id": "health", "connection": "app"}
    data.update(extra)
    return HealthProbe.model_validate(data)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A throw-away certificate for 127.0.0.1, made with the openssl CLI."""
    openssl = require_binary("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return Certificate(cert, key)


ServeTls = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve_tls(self_signed: Certificate) -> AsyncIterator[ServeTls]:
    """Start aiohttp apps over HTTPS (the self-signed certificate) on 127.0.0.1 random ports."""
    runners: list[web.AppRunner] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(self_signed.cert, self_signed.key)

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock, ssl_context=context).start()
        runners.append(runner)
        return f"https://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()
