"""Listeners run on the loop they subscribed from; an engine on its own thread obeys callers
on any thread (engine/listeners.py, engine/thread.py)."""

from __future__ import annotations

import asyncio
import threading
import time

from opstui.engine.listeners import Listeners
from opstui.engine.scheduler import Engine
from opstui.engine.thread import EngineThread
from opstui.states import State
from tests.engine.helpers import ScriptedSource, make_config, ok


class OtherLoop:
    """An event loop running on a thread of its own, as the engine's does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, fn: object, *args: object) -> None:
        self.loop.call_soon_threadsafe(fn, *args)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_items_from_another_thread_arrive_on_the_subscribers_loop_in_order() -> None:
    listeners: Listeners[int] = Listeners()
    seen: list[tuple[int, int]] = []
    here = threading.get_ident()
    listeners.add(lambda item: seen.append((item, threading.get_ident())))
    other = OtherLoop()
    try:
        for n in range(50):
            other.call(listeners.notify, n)
        await wait_for(lambda: len(seen) == 50)
    finally:
        other.close()
    assert [n for n, _ in seen] == list(range(50))
    assert {thread for _, thread in seen} == {here}


async def test_a_notifier_on_its_own_loop_hands_items_over_in_batches() -> None:
    listeners: Listeners[int] = Listeners()
    batches: list[int] = []
    seen: list[int] = []

    def listener(item: int) -> None:
        seen.append(item)

    listeners.add(listener)
    loop = asyncio.get_running_loop()
    original = loop.call_soon_threadsafe
    wakeups = 0

    def counting(*args: object, **kwargs: object) -> asyncio.Handle:
        nonlocal wakeups
        wakeups += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    other = OtherLoop()

    def spread() -> None:  # 40 items 5 ms apart, as polls finishing one after another
        for n in range(40):
            other.loop.call_later(n * 0.005, listeners.notify, n)

    try:
        other.call(spread)
        await wait_for(lambda: len(seen) == 40)
        batches.append(wakeups)
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
        other.close()
    assert seen == list(range(40))
    assert batches[0] <= 10, f"{batches[0]} wake-ups of the subscriber's loop for 40 items"


async def test_nothing_is_delivered_after_unsubscribe_even_if_already_handed_over() -> None:
    listeners: Listeners[int] = Listeners()
    seen: list[int] = []
    unsubscribe = listeners.add(seen.append)
    other = OtherLoop()
    try:
        done = threading.Event()

        def burst() -> None:
            for n in range(10):
                listeners.notify(n)
            done.set()

        other.call(burst)
        await asyncio.to_thread(done.wait, 5)
        unsubscribe()  # the hand-over is scheduled (50 ms) but has not run here yet
        await asyncio.sleep(0.2)
    finally:
        other.close()
    assert seen == []


async def test_a_listener_that_raises_is_reported_and_the_others_still_hear() -> None:
    errors: list[str] = []
    listeners: Listeners[int] = Listeners(lambda _, exc: errors.append(str(exc)))
    seen: list[int] = []

    def broken(item: int) -> None:
        raise ValueError("listener bug")

    listeners.add(broken)
    listeners.add(seen.append)
    listeners.notify(1)
    assert seen == [1]
    assert errors == ["listener bug"]


async def test_an_engine_on_its_thread_obeys_pause_refresh_and_ingest_from_this_one() -> None:
    source = ScriptedSource(ok(1.0))
    engine = Engine(make_config({"id": "api"}, refresh="1h"), sources={"api": source})
    host = EngineThread(engine)
    seen: list[State] = []
    engine.subscribe(lambda snapshot: seen.append(snapshot.state))
    await host.start()
    try:
        assert host.alive
        await wait_for(lambda: source.calls == 1)
        await wait_for(lambda: engine.snapshot("api").state is State.OK)
        engine.pause()
        assert engine.paused  # at once, for the header drawn next
        engine.refresh("api")  # an explicit refresh polls even while paused
        await wait_for(lambda: source.calls == 2)
        snapshot = engine.ingest("api", ok(7.0))
        assert snapshot.value == 7.0
        assert engine.snapshot("api").value == 7.0
        await wait_for(lambda: State.OK in seen)  # delivered here, on this loop
    finally:
        await host.stop()
    assert not host.alive
    assert not engine.running
