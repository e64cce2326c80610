"""The service's events: the one stream every view follows (dashboard, drill progress,
drill settle), pushed as things happen, so no view reads the record to find out.

    Written    rows committed to the outbox: alerts, retained states, and refusals and
               withheld messages as told on the errors topic
    Decided    an accepted detection and what it predicts (the event's track)
    Closed     an event closed (automatically or by the operator)
    Received   receipts recorded, whatever the receiver (reference, fleet, subscriber)
    Published  rows the broker acknowledged; `depth`: rows written and not yet acknowledged

`EventStream.follow()` yields them in order. A follower that falls `BACKLOG` events
behind is cut off (`Lagged` is raised from its iterator) instead of slowing the service:
emitting never waits and never fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import structlog

from alertsim.domain.detection import Detection
from alertsim.service.records import OutboxMessage

__all__ = [
    "BACKLOG",
    "Closed",
    "Decided",
    "EventStream",
    "Lagged",
    "Published",
    "ReceiptSeen",
    "Received",
    "ServiceEvent",
    "Written",
]

log = structlog.get_logger("alertsim.service")
BACKLOG = 10_000


@dataclass(frozen=True)
class Written:
    rows: tuple[OutboxMessage, ...]


@dataclass(frozen=True)
class Decided:
    detection: Detection


@dataclass(frozen=True)
class Closed:
    event_id: str


@dataclass(frozen=True)
class ReceiptSeen:
    """One recorded receipt: who acknowledged which alert, and when it arrived there."""

    client_id: str
    message_id: str
    received_at: datetime


@dataclass(frozen=True)
class Received:
    receipts: tuple[ReceiptSeen, ...]


@dataclass(frozen=True)
class Published:
    count: int
    depth: int


ServiceEvent = Written | Decided | Closed | Received | Published


class Lagged(Exception):
    """The follower fell `BACKLOG` events behind and was cut off; follow again and resync."""


class EventStream:
    """Fan-out of service events to every follower, each through its own bounded queue."""

    def __init__(self, backlog: int = BACKLOG) -> None:
        self.backlog = backlog
        self._queues: set[asyncio.Queue[ServiceEvent | None]] = set()

    def emit(self, event: ServiceEvent) -> None:
        for queue in list(self._queues):
            if queue.qsize() < self.backlog:
                queue.put_nowait(event)
                continue
            # Cut off: what it has stays in order, then the marker (the one spare slot)
            self._queues.discard(queue)
            queue.put_nowait(None)
            log.warning("follower.dropped", backlog=self.backlog)

    def subscribe(self) -> asyncio.Queue[ServiceEvent | None]:
        """A queue that receives every event from now on (None: cut off for lagging).

        Subscribing before reading a starting picture loses nothing in between."""
        queue: asyncio.Queue[ServiceEvent | None] = asyncio.Queue(maxsize=self.backlog + 1)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ServiceEvent | None]) -> None:
        self._queues.discard(queue)

    def follow(self) -> AsyncIterator[ServiceEvent]:
        """Every event from the moment of this call, in order; raises Lagged when cut off.

        Subscribes at once (not at the first `anext`), so a task started later misses
        nothing emitted in between."""
        return self._drain(self.subscribe())

    async def _drain(self, queue: asyncio.Queue[ServiceEvent | None],
                     ) -> AsyncIterator[ServiceEvent]:
        try:
            while (event := await queue.get()) is not None:
                yield event
            raise Lagged(f"fell {self.backlog} events behind the service")
        finally:
            self.unsubscribe(queue)

    @property
    def followers(self) -> int:
        return len(self._queues)
