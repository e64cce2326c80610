"""A drill's progress as it runs: a live Rich view on a terminal, plain lines otherwise.

Fed by the service's events (`Service.events`: every alert and every refusal as it is
written, every receipt as it is recorded) and the scenario's timeline (what comes next, on
the scenario clock); it never reads the record. Shows the scenario clock, the next timeline event,
the stages sent, the receipts and the failures (inputs the service refused).

    terminal      a Rich `Live` panel redrawn a few times a second, left on screen at the end
    not a terminal one line per alert and per refusal, and a receipts line when the count
                  has moved (at most every PLAIN_RECEIPTS_S seconds): for logs and CI
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from alertsim.domain.model import JST
from alertsim.drills.scenario import ActionEntry, DetectionEntry, Scenario
from alertsim.service.events import EventStream, Received, ServiceEvent, Written
from alertsim.service.records import OutboxMessage

__all__ = ["PLAIN_RECEIPTS_S", "DrillProgress"]

PLAIN_RECEIPTS_S = 2.0
LIVE_REFRESH_S = 0.25
STAGE_ORDER = ("shelter", "imminent", "passed", "fell_land", "fell_sea", "cancel", "national")


def _hms(moment: datetime) -> str:
    return f"{moment.astimezone(JST):%H:%M:%S}"


def _entry_words(entry: DetectionEntry | ActionEntry) -> str:
    if isinstance(entry, DetectionEntry):
        d = entry.detection
        return f"detection {d.event_id} #{d.sequence}" + (
            f" (outcome {d.outcome})" if d.outcome else "")
    return f"operator {entry.action} {entry.event_id}"


@dataclass
class DrillProgress:
    """What the drill has done so far, shown live or as lines on `out`.

    `live` None: a Rich view when `out` is a terminal. `console`: render there instead (a
    test's recording console)."""

    scenario: Scenario
    now: Callable[[], datetime]  # the scenario clock
    out: TextIO
    speed: float = 1.0
    live: bool | None = None
    console: Console | None = None
    stages: Counter[str] = field(default_factory=Counter)
    last_alert: str = ""
    receipts: int = 0
    failures: list[str] = field(default_factory=list)
    _shown: Live | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.live is None:
            isatty = getattr(self.out, "isatty", None)
            self.live = bool(callable(isatty) and isatty())
        if self.console is None:
            self.console = Console(file=self.out, force_terminal=self.live)

    # -- what happened ---------------------------------------------------------------

    def on_row(self, row: OutboxMessage) -> None:
        """Take in one outbox row: alerts and refusals count; states do not."""
        when = _hms(row.sim_time or self.now())
        if row.kind == "alert":
            place = row.prefecture or "national"
            self.stages[row.stage or "?"] += 1
            self.last_alert = f"{place} {row.stage} at {when}"
            self._line(f"[{when}] alert {place} {row.stage} ({row.msg_type})")
        elif row.kind == "error":
            try:
                reason = str(json.loads(row.payload).get("reason", "?"))
            except (ValueError, AttributeError):
                reason = "?"
            self.failures.append(reason)
            self._line(f"[{when}] refused input: {reason}")

    def on_event(self, event: ServiceEvent) -> None:
        """Take in one service event: rows written, receipts recorded."""
        if isinstance(event, Written):
            for row in event.rows:
                self.on_row(row)
        elif isinstance(event, Received):
            self.receipts += len(event.receipts)

    def _line(self, text: str) -> None:
        if not self.live:
            print(text, file=self.out, flush=True)

    def say(self, text: str) -> None:
        """A line from the drill itself: above the live view, or plainly."""
        if self._shown is not None:
            self._shown.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)

    # -- the view --------------------------------------------------------------------

    def next_event(self) -> str:
        """The next timeline entry on the scenario clock, or that there is none left."""
        now = self.now()
        for entry in self.scenario.timeline:
            moment = self.scenario.time_of(entry)
            if moment > now:
                left = (moment - now).total_seconds()
                return f"{_hms(moment)} {_entry_words(entry)} (in {left:.0f} s scenario time)"
        return "none: the timeline has been played"

    def stages_text(self) -> str:
        known = [s for s in STAGE_ORDER if self.stages[s]]
        others = sorted(s for s in self.stages if s not in STAGE_ORDER)
        parts = [f"{s} {self.stages[s]}" for s in (*known, *others)]
        return ", ".join(parts) if parts else "none yet"

    def view(self) -> RenderableType:
        """The live panel: one row per fact."""
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        status = self.scenario.status.upper()
        grid.add_row(Text(status, style="bold white on red"), self.scenario.title)
        grid.add_row("Scenario clock", f"{_hms(self.now())} JST (x{self.speed:g})")
        grid.add_row("Next event", self.next_event())
        sent = f"{self.stages_text()}" + (f"; last {self.last_alert}" if self.last_alert else "")
        grid.add_row("Stages sent", sent)
        grid.add_row("Receipts", str(self.receipts))
        failed = str(len(self.failures)) + (f": {self.failures[-1]}" if self.failures else "")
        grid.add_row("Failures", Text(failed, style="red" if self.failures else ""))
        return grid

    # -- running ---------------------------------------------------------------------

    async def _follow(self, events: AsyncIterator[ServiceEvent]) -> None:
        async for event in events:
            self.on_event(event)

    async def _plain(self) -> None:
        """A receipts line when the count has moved, at most every PLAIN_RECEIPTS_S (a
        pace for the reader, not a wait for anything)."""
        shown = 0
        while True:
            await asyncio.sleep(PLAIN_RECEIPTS_S)
            if self.receipts != shown:
                shown = self.receipts
                self._line(f"[{_hms(self.now())}] receipts so far: {shown}")

    async def _live(self) -> None:
        with Live(self.view(), console=self.console, refresh_per_second=4,
                  transient=False, redirect_stdout=False, redirect_stderr=False) as live:
            self._shown = live
            try:
                while True:
                    await asyncio.sleep(LIVE_REFRESH_S)  # the panel's redraw pace
                    live.update(self.view())
            finally:
                self._shown = None
                live.update(self.view(), refresh=True)

    async def run(self, events: EventStream) -> None:
        """Follow the drill's service events until cancelled."""
        follower = asyncio.create_task(self._follow(events.follow()), name="progress-follow")
        try:
            await (self._live() if self.live else self._plain())
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
