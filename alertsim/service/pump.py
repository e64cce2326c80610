"""The outbox pump: every unpublished row out, in order, with a window of them in flight.

    unpublished rows (seq order) -> up to `window` QoS 1 publishes awaiting their PUBACK
                                 -> acknowledged rows marked published in batches
                                    (one transaction for all the PUBACKs that came in
                                    while the previous batch was being written)

Order: publishes are started in seq order and a `Publisher` hands its message to the
connection before it first suspends (see `ports.Publisher`), so they leave on the one
connection in seq order, and the broker keeps that order per topic (MQTT 4.6): an Update
never overtakes its Alert. At least once: a row is marked only after its PUBACK; rows in
flight or acknowledged but not yet marked when the broker goes away are published again
by the next pump (receivers de-duplicate by identifier). A failed publish ends the pump
with its BrokerError, as the serial pump did.

States coalesce: of several unpublished retained states of one prefecture fetched
together (a burst touches a prefecture again and again), only the last is sent, at its
own place in the order; the earlier ones are marked without being sent (a retained
topic keeps only the last anyway, and every (re)connect restates every prefecture).

`OutboxGauge` counts rows written and not yet acknowledged, wakes the pump, and tells the
views (`Written`, `Published` events).

`window=1` is the serial pump kept as a baseline: publish, wait for the PUBACK, mark that
row, next (`serve --publish-window 1`, benchmarks/bench_burst.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from alertsim.errors import StoreError
from alertsim.service.clock import real_now
from alertsim.service.events import EventStream, Published, Written
from alertsim.service.observer import Observer
from alertsim.service.outgoing import publication
from alertsim.service.ports import Clock, Publisher, Record
from alertsim.service.records import OutboxMessage, OutboxRow

__all__ = ["PUBLISH_WINDOW", "OutboxGauge", "OutboxPump"]

log = structlog.get_logger("alertsim.service")

PUBLISH_WINDOW = 64  # QoS 1 publishes awaiting their PUBACK at once
Marked = Callable[[list[OutboxRow], datetime], None]


@dataclass
class _Acked:
    """Rows the broker acknowledged, waiting to be marked published."""

    rows: list[OutboxRow] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, row: OutboxRow) -> None:
        self.rows.append(row)
        self.ready.set()


@dataclass
class OutboxPump:
    """Publishes the outbox of one service; `changed` is set whenever rows were written."""

    store: Record
    clock: Clock
    changed: asyncio.Event
    on_marked: Marked  # called with each batch once it is marked
    window: int = PUBLISH_WINDOW

    async def run(self, publisher: Publisher) -> None:
        """Publish every unpublished row, forever; the first BrokerError ends it."""
        if self.window <= 1:
            await self._serial(publisher)
            return
        acked = _Acked()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._mark_forever(acked), name="outbox-marker")
                await self._dispatch_forever(publisher, group, acked)
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0]  # noqa: B904 - the group itself is the context
        finally:
            await self._last_marks(acked)

    async def _dispatch_forever(self, publisher: Publisher, group: asyncio.TaskGroup,
                                acked: _Acked) -> None:
        slots = asyncio.Semaphore(self.window)
        last_seq = 0  # rows up to here are in flight or done: never fetched twice
        while True:
            self.changed.clear()
            rows = await self.store.unpublished(after=last_seq)
            latest_state = {r.topic: r.seq for r in rows if r.kind == "state"}
            for row in rows:
                last_seq = row.seq
                if row.kind == "state" and latest_state[row.topic] != row.seq:
                    acked.add(row)  # superseded: a later state of the place follows
                    continue
                await slots.acquire()
                group.create_task(self._publish(publisher, row, slots, acked))
            await self.changed.wait()

    async def _publish(self, publisher: Publisher, row: OutboxRow, slots: asyncio.Semaphore,
                       acked: _Acked) -> None:
        try:
            await publisher.publish(publication(row, self.clock))
        finally:
            slots.release()
        acked.add(row)

    async def _mark_forever(self, acked: _Acked) -> None:
        while True:
            await acked.ready.wait()
            acked.ready.clear()
            await self._mark(acked)

    async def _mark(self, acked: _Acked) -> None:
        # Rows leave `acked` only once marked: a batch cut short by cancellation is marked
        # again by `_last_marks` (marking twice is harmless).
        batch = acked.rows[:]
        if batch:
            at = real_now()
            await self.store.mark_all_published([r.message_id for r in batch], at)
            del acked.rows[:len(batch)]
            self.on_marked(batch, at)

    async def _last_marks(self, acked: _Acked) -> None:
        """Mark what was acknowledged before the pump ended, so it is not sent again."""
        if not acked.rows:
            return
        try:
            await asyncio.shield(self._mark(acked))
        except (StoreError, asyncio.CancelledError) as exc:
            log.debug("outbox.last_marks_skipped", error=str(exc) or type(exc).__name__)

    async def _serial(self, publisher: Publisher) -> None:
        """The baseline: one publish, its PUBACK and its own UPDATE at a time."""
        while True:
            self.changed.clear()
            for row in await self.store.unpublished():
                await publisher.publish(publication(row, self.clock))
                at = real_now()
                await self.store.mark_all_published([row.message_id], at)
                self.on_marked([row], at)
            await self.changed.wait()


class OutboxGauge:
    """Rows written and not yet acknowledged: the depth gauge, the pump's wake-up, and the
    `Written` and `Published` events the views follow."""

    def __init__(self, observer: Observer, events: EventStream) -> None:
        self.observer = observer
        self.events = events
        self.changed = asyncio.Event()  # rows were written: the pump looks again
        self.depth = 0  # exact once `reset` has read the record at the pump's start

    def reset(self, depth: int) -> None:
        self.depth = depth
        self.observer.outbox_depth(depth)

    def written(self, rows: Sequence[OutboxMessage]) -> None:
        self.depth += len(rows)
        self.observer.outbox_depth(self.depth)
        self.changed.set()
        self.events.emit(Written(tuple(rows)))

    def marked(self, rows: list[OutboxRow], at: datetime) -> None:
        """A batch of rows acknowledged and marked: metrics, the alert log, the views."""
        self.depth = max(0, self.depth - len(rows))
        self.observer.outbox_depth(self.depth)
        self.events.emit(Published(len(rows), self.depth))
        for row in rows:
            self.observer.published(row.kind, (at - row.created_at).total_seconds())
            if row.kind == "alert":
                log.info("alert.published", event_id=row.event_id,
                         prefecture=row.prefecture or "national", stage=row.stage,
                         topic=row.topic, identifier=row.message_id)
