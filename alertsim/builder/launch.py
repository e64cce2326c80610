"""Drills started from the builder page: `alertsim drill FILE --dashboard --port 0` as a
subprocess each, the dashboard URL read from what it prints, its output kept in a log
beside its reports; every drill is ended (Ctrl-C, so it writes its report) when the
builder stops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from alertsim.errors import ScenarioError

__all__ = ["DrillRuns"]

START_TIMEOUT_S = 120.0  # broker, service, 47 receivers and the page on a busy machine
STOP_TIMEOUT_S = 60.0  # the report is written after Ctrl-C
MARK = "dashboard: "  # the line `alertsim drill --dashboard` prints its URL on


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class _Run:
    process: asyncio.subprocess.Process
    log: IO[bytes]
    url: asyncio.Future[str]
    reader: asyncio.Task[None] | None = None


@dataclass
class DrillRuns:
    """The drills this builder started, until `stop_all`."""

    reports: Path
    command: Sequence[str] = (sys.executable, "-m", "alertsim")
    runs: list[_Run] = field(default_factory=list)

    async def start(self, scenario: Path) -> str:
        """Start the drill of `scenario`; its dashboard URL once printed. ScenarioError when
        it exits first (its output is in the log named)."""
        self.reports.mkdir(parents=True, exist_ok=True)
        log_path = self.reports / f"{scenario.stem}-drill.log"
        process = await asyncio.create_subprocess_exec(
            *self.command, "drill", str(scenario), "--dashboard", "--port", "0",
            "--reports", str(self.reports), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
            # A Ctrl-C at the builder's terminal is ours to pass on; SIGINT back to its
            # default, as a builder started in the background has it ignored.
            start_new_session=True, preexec_fn=_default_sigint)
        run = _Run(process, log_path.open("wb"), asyncio.get_running_loop().create_future())
        run.reader = asyncio.create_task(self._follow(run), name=f"drill-output-{process.pid}")
        self.runs.append(run)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                return await run.url
        except TimeoutError as exc:
            raise ScenarioError(f"the drill printed no dashboard URL within "
                                f"{START_TIMEOUT_S:g} s; see {log_path}") from exc

    async def _follow(self, run: _Run) -> None:
        """Copy the drill's output to its log (a full pipe would stall it), taking the
        URL from it."""
        assert run.process.stdout is not None
        async for raw in run.process.stdout:
            run.log.write(raw)
            run.log.flush()
            line = raw.decode("utf-8", "replace")
            if MARK in line and not run.url.done():
                run.url.set_result(line.split(MARK, 1)[1].strip())
        code = await run.process.wait()
        if not run.url.done():
            run.url.set_exception(ScenarioError(
                f"the drill exited with code {code} before its dashboard started; see "
                f"{run.log.name!s}"))

    async def stop_all(self) -> None:
        """Ctrl-C to every drill still running, then wait for each (killed past the
        timeout)."""
        for run in self.runs:
            if run.process.returncode is None:
                run.process.send_signal(signal.SIGINT)
        for run in self.runs:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await run.process.wait()
            except TimeoutError:
                run.process.kill()
                await run.process.wait()
            if run.reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await run.reader
            if not run.url.done():
                run.url.cancel()
            run.log.close()
        self.runs.clear()
