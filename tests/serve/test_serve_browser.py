"""`opstui serve` in a real headless browser (Debian's chromium over CDP): without credentials
the page is refused and no opstui starts, not even when the refused page's own script opens the
websocket; with the token link the browser keeps an HttpOnly SameSite=Strict cookie, drops the
token from its address bar and its terminal draws the dashboard from a child that knows its
viewer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from opstui.serve import COOKIE, VIEWER_ENV
from tests.security.serve_servers import (  # noqa: F401 - fixtures
    PASSWORD,
    PROBE_TITLE,
    TITLE,
    TOKEN,
    TOKEN_LABEL,
    USER,
    Served,
    backend_fixture,
    gated_fixture,
    ws_url,
)
from tests.serve.chromium import chromium

SEEN = "window.__opstuiSeen"


async def test_browser_is_refused_without_credentials_and_draws_with_the_token_link(
    gated: Served, tmp_path: Path
) -> None:
    await asyncio.to_thread(gated.wait_no_viewers)
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.page()
        await browser.handle_auth(page)  # a person who has no login presses Cancel

        for refused in (f"{gated.base}/", f"{gated.base}/?token={TOKEN}x"):
            await browser.open(page, refused)
            text = await browser.evaluate(page, "document.body.innerText")
            assert "sign in" in text and TITLE not in text, text
            assert await browser.evaluate(page, f"{SEEN}.opened") == 0
            assert await browser.evaluate(page, "document.cookie") == ""
            # The refused page's own script tries the websocket anyway: same origin, no cookie.
            script = f"new WebSocket({json.dumps(ws_url(gated))}); true"
            await browser.evaluate(page, script)
            await browser.until(page, f"{SEEN}.closed.length > 0", "the socket to be refused")
            await asyncio.sleep(0.3)
            assert gated.viewers() == []

        await browser.open(page, f"{gated.base}/?token={TOKEN}")
        assert await browser.evaluate(page, "location.href") == f"{gated.base}/"
        cookies = {c["name"]: c for c in await browser.cookies(page)}
        assert cookies[COOKIE]["httpOnly"] is True
        assert cookies[COOKIE]["sameSite"] == "Strict"
        assert await browser.evaluate(page, "document.cookie") == ""  # scripts cannot read it
        await browser.until(
            page,
            f"{SEEN}.bytes.includes({json.dumps(TITLE)}) && "
            f"{SEEN}.bytes.includes({json.dumps(PROBE_TITLE)})",
            "the terminal to draw the dashboard",
        )
        assert await browser.evaluate(
            page, "document.querySelector('.textual-terminal canvas') !== null"
        )
        [viewer] = gated.viewers()
        assert viewer.environ().get(VIEWER_ENV) == TOKEN_LABEL
        await browser.call("Page.navigate", {"url": "about:blank"}, page)
    await asyncio.to_thread(gated.wait_no_viewers)


async def test_browser_with_basic_auth_draws_the_dashboard(
    gated: Served, tmp_path: Path
) -> None:
    """Basic auth as a browser sends it: the user name and password typed into the browser's
    prompt answer the page's challenge, and the websocket the page then opens gets through."""
    await asyncio.to_thread(gated.wait_no_viewers)
    async with chromium(tmp_path / "profile") as browser:
        page = await browser.page()
        await browser.handle_auth(page, USER, PASSWORD)  # typed into the browser's prompt
        await browser.open(page, f"{gated.base}/")
        assert browser.challenges >= 1
        await browser.until(
            page, f"{SEEN}.bytes.includes({json.dumps(PROBE_TITLE)})", "the dashboard"
        )
        [viewer] = gated.viewers()
        assert viewer.environ().get(VIEWER_ENV) == USER
        await browser.call("Page.navigate", {"url": "about:blank"}, page)
    await asyncio.to_thread(gated.wait_no_viewers)
