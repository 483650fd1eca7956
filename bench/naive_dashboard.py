"""The anchor of bench/tui_steady.py: a naive Textual dashboard of N sparklines at 1 Hz.

Written the obvious way: a grid of panels, each a Static title, a textual Sparkline and a
Label with the value; one worker per panel polls its health endpoint with aiohttp, then
updates its widgets on every reading and sleeps a second. The sparklines keep Textual's
default height of one line, as opstui's are; the value is the request's latency in ms (what
opstui's health panels show). Titles are `svc-000`, `svc-001`, ... like
opstui's in the bench config, so both draw the same first-frame marker.

    python bench/naive_dashboard.py --url http://127.0.0.1:PORT [--panels 24]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import ClassVar

import aiohttp
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

HISTORY = 60


class Panel(Vertical):
    DEFAULT_CSS = """
    Panel { border: round $accent; height: 1fr; padding: 0 1; }
    Panel .title { text-style: bold; }
    """

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.values: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(f"svc-{self.index:03d}", classes="title")
        yield Sparkline([], summary_function=max)
        yield Label("waiting")

    async def poll(self, session: aiohttp.ClientSession, url: str) -> None:
        sparkline = self.query_one(Sparkline)
        label = self.query_one(Label)
        while True:
            started = time.perf_counter()
            try:
                async with session.get(f"{url}/health/{self.index}") as response:
                    body = await response.json(content_type=None)
                latency = (time.perf_counter() - started) * 1000
                self.values = [*self.values, latency][-HISTORY:]
                sparkline.data = self.values
                label.update(f"{body['status']} {latency:.1f} ms")
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                label.update(f"error: {exc}")
            await asyncio.sleep(1.0)


class NaiveDashboard(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, url: str, panels: int) -> None:
        super().__init__()
        self.url = url
        self.panels = panels
        self.session: aiohttp.ClientSession | None = None

    def compose(self) -> ComposeResult:
        yield from (Panel(i) for i in range(self.panels))

    def on_mount(self) -> None:
        columns = 6 if self.panels >= 12 else max(1, self.panels)
        self.screen.styles.layout = "grid"
        self.screen.styles.grid_size_columns = columns
        self.screen.styles.grid_size_rows = math.ceil(self.panels / columns)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        for panel in self.query(Panel):
            self.run_worker(panel.poll(self.session, self.url))

    async def on_unmount(self) -> None:
        if self.session is not None:
            await self.session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--panels", type=int, default=24)
    args = parser.parse_args()
    NaiveDashboard(args.url, args.panels).run()


if __name__ == "__main__":
    main()
