"""A headless Debian `chromium` driven over the DevTools protocol (CDP) on a websocket: just
enough to open a page, run JavaScript in it and read its cookies, for the serve tests.

The browser starts in its own session with a throwaway profile and is killed as a group
afterwards. A missing `chromium` skips with its name (fails under OPSTUI_REQUIRE_SERVERS=1).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.support import require_binary

START_TIMEOUT = 30.0
CALL_TIMEOUT = 20.0

SOCKET_RECORDER = """
(() => {
  const seen = {bytes: "", opened: 0, closed: []};
  window.__opstuiSeen = seen;
  const decoder = new TextDecoder();
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      seen.opened += 1;
      this.addEventListener("message", (event) => {
        const add = (buffer) => { seen.bytes += decoder.decode(buffer, {stream: true}); };
        if (event.data instanceof ArrayBuffer) add(event.data);
        else if (event.data instanceof Blob) event.data.arrayBuffer().then(add);
        else seen.bytes += String(event.data);
      });
      this.addEventListener("close", (event) => { seen.closed.push(event.code); });
    }
  };
})();
"""
"""Records what every websocket the page opens receives: the bytes its terminal draws."""


class Browser:
    """One chromium process and its CDP connection; pages are flat-attached sessions."""

    def __init__(self, process: asyncio.subprocess.Process, ws: aiohttp.ClientWebSocketResponse,
                 http: aiohttp.ClientSession) -> None:
        self.process = process
        self.ws = ws
        self.http = http
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.logins: dict[str, dict[str, str]] = {}
        self.challenges = 0
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("method", "").startswith("Fetch."):
                await self._answer(data)
                continue
            future = self.pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser went away"))

    async def _answer(self, event: dict[str, Any]) -> None:
        """What a person at the browser does: let every request go on, and answer a basic-auth
        prompt with the login this page was given, or press Cancel without one."""
        session = event.get("sessionId")
        request_id = event["params"]["requestId"]
        if event["method"] == "Fetch.authRequired":
            self.challenges += 1
            login = self.logins.get(session or "")
            response = {"response": "ProvideCredentials", **login} if login else {
                "response": "CancelAuth"}
            method, params = "Fetch.continueWithAuth", {
                "requestId": request_id, "authChallengeResponse": response}
        else:
            method, params = "Fetch.continueRequest", {"requestId": request_id}
        message = {"id": next(self.ids), "method": method, "params": params,
                   "sessionId": session}
        await self.ws.send_str(json.dumps(message))  # its answer is not waited for

    async def handle_auth(self, session: str, user: str | None = None,
                          password: str | None = None) -> None:
        """From now on this page's basic-auth prompts get `user`/`password`, or Cancel."""
        if user is not None and password is not None:
            self.logins[session] = {"username": user, "password": password}
        else:
            self.logins.pop(session, None)
        await self.call("Fetch.enable", {"handleAuthRequests": True,
                                         "patterns": [{"urlPattern": "*"}]}, session)

    async def call(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        number = next(self.ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, CALL_TIMEOUT)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def page(self) -> str:
        """A new tab with the socket recorder installed; returns its CDP session id."""
        target = await self.call("Target.createTarget", {"url": "about:blank"})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        session: str = attached["sessionId"]
        await self.call("Page.enable", session=session)
        await self.call("Network.enable", session=session)
        await self.call(
            "Page.addScriptToEvaluateOnNewDocument", {"source": SOCKET_RECORDER}, session
        )
        return session

    async def evaluate(self, session: str, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        return result.get("result", {}).get("value")

    async def open(self, session: str, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        await self.call("Page.navigate", {"url": url}, session)
        await self.until(session, "document.readyState === 'complete' && "
                                  "location.href !== 'about:blank'", "the page to load")

    async def until(self, session: str, expression: str, what: str) -> Any:
        loop = asyncio.get_running_loop()
        end = loop.time() + START_TIMEOUT
        while True:
            with contextlib.suppress(RuntimeError):  # a navigation in flight
                value = await self.evaluate(session, expression)
                if value:
                    return value
            assert loop.time() < end, f"timed out waiting for {what}"
            await asyncio.sleep(0.2)

    async def cookies(self, session: str) -> list[dict[str, Any]]:
        result = await self.call("Network.getCookies", session=session)
        cookies: list[dict[str, Any]] = result.get("cookies", [])
        return cookies


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    """Headless chromium (no sandbox when root, as Debian's needs) on a free debugging port."""
    binary = require_binary("chromium")
    args = [
        binary, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}",
        "--no-first-run", "--no-default-browser-check", "--disable-gpu",
        "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio", "about:blank",
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        url = None
        seen = b""
        while url is None:
            line = await asyncio.wait_for(process.stderr.readline(), START_TIMEOUT)
            assert line, f"chromium exited: {seen.decode(errors='replace')[-2000:]}"
            seen += line
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            url = found.group(1).decode() if found else None
        drain = asyncio.ensure_future(process.stderr.read())  # never let its logs block it
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(
                ws_close=5))
            browser = Browser(process, ws, http)
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(browser.call("Browser.close"), 5)
                browser.reader.cancel()
                await ws.close()
        drain.cancel()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
