"""The Textual app: themes, the dashboard, global keys, the bell, and the engine's lifetime.

The app is one consumer of the engine, which polls on a thread of its own (engine/thread.py),
so keys and drawing never queue behind polls. It subscribes to snapshots (delivered on the
app's loop in batches) and routes them to the dashboard it holds (never through DOM queries,
a modal may be on top), rings the bell on entry to crit from the engine's timeline, and owns
the UI's two timers: one that moves ages once a second, and one that hands queued snapshots
to the dashboard a few times a second.

Queuing matters for cost: 24 probes polled at 1 Hz finish at 24 different moments, and
drawing each on arrival means 24 screen updates a second; drawing what arrived in the last
quarter second costs at most 4, and a state change still shows within 250 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console
from textual import events
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer

from opstui.engine.events import Event, EventKind
from opstui.engine.scheduler import Engine
from opstui.engine.snapshot import ProbeSnapshot
from opstui.engine.thread import EngineThread
from opstui.states import State
from opstui.ui import memory
from opstui.ui.dashboard import DashboardScreen
from opstui.ui.detail import DetailScreen
from opstui.ui.help import HelpScreen
from opstui.ui.palette import OpstuiCommands
from opstui.ui.themes import STATE_DEFAULTS, register_themes, resolve_theme_name
from opstui.ui.timeline import TimelineScreen
from opstui.ui.wall import WallOptions, pick_theme

if TYPE_CHECKING:
    from opstui.actions.runner import Runner

log = logging.getLogger("opstui.ui")

TICK_SECONDS = 1.0
FLUSH_SECONDS = 0.25
SETTLE_DELAY = 1.0
"""Seconds after the last layout rebuild before memory is settled (see ui/memory.py)."""


class OpstuiApp(App[int]):
    """The dashboard app for one engine."""

    TITLE = "opstui"
    COMMANDS = App.COMMANDS | {OpstuiCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("r", "runbooks", "Runbooks"),
        Binding("e", "timeline", "Events"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("R", "refresh_now", "Refresh"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        engine: Engine,
        *,
        theme: str | None = None,
        read_only: bool = False,
        poll: bool = True,
        runner: Runner | None = None,
        wall: WallOptions | None = None,
        auto_bastion: bool = False,
        poll_after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self._poll_after = poll_after
        """Awaited before polling starts (`opstui demo`: until its servers answer); if it
        raises, the app ends with that as its failure."""
        self._shut_down = False
        self.wall = wall
        """Wall mode: read-only, views rotating, runbooks not offered (see ui/wall.py)."""
        self.auto_bastion = auto_bastion
        """Pick opstui-bastion on a 16-colour terminal when no theme was asked for. `opstui`
        sets it; tests leave it off so a snapshot never depends on the TERM it ran under."""
        self._runner = runner
        """The actions runner (the one gate). `opstui` passes one built by build_runner; when
        none is given (tests, embedding) one is built on first use."""
        self._engine_thread: EngineThread | None = None
        self.collector = memory.IdleCollector()
        """Full collections when nobody is pressing keys (ui/memory.py)."""
        self._report_audit = runner is not None
        self.read_only = read_only or engine.config.read_only or wall is not None
        self.poll = poll
        self._theme_name = theme
        self._unsubscribe: list[Callable[[], None]] = []
        self._queued: dict[str, ProbeSnapshot] = {}
        self._settle_timer: Timer | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._signal_code: int | None = None
        self.rotation: Timer | None = None
        self.dashboard = DashboardScreen(engine, read_only=self.read_only, wall=wall)
        self.dashboard.open_detail = self.open_detail
        self.failure: str | None = None
        """One line about the error that ended the app, if one did (details go to the log)."""
        super().__init__()
        self.title = engine.config.title

    # --- set-up and tear-down -----------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """State colours for any theme that lacks them (Textual's built-in ones)."""
        return {**super().get_theme_variable_defaults(), **STATE_DEFAULTS}

    def get_default_screen(self) -> Screen[Any]:
        return self.dashboard

    async def on_mount(self) -> None:
        themes = register_themes(self)
        self.theme = resolve_theme_name(
            pick_theme(
                self._theme_name,
                self.engine.config.theme,
                wall=self.wall is not None,
                color_system=self.console.color_system if self.auto_bastion else None,
            ),
            themes,
        )
        self._signal_loop = asyncio.get_running_loop()
        self.collector.start()
        if self._signal_code is not None:
            self.exit(self._signal_code, return_code=self._signal_code)
            return
        self._unsubscribe.append(self.engine.subscribe(self._on_snapshot))
        self._unsubscribe.append(self.engine.timeline.subscribe(self._on_event))
        self.set_interval(TICK_SECONDS, self._tick)
        self.set_interval(FLUSH_SECONDS, self.flush_snapshots)
        self.screen_change_signal.subscribe(self, self._screen_changed)
        if self.wall is not None and self.wall.rotate > 0 and len(self.dashboard.views) > 1:
            self.rotation = self.set_interval(self.wall.rotate, self.rotate_view)
        if self.poll:  # after the first frame: the first polls import client libraries
            self.call_after_refresh(lambda: self.run_worker(self._start_polling()))
        if self._report_audit and self._runner is not None:
            self._report_unfinished(self._runner)

    async def _start_polling(self) -> None:
        if self._poll_after is not None:
            try:
                await self._poll_after()
            except Exception as exc:
                log.error("polling could not start: %s", exc)
                self.failure = str(exc)
                self.exit(1, return_code=1)
                return
        if self._shut_down:
            return
        engine_thread = self._engine_thread = EngineThread(self.engine)
        await engine_thread.start()
        if self._shut_down:  # the app left while the engine was starting
            await engine_thread.stop()

    def _report_unfinished(self, runner: Runner) -> None:
        """Intents the audit log holds without a result: a crash mid-action, said at start."""
        from opstui.actions.audit import report_unfinished

        try:
            lines = report_unfinished(runner.audit)
        except OSError as exc:
            lines = [f"audit: cannot read {runner.audit.path}: {exc.strerror or exc}"]
        if lines:
            shown = lines[:3] + ([f"… and {len(lines) - 3} more"] if len(lines) > 3 else [])
            self.notify(
                "\n".join(shown), title="Unfinished actions", severity="warning", timeout=30
            )

    def on_dashboard_screen_rebuilt(self, _: DashboardScreen.Rebuilt) -> None:
        """Settle memory once the rebuilt layout is on screen (debounced: resizes come in
        bursts while a window is dragged)."""
        if self._settle_timer is not None:
            self._settle_timer.stop()
        self._settle_timer = self.set_timer(SETTLE_DELAY, memory.settle)

    async def on_unmount(self) -> None:
        await self._shutdown_engine()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.collector.input_seen()
        await super().on_event(event)

    async def _shutdown_engine(self) -> None:
        self._shut_down = True
        self.collector.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.aclose()
        engine_thread, self._engine_thread = self._engine_thread, None
        if engine_thread is not None:
            await engine_thread.stop()
        else:
            await self.engine.stop()

    async def action_quit(self) -> None:
        await self._shutdown_engine()
        self.exit(0)

    def exit_on_signal(self, code: int) -> None:
        """From a signal handler (SIGHUP: the terminal went away; SIGTERM): leave as `q`
        does, with `code`. Safe before the loop runs and during shutdown."""
        self._signal_code = code
        loop = self._signal_loop
        if loop is None:
            return  # on_mount sees the code and exits at once
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to stop
            loop.call_soon_threadsafe(partial(self.exit, code, return_code=code))

    def rotate_view(self) -> None:
        """Wall mode's timer: the next view, unless a full screen (detail...) covers it."""
        if self.screen is self.dashboard:
            self.dashboard.rotate()

    # --- engine -> screen ---------------------------------------------------------------

    def _on_snapshot(self, snapshot: ProbeSnapshot) -> None:
        if not self.poll:
            # Driven from outside (tests, injected readings): nothing to coalesce.
            self.dashboard.update_snapshot(snapshot)
            return
        self._queued[snapshot.probe_id] = snapshot

    @property
    def dashboard_visible(self) -> bool:
        """False while a full screen (detail, timeline, runbook) covers the dashboard: its
        panels are then left alone (snapshots stay queued, newest per probe) and brought up
        to date when it shows again, so a runbook or its confirm modal never waits behind
        200 hidden panels being redrawn."""
        stack = self.screen_stack
        if self.dashboard not in stack:
            return True
        return all(screen.is_modal for screen in stack[stack.index(self.dashboard) + 1 :])

    def _screen_changed(self, screen: Screen[Any]) -> None:
        if self.dashboard_visible:
            self._tick()

    def flush_snapshots(self) -> None:
        """Hand the newest queued snapshot of each probe to the dashboard, in one repaint."""
        if not self._queued or not self.dashboard_visible:
            return
        queued, self._queued = self._queued, {}
        with self.batch_update():
            for snapshot in queued.values():
                self.dashboard.update_snapshot(snapshot)

    def _on_event(self, event: Event) -> None:
        """Bell once on entry to crit, unless muted by config or the probe is flapping."""
        if event.kind is not EventKind.STATE or event.new is not State.CRIT:
            return
        if event.old is State.CRIT or not self.engine.config.bell or event.probe_id is None:
            return
        if self.engine.snapshot(event.probe_id).flapping:
            return
        self.bell()

    def _tick(self) -> None:
        self.collector.tick()
        if not self.dashboard_visible:
            return
        self.flush_snapshots()
        self.dashboard.tick()

    # --- actions ------------------------------------------------------------------------

    def open_detail(self, probe_id: str) -> None:
        if isinstance(self.screen, DetailScreen):
            self.pop_screen()
        self.push_screen(DetailScreen(self.engine, probe_id))

    def show_view(self, index: int) -> None:
        while self.screen is not self.dashboard and len(self.screen_stack) > 1:
            self.pop_screen()
        self.dashboard.action_show_view(index)

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = build_runner(self.engine, read_only=self.read_only)
        return self._runner

    def open_runbook(self, runbook_id: str, trigger: str | None = None) -> None:
        """The runbook screen (replacing one already open); `trigger` starts an action.
        Never in wall mode: nobody stands at a wall screen to confirm anything."""
        from opstui.ui.runbook_screen import RunbookScreen

        if self.wall is not None:
            self._say_no_runbooks()
            return
        while isinstance(self.screen, RunbookScreen) or (
            len(self.screen_stack) > 1 and self.screen.is_modal
        ):
            self.pop_screen()
        self.push_screen(RunbookScreen(self.runner, self.engine, runbook_id, trigger=trigger))

    def palette_runbooks(self) -> list[tuple[str, str, list[tuple[str, str, str | None]]]]:
        if self.wall is not None:
            return []
        return [
            (r.id, str(r.title), [(a.id, str(a.title), a.key) for a in r.actions])
            for r in self.engine.config.runbooks
        ]

    def _say_no_runbooks(self) -> None:
        self.notify("Wall mode is read-only: runbooks are not offered", timeout=3)

    def action_runbooks(self) -> None:
        from opstui.ui.runbooks import RunbookPalette

        if self.wall is not None:
            self._say_no_runbooks()
            return
        if isinstance(self.screen, RunbookPalette):
            return
        focused: str | None = None
        if self.screen is self.dashboard:
            panel = self.dashboard.focused_panel()
            focused = panel.probe_id if panel is not None else None

        def chosen(runbook_id: str | None) -> None:
            if runbook_id is not None:
                self.open_runbook(runbook_id)

        self.push_screen(RunbookPalette(self.engine, focused), chosen)

    def palette_probes(self) -> list[tuple[str, str]]:
        return [(probe.id, probe.display_title) for probe in self.engine.config.probes]

    def palette_views(self) -> list[str]:
        return [view.name for view in self.dashboard.views]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_timeline(self) -> None:
        if not isinstance(self.screen, TimelineScreen):
            self.push_screen(TimelineScreen(self.engine))

    def action_toggle_pause(self) -> None:
        if self.engine.paused:
            self.engine.resume()
        else:
            self.engine.pause()
        self.dashboard.set_paused(self.engine.paused)

    def action_refresh_now(self) -> None:
        self.engine.refresh()
        self.notify("Polling every probe now", timeout=2)

    # --- failures: to the log, never a traceback on the terminal -------------------------

    def _print_error_renderables(self) -> None:
        """Textual prints crash tracebacks here on exit; send them to the log instead."""
        renderables = list(self._exit_renderables)
        self._exit_renderables.clear()
        if not renderables:
            return
        buffer = io.StringIO()
        console = Console(file=buffer, width=120, color_system=None, legacy_windows=False)
        for renderable in renderables:
            console.print(renderable)
        log.error("the TUI stopped on an error:\n%s", buffer.getvalue())
        error = self._exception
        if error is not None:
            self.failure = f"{type(error).__name__}: {error}"
        else:
            lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
            self.failure = lines[-1].strip() if lines else "unknown error"


def build_runner(engine: Engine, *, read_only: bool) -> Runner:
    """The TUI's runner: clients of its own (on the UI's loop: the engine's live on the
    engine's thread, and a runbook must never take the connections the panels poll with),
    the engine's readings, clock and timeline, the config's audit log (or the user state
    dir's)."""
    from opstui.actions.audit import AuditLog
    from opstui.actions.probe_readers import EngineProbeReader
    from opstui.actions.runner import Runner
    from opstui.sources.registry import ClientPool

    config = engine.config
    return Runner(
        config,
        pool=ClientPool(),
        owns_pool=True,
        probes=EngineProbeReader(engine),
        audit=AuditLog(AuditLog.default_path(config)),
        read_only=read_only or config.read_only,
        clock=engine.clock,
        timeline=engine.timeline,
    )
