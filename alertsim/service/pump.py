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

Refused publishes (`Refused`: an MQTT 5 PUBACK with a failure reason code, e.g. an ACL
denial) are never marked: the row stays unpublished (the outbox depth counts it, the record
keeps it pending), each refusal is logged (`outbox.publish_refused`, with the reason code)
and the row is tried again after REFUSED_RETRY_S[attempt] seconds (1, 2, 5, 10, 30, then
every 60 s while the link is up; a reconnect starts it over). While it waits it holds no
window slot, so one refused topic never stops the others; it therefore loses its place in
the order. A refused state that a later state of its place has followed is marked without
being sent again (the later one holds the truth). MQTT 3.1.1 has no refusal in its PUBACK:
a broker that denies a 3.1.1 publish drops it silently and it counts as published.

`OutboxGauge` counts rows written and not yet acknowledged, wakes the pump, and tells the
views (`Written`, `Published` events).

`window=1` is the serial pump kept as a baseline: publish, wait for the PUBACK, mark that
row, next (`serve --publish-window 1`, benchmarks/bench_burst.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from alertsim.errors import BrokerError, StoreError
from alertsim.service.clock import real_now
from alertsim.service.events import EventStream, Published, Written
from alertsim.service.observer import Observer
from alertsim.service.outgoing import publication
from alertsim.service.ports import Clock, Publisher, Record
from alertsim.service.records import OutboxMessage, OutboxRow

__all__ = ["PUBLISH_WINDOW", "REFUSED_RETRY_S", "OutboxGauge", "OutboxPump", "Refused",
           "retry_delay"]

log = structlog.get_logger("alertsim.service")

PUBLISH_WINDOW = 64  # QoS 1 publishes awaiting their PUBACK at once
Marked = Callable[[list[OutboxRow], datetime], None]
# Seconds before a refused row is tried again, by attempt; the last one repeats. Bounded:
# a denied topic costs one publish a minute, not a busy loop.
REFUSED_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Refused(BrokerError):
    """The broker answered a publish and will not deliver it (`reason_code` >= 0x80)."""

    def __init__(self, text: str, *, reason_code: int, reason: str) -> None:
        super().__init__(text)
        self.reason_code = reason_code
        self.reason = reason


def retry_delay(attempt: int) -> float:
    """Seconds to wait after refusal number `attempt` (0-based) of one row."""
    return REFUSED_RETRY_S[min(attempt, len(REFUSED_RETRY_S) - 1)]


def _report(row: OutboxRow, refusal: Refused, attempt: int) -> float:
    """Log one refusal of `row`; the seconds until it is tried again."""
    delay = retry_delay(attempt)
    log.warning("outbox.publish_refused", message_id=row.message_id, kind=row.kind,
                topic=row.topic, reason_code=f"0x{refusal.reason_code:02X}",
                reason=refusal.reason, attempt=attempt + 1, retry_in_s=delay)
    return delay


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
    # Highest seq of a state sent per topic: a refused state older than it is superseded.
    _latest_state: dict[str, int] = field(default_factory=dict, init=False, repr=False)

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
                if row.kind == "state":
                    self._latest_state[row.topic] = row.seq
                await slots.acquire()
                group.create_task(self._publish(publisher, row, slots, acked))
            await self.changed.wait()

    async def _publish(self, publisher: Publisher, row: OutboxRow, slots: asyncio.Semaphore,
                       acked: _Acked) -> None:
        """Publish `row` in a slot the caller acquired; refused, again after a delay."""
        for attempt in itertools.count():
            try:
                await publisher.publish(publication(row, self.clock))
            except Refused as refusal:
                delay = _report(row, refusal, attempt)
            else:
                break
            finally:
                slots.release()
            await asyncio.sleep(delay)
            if self._superseded(row):
                break
            await slots.acquire()
        acked.add(row)

    def _superseded(self, row: OutboxRow) -> bool:
        """A state of a place whose later state has been sent since."""
        return row.kind == "state" and self._latest_state.get(row.topic, 0) > row.seq

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
                await self._serial_publish(publisher, row)
                at = real_now()
                await self.store.mark_all_published([row.message_id], at)
                self.on_marked([row], at)
            await self.changed.wait()


    async def _serial_publish(self, publisher: Publisher, row: OutboxRow) -> None:
        """Publish `row`; refused, again after a delay, holding the rows behind it back."""
        for attempt in itertools.count():
            try:
                await publisher.publish(publication(row, self.clock))
            except Refused as refusal:
                await asyncio.sleep(_report(row, refusal, attempt))
            else:
                return


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
