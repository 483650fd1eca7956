"""The `shell` step kind: a program with argv (or `/bin/sh -c` when `shell: true`).

A shell command can change anything and nothing can check it, so it is mutating unless the
config declares `readonly: true`, which is shown as a declaration, not a fact. The process
runs in its own session (process group): a timeout kills the whole group, a cancel sends it
SIGTERM and, if it lingers, SIGKILL. Output streams line by line to the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import ClassVar

from opstui.actions.base import (
    Classification,
    Executor,
    Outcome,
    OutputSink,
    PreparedStep,
    Progress,
    Verdict,
)
from opstui.actions.context import ExecutionContext
from opstui.config.types import Secret, format_duration, redact, reveal

KILL_AFTER = 3.0
"""Seconds between SIGTERM and SIGKILL when a command is cancelled."""
DRAIN = 1.0
"""Seconds to finish reading output after the process ended (a grandchild may hold it)."""
OUTPUT_LIMIT = 256 * 1024
CHUNK = 4096


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class _Collector:
    """Splits a byte stream into lines for the sink and keeps the text (capped)."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self._pending = b""

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.sink(text)
        if self.size + len(text) + 1 <= OUTPUT_LIMIT:
            self.parts.append(text)
            self.size += len(text) + 1
        else:
            self.dropped += 1

    def feed(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for raw in lines:
            self._line(raw)
        if len(self._pending) > CHUNK * 16:  # a very long line: pass it on in pieces
            self._line(self._pending)
            self._pending = b""

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = b""

    def text(self) -> str:
        tail = f"\n… ({self.dropped} more lines)" if self.dropped else ""
        return "\n".join(self.parts) + tail


async def _pump(stream: asyncio.StreamReader, collector: _Collector) -> None:
    while True:
        data = await stream.read(CHUNK)
        if not data:
            break
        collector.feed(data)
    collector.close()


class ShellExecutor(Executor):
    kind: ClassVar[str] = "shell"

    async def classify(self, step: PreparedStep, ctx: ExecutionContext) -> Verdict:
        if step.rendered.get("readonly"):
            return Verdict(Classification.READ_ONLY, "declared readonly: true (not verifiable)")
        return Verdict(Classification.MUTATING, "a shell command may change anything")

    async def execute(
        self,
        step: PreparedStep,
        ctx: ExecutionContext,
        *,
        read_only: bool,
        output: OutputSink,
        progress: Progress,
    ) -> Outcome:
        # Secrets (a ${SECRET} in argv or env) are revealed here, for the process only; what
        # is shown (equivalent, messages) uses their redacted form.
        argv = [reveal(a) if isinstance(a, Secret) else str(a) for a in step.rendered["argv"]]
        shown_program = redact(step.rendered["argv"][0]) if step.rendered["argv"] else "?"
        if step.rendered.get("shell"):
            argv = ["/bin/sh", "-c", argv[0]]
            shown_program = "/bin/sh"
        env = dict(os.environ)
        env.update(
            {
                str(k): reveal(v) if isinstance(v, Secret) else str(v)
                for k, v in (step.rendered.get("env") or {}).items()
            }
        )
        cwd = step.rendered.get("cwd") or None
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            reason = f"cannot run {shown_program}: {exc.strerror or type(exc).__name__}"
            return Outcome(ok=False, summary=reason, error=reason)
        collector = _Collector(output)
        assert process.stdout is not None
        reader = asyncio.create_task(_pump(process.stdout, collector))
        waiter = asyncio.create_task(process.wait())
        cancel = asyncio.create_task(progress.cancel.wait())
        ended = "exit"
        try:
            done, _ = await asyncio.wait(
                {waiter, cancel}, timeout=step.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                if cancel in done:
                    ended = "cancelled"
                    progress.message = "cancelling (SIGTERM)"
                    _signal_group(process.pid, signal.SIGTERM)
                    finished, _ = await asyncio.wait({waiter}, timeout=KILL_AFTER)
                    if not finished:
                        progress.message = "cancelling (SIGKILL)"
                        _signal_group(process.pid, signal.SIGKILL)
                else:
                    ended = "timeout"
                    _signal_group(process.pid, signal.SIGKILL)
            code = await waiter
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), DRAIN)
        except BaseException:
            _signal_group(process.pid, signal.SIGKILL)
            raise
        finally:
            cancel.cancel()
            if not reader.done():
                reader.cancel()
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGKILL)
        duration = loop.time() - started
        text = collector.text()
        if ended == "timeout":
            summary = f"timed out after {format_duration(step.timeout)} (process group killed)"
            return Outcome(
                ok=False, summary=summary, output=text, error="timeout", duration=duration
            )
        if ended == "cancelled":
            return Outcome(
                ok=False,
                summary="cancelled",
                output=text,
                error="cancelled",
                duration=duration,
                cancelled=True,
            )
        word = f"exit {code}" if code >= 0 else f"killed by signal {-code}"
        return Outcome(
            ok=code == 0,
            summary=word,
            output=text,
            error=None if code == 0 else word,
            duration=duration,
            data={"exit_code": code},
        )
