"""`ProcessFleet`: N receivers in K shard processes, started, asked and stopped together.

    fleet = ProcessFleet(plan, url=..., status="exercise", tree=TopicTree(root), shards=2)
    ready = await fleet.start()      # FleetReady: every receiver subscribed, or BrokerError
    await fleet.wait_for({identifier: expected_count}, timeout_s=...)
    result = await fleet.stop()      # result.summary (FleetSummary), result.records

Shards push their progress (at most one line per `shard.PUSH_EVERY_S`, when it changed);
the fleet keeps each shard's latest and wakes its waiters on each push, so `wait_until`
waits on the shards' word, never on a timer, and `progress()` is a fresh total for free.

`plan` maps client id -> prefecture code (`alertsim.fleet.population.plan`). Receivers are
dealt round-robin to the shards, so each shard holds every kind of prefecture. The ready
deadline grows with N (`ready_deadline`); connections open `window` at a time per shard.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.errors import BrokerError
from alertsim.fleet.shard import SHARD_LINE, ShardConfig, ShardLine, ShardReady
from alertsim.fleet.summary import FleetReady, FleetSummary, summarise
from alertsim.fleet.tally import NATIONAL, ReceiverTally, ShardProgress, ShardReport
from alertsim.logs import get_logger

__all__ = ["FleetResult", "ProcessFleet", "default_shards", "ready_deadline"]

log = get_logger(__name__)

READY_BASE_S = 10.0
READY_PER_RECEIVER_S = 0.002  # 10,000 receivers: 30 s; 20,000: 50 s
RECEIVERS_PER_SHARD = 2500  # below this one process is quicker than two
_LINE_LIMIT = 2**28  # a shard's report is one JSON line (tens of MB at 20,000 receivers)

Line = TypeVar("Line", ShardReady, ShardProgress, ShardReport)


def ready_deadline(receivers: int) -> float:
    """Seconds the whole fleet gets to subscribe: a base plus a little per receiver."""
    return READY_BASE_S + receivers * READY_PER_RECEIVER_S


def default_shards(receivers: int) -> int:
    """One shard per RECEIVERS_PER_SHARD receivers, at most one per core."""
    return max(1, min(os.cpu_count() or 1, math.ceil(receivers / RECEIVERS_PER_SHARD)))


@dataclass(frozen=True)
class FleetResult:
    """What a stopped fleet reports: the summary and every receiver's record."""

    summary: FleetSummary
    records: tuple[ReceiverTally, ...] = field(repr=False)


@dataclass
class _Process:
    process: asyncio.subprocess.Process
    config: ShardConfig
    # Reads every line once the shard is ready; its result is the shard's report.
    listener: asyncio.Task[ShardReport | None] | None = None

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self) -> ShardLine:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise BrokerError(f"a fleet shard exited (code {await self.process.wait()})")
        try:
            return SHARD_LINE.validate_json(line)
        except ValidationError as exc:
            raise BrokerError(f"a fleet shard said something unexpected: {exc}") from exc

    async def read_until(self, kind: type[Line]) -> Line:
        """The next line of `kind` (earlier lines of other kinds are skipped)."""
        while not isinstance(line := await self.read(), kind):
            pass
        return line


class ProcessFleet:
    """N lightweight MQTT 5 receivers in `shards` processes (default: `default_shards`)."""

    def __init__(self, plan: Mapping[str, str], *, url: str, status: Status,
                 tree: TopicTree = V1, shards: int | None = None, national: bool = True,
                 ca_file: Path | None = None, window: int = 64,
                 spread_urls: Sequence[str] = ()) -> None:
        self.plan = dict(plan)
        self.url = url
        # Shard k connects to urls[k % len(urls)]: more brokers (bridged to the first) for
        # more receivers than one broker process has file handles.
        self.urls = (url, *spread_urls)
        self.status: Status = status
        self.tree = tree
        self.national = national
        wanted = max(shards or default_shards(len(plan)), len(self.urls))
        self.shards = max(1, min(wanted, max(1, len(plan))))
        self.ca_file = ca_file
        self.window = window
        self.listeners = Counter(self.plan.values())
        self.ready: FleetReady | None = None
        self._processes: list[_Process] = []
        self._started = 0.0
        self._latest: dict[int, ShardProgress] = {}  # shard -> its last push (kept on stop)
        self._changed = asyncio.Condition()  # notified on each push and each shard's end
        self._failure: str | None = None  # why a shard ended before it was stopped

    def expected(self, place: str | None) -> int:
        """How many receivers listen to a place's alerts (None or "national": all)."""
        if place in (None, NATIONAL):
            return len(self.plan) if self.national else 0
        return self.listeners[place]

    def _configs(self, timeout_s: float) -> list[ShardConfig]:
        receivers = list(self.plan.items())
        return [ShardConfig(url=self.urls[k % len(self.urls)], receivers=receivers[k::self.shards],
                            alert_prefix=self.tree.alerts(self.status, "01")[:-2],
                            state_prefix=self.tree.state(self.status, ""),
                            national=self.national, window=self.window,
                            ready_timeout_s=timeout_s,
                            ca_file=None if self.ca_file is None else str(self.ca_file))
                for k in range(self.shards)]

    async def start(self, timeout_s: float | None = None) -> FleetReady:
        """Start the shards and wait until every receiver is subscribed (BrokerError if
        not within `timeout_s`, default `ready_deadline(N)`); the fleet's ready figures."""
        if self._processes:
            raise RuntimeError("the fleet is already started")
        limit = ready_deadline(len(self.plan)) if timeout_s is None else timeout_s
        self._started = time.monotonic()
        self._latest, self._failure = {}, None
        for config in self._configs(limit):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "alertsim.fleet.shard", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, limit=_LINE_LIMIT)
            self._processes.append(_Process(process, config))
            await self._processes[-1].send(json.dumps(asdict(config)))
        found = await asyncio.gather(*(p.read_until(ShardReady) for p in self._processes),
                                     return_exceptions=True)
        for index, shard in enumerate(self._processes):  # from now on they push progress
            shard.listener = asyncio.create_task(self._listen(index, shard),
                                                 name=f"fleet-shard-{index}")
        lines = [line for line in found if isinstance(line, ShardReady)]
        ready = self.ready = FleetReady(
            receivers=len(self.plan), shards=self.shards,
            subscribed=sum(line.subscribed for line in lines),
            connect_s=round(time.monotonic() - self._started, 3),
            rss_mb=round(sum(line.rss_mb for line in lines), 1))
        errors = [line.error if isinstance(line, ShardReady) else str(line) for line in found]
        if any(errors) or ready.subscribed < len(self.plan):
            await self.stop()
            raise BrokerError(f"fleet: {ready.subscribed} of {len(self.plan)} "
                              f"receivers subscribed within {limit:.0f} s"
                              + "".join(f" ({error})" for error in errors[:1] if error))
        log.info("fleet.ready", **ready.model_dump())
        return ready

    async def _listen(self, index: int, shard: _Process) -> ShardReport | None:
        """Keep `shard`'s pushed progress, waking the waiters on each line, until its
        report (the result); None for a shard that ended without one."""
        report = None
        try:
            while not isinstance(line := await shard.read(), ShardReport):
                if isinstance(line, ShardProgress):
                    self._latest[index] = line
                    async with self._changed:
                        self._changed.notify_all()
            report = line
        except BrokerError as exc:
            self._failure = str(exc)
        async with self._changed:
            self._changed.notify_all()
        return report

    def progress(self) -> Counter[str]:
        """First deliveries so far per alert identifier, all shards together (each as of
        its last push, at most `PUSH_EVERY_S` behind)."""
        delivered: Counter[str] = Counter()
        for line in self._latest.values():
            delivered.update(line.delivered)
        return delivered

    @property
    def duplicates(self) -> int:
        """Extra copies of an identifier at a receiver, all shards, as last pushed."""
        return sum(line.duplicates for line in self._latest.values())

    @property
    def wrong_area(self) -> int:
        """Alerts naming another prefecture than the receiver's, as last pushed."""
        return sum(line.wrong_area for line in self._latest.values())

    async def wait_for(self, expected: Mapping[str, int], timeout_s: float) -> bool:
        """Wait until each identifier has reached its expected number of receivers;
        False when `timeout_s` passes first."""
        found = await self.wait_until(
            lambda delivered: all(delivered[ident] >= n for ident, n in expected.items()),
            timeout_s)
        return found is not None

    async def wait_until(self, done: Callable[[Counter[str]], bool],
                         timeout_s: float) -> Counter[str] | None:
        """Wait until `done(delivered)`, judged again on each shard's push; the deliveries
        then, None on timeout. BrokerError if a shard ends meanwhile."""

        def judged() -> bool:
            if self._failure is not None:
                raise BrokerError(self._failure)
            return done(self.progress())

        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(judged)
        except TimeoutError:
            return None
        return self.progress()

    async def stop(self) -> FleetResult:
        """Disconnect every receiver and end the shards; what they got."""
        processes, self._processes = self._processes, []
        reports: list[ShardReport] = []
        for shard in processes:
            with contextlib.suppress(ConnectionError):  # a shard that died: no report
                await shard.send("stop")
            if shard.process.stdin is not None:
                shard.process.stdin.close()
            if shard.listener is not None and (report := await shard.listener) is not None:
                reports.append(report)
            await shard.process.wait()
        return self._result(reports)

    def _result(self, reports: Sequence[ShardReport]) -> FleetResult:
        summary = FleetSummary(
            receivers=len(self.plan), shards=self.shards, status=self.status,
            topic_root=self.tree.root,
            connect_s=None if self.ready is None else self.ready.connect_s,
            rss_mb=round(sum(r.rss_mb for r in reports), 1),
            duration_s=round(time.monotonic() - self._started, 3), **dict(summarise(reports)))
        return FleetResult(summary, tuple(r for report in reports for r in report.receivers))
