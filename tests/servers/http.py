"""A plain HTTP health server as a child process, for fault tests that need a real process."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tests.servers.process import ServerProcess

_CODE = r"""
import sys
from aiohttp import web

async def health(request):
    return web.json_response({"status": "pass"})

app = web.Application()
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class HealthServer(ServerProcess):
    name = "http-health"

    def argv(self) -> Sequence[str]:
        return [sys.executable, "-c", _CODE, str(self.port)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
