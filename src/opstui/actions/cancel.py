"""Escape cancels a running step: the executors' common way to give up on work midway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from opstui.actions.base import Progress

T = TypeVar("T")


async def until_cancelled(work: Awaitable[T], progress: Progress) -> T | None:
    """Await `work` unless `progress.cancel` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(work)
    cancel = asyncio.ensure_future(progress.cancel.wait())
    try:
        await asyncio.wait({task, cancel}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # our caller gave up (the runner's deadline): so does work
        task.cancel()
        raise
    finally:
        cancel.cancel()
    if task.done():
        return task.result()
    task.cancel()
    # The work was abandoned: whatever it raises on the way out no longer matters.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None
