"""The alert service: inputs in, lifecycle transitions, everything out through the outbox.

    detections / operator actions / receipts (bytes)
        -> guard (receipts: rate per client) over it: refused as "rate"
        -> validate (size, JSON, schema)     bad: refused (`boundary`): an excerpt row and
                                             an errors-topic message, or past the client's
                                             refusal rate only its counter
        -> admit (duplicate, stale, closed, old or conflicting: refused with a reason)
        -> record the input                  durable before the broker is acknowledged
        -> decide, transition (pure core, one input at a time under a lock)
        -> one transaction: event state, decision, outbox rows, input marked processed
    pump: outbox -> publisher, a window of publishes in flight -> marked published in
          batches on PUBACK (re-sent after a restart; `pump.OutboxPump`)
    receipts: parsed and recorded in batches (one transaction each)
    timers: sleep until the next window end / automatic close, then tick
    start-up: open events resume; recorded inputs not yet acted on are acted on now
    events: what happened is pushed on `Service.events` (service/events.py) for the views

The service owns no connection: `adapters.mqtt.link.run_link` connects to the broker,
feeds inputs to `Service.accept_*`, and runs the pump with a publisher bound to the client.
Tests drive `Service` directly with an in-memory publisher and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence

import structlog

from alertsim.domain.admission import Admission, Refused, admit_action, admit_detection
from alertsim.domain.detection import Detection
from alertsim.domain.event_state import EventState, Transition
from alertsim.domain.messages import STATE_EVENTS_MAX, Receipt
from alertsim.domain.operator import OperatorAction
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import (
    PREFECTURE_CODES,
)
from alertsim.service.boundary import Boundary, GuardedRecord
from alertsim.service.budget import RecordBudget
from alertsim.service.clock import real_now
from alertsim.service.config import ServiceConfig
from alertsim.service.events import (
    Closed,
    Decided,
    EventStream,
    ReceiptSeen,
    Received,
)
from alertsim.service.observer import NullObserver, Observer
from alertsim.service.outgoing import outbox_of, state_message
from alertsim.service.ports import Clock, Publisher
from alertsim.service.pump import OutboxGauge, OutboxPump
from alertsim.service.records import (
    Change,
    DecisionRecord,
    OutboxMessage,
    ProcessedInput,
)

__all__ = ["Service"]

log = structlog.get_logger("alertsim.service")


class Service:
    def __init__(self, *, atlas: Atlas, store: GuardedRecord, config: ServiceConfig,
                 clock: Clock, observer: Observer | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.observer: Observer = observer or NullObserver()
        self._deferred: set[str] | None = None  # prefectures whose state waits for `batch`
        self.engine = config.engine(atlas)
        self._closed: set[str] = set()  # closed before this run (this run's stay in engine)
        self._lock = asyncio.Lock()
        self._timeline_changed = asyncio.Event()
        # What happened, pushed to the views (dashboard, drill progress and settle)
        self.events = EventStream()
        self.outbox = OutboxGauge(self.observer, self.events)
        self.budget = RecordBudget(store, config.max_record_bytes)
        self.boundary = Boundary(store, config, self.outbox, self.budget)
        self.once_set: frozenset[str] | None = None  # states the record set; None: all 47

    # -- start-up --------------------------------------------------------------------

    async def resume(self) -> int:
        """Reload open events, then act on inputs recorded but not yet acted on.

        Returns how many events were open. Rows still unpublished go out with the pump.
        """
        rows = await self.store.open_events()
        for row in rows:
            self.engine.restore(EventState.model_validate_json(row.state_json))
        self._closed = await self.store.closed_event_ids()
        async with self._lock:
            for pending in await self.store.pending_inputs():
                log.info("input.resumed", kind=pending.kind, id=pending.id)
                if pending.kind == "detection":
                    await self._act_on_detection(
                        Detection.model_validate_json(pending.raw), pending.id)
                else:
                    await self._act_on_action(
                        OperatorAction.model_validate_json(pending.raw), pending.id)
        self._timeline_changed.set()
        self.outbox.changed.set()
        return len(rows)

    # -- inputs ----------------------------------------------------------------------

    async def accept_detection(self, raw: bytes, *, source: str | None = None) -> bool:
        """Validate, admit, record and act on one detection payload. False when rejected.

        `source` (the topic it came from) defaults to the tree's detections topic."""
        source = source or self.config.topics.detections
        detection = await self.boundary.parse(Detection, raw, source)
        if detection is None:
            return False
        async with self._lock:
            verdict = await self._admit(detection)
            if isinstance(verdict, Refused):
                self.observer.detection("refused")
                await self.reject(raw, verdict.reason, source)
                return False
            if verdict == "duplicate":
                self.observer.detection("duplicate")
                log.info("detection.duplicate", event_id=detection.event_id,
                         sequence=detection.sequence)
                return True
            self.observer.detection("accepted")
            row_id = await self.store.record_detection(
                raw=raw, parsed_json=detection.model_dump_json(), event_id=detection.event_id,
                sequence=detection.sequence, source=source, received_at=real_now())
            alerts = await self._act_on_detection(detection, row_id)
            self.events.emit(Decided(detection))
        log.info("detection.accepted", event_id=detection.event_id,
                 sequence=detection.sequence, alerts=alerts)
        return True

    async def _admit(self, detection: Detection) -> Admission:
        known = self.engine.events.get(detection.event_id)
        closed = detection.event_id in self._closed
        recorded = None
        if closed or (known is not None and detection.sequence <= known.last_sequence):
            row = await self.store.detection(detection.event_id, detection.sequence)
            recorded = None if row is None else Detection.model_validate_json(row.parsed_json)
        return admit_detection(detection, known, closed=closed, recorded=recorded,
                               now=self.clock.now(), limits=self.config.limits)

    async def _act_on_detection(self, detection: Detection, row_id: int) -> int:
        """Decide and transition a recorded detection; commit it all, marked processed."""
        known = self.engine.events.get(detection.event_id)
        nonce = known.nonce if known else uuid.uuid4().hex[:8]
        transition = self.engine.detection(detection, now=self.clock.now(), nonce=nonce,
                                           secret=secrets.token_hex(16))
        decisions: tuple[DecisionRecord, ...] = ()
        if transition.state.decision is not None and transition.state != known:
            decisions = (DecisionRecord(
                event_id=detection.event_id, sequence=detection.sequence,
                decision_json=transition.state.decision.model_dump_json(),
                decided_at=real_now()),)
        await self._apply([transition], decisions=decisions, processed=("detection", row_id),
                          source=self.config.topics.detections)
        if decisions:
            self.observer.decision()
        return len(transition.alerts)

    async def accept_operator(self, raw: bytes, *, source: str | None = None) -> bool:
        """Validate, admit, record and apply one operator action. False when rejected."""
        source = source or self.config.topics.operator
        command = await self.boundary.parse(OperatorAction, raw, source)
        if command is None:
            return False
        async with self._lock:
            verdict = admit_action(command, self.engine.events.get(command.event_id),
                                   closed=command.event_id in self._closed)
            if isinstance(verdict, Refused):
                await self._refuse_action(raw, command, verdict.reason, source)
                return False
            row_id = await self.store.record_operator_action(
                raw=raw, event_id=command.event_id, action=command.action, source=source,
                received_at=real_now(), by=command.by)
            await self._act_on_action(command, row_id)
        log.info("operator.applied", action=command.action, event_id=command.event_id,
                 by=command.by)
        return True

    async def _refuse_action(self, raw: bytes, command: OperatorAction, reason: str,
                             source: str) -> None:
        """Refuse a well-formed action; the audit log keeps it with the reason as its answer
        when the refusal got a row (within its client's refusal rate and the record's cap)."""
        if await self.boundary.refuse(raw, reason, source):
            await self.store.record_refused_action(
                raw=raw, event_id=command.event_id, action=command.action, source=source,
                received_at=real_now(), by=command.by, reason=reason)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Inputs handled inside write the states they touch once, at the end (a burst
        touches a place again and again; only its last state matters). Alerts go out as
        each input is acted on; states lost to a stop inside are restated on connect.
        Refusals counted inside are written once too (`Boundary.gathered`)."""
        if self._deferred is not None:
            yield
            return
        self._deferred = set()
        try:
            async with self.boundary.gathered():
                yield
            async with self._lock:  # held by every writer of `_deferred` (`_apply`)
                rows = [self._state(code) for code in sorted(self._deferred)]
                await self.store.enqueue(rows)
                self._deferred = None  # only now: `drained` is False until they are queued
        finally:
            self._deferred = None
        if rows:
            self.outbox.written(rows)

    async def _act_on_action(self, command: OperatorAction, row_id: int) -> None:
        transition = self.engine.action(command, now=self.clock.now())
        await self._apply([] if transition is None else [transition],
                          processed=("operator", row_id), source=self.config.topics.operator)

    async def accept_receipt(self, raw: bytes, *, source: str) -> bool:
        return await self.accept_receipts([(raw, source)]) == 1

    async def accept_receipts(self, messages: Sequence[tuple[bytes, str]]) -> int:
        """Check (payload, topic) receipts (client rate, size, schema) and record the valid
        ones in one transaction; the others are refused one by one (their counters written
        once). Returns how many were recorded."""
        receipts: list[Receipt] = []
        async with self.boundary.gathered():
            for raw, source in messages:
                if (await self.boundary.receipt_allowed(raw, source)
                        and (r := await self.boundary.parse(Receipt, raw, source))
                        is not None):
                    receipts.append(r)
        return await self._record_receipts(
            [ReceiptSeen(r.client_id, r.identifier, r.received_at) for r in receipts])

    async def record_receipts(self, receipts: Sequence[ReceiptSeen]) -> None:
        """Record receipts already parsed (the one way in for every kind of receiver);
        none past the record's size cap (`budget`)."""
        await self._record_receipts(receipts)

    async def _record_receipts(self, receipts: Sequence[ReceiptSeen]) -> int:
        if not receipts or not await self.budget.allows("receipt", time.monotonic(),
                                                        len(receipts)):
            return 0
        now = real_now()
        await self.store.record_receipts([(r.client_id, r.message_id, r.received_at, now)
                                          for r in receipts])
        self.observer.receipts(len(receipts))
        self.events.emit(Received(tuple(receipts)))
        return len(receipts)

    async def reject(self, raw: bytes, reason: str, source: str) -> None:
        """Refuse an input: recorded at a bounded cost and told on the errors topic while
        its client is within its refusal rate (`boundary.Boundary.refuse`)."""
        await self.boundary.refuse(raw, reason, source)

    # -- time ------------------------------------------------------------------------

    async def tick(self) -> int:
        async with self._lock:
            transitions = self.engine.tick(now=self.clock.now())
            await self._apply(transitions)
        return sum(len(t.alerts) for t in transitions)

    async def run_timers(self) -> None:
        """Tick at every deadline (window ends, automatic closes), forever."""
        while True:
            deadline = self.engine.next_deadline()
            wait = None if deadline is None else max(0.0, self.clock.seconds_until(deadline))
            self._timeline_changed.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._timeline_changed.wait()
            except TimeoutError:
                await self.tick()

    def open_events(self) -> list[str]:
        return sorted(e for e, s in self.engine.events.items() if not s.closed)

    # -- outbox ----------------------------------------------------------------------

    async def _apply(self, transitions: Iterable[Transition], *,
                     decisions: tuple[DecisionRecord, ...] = (),
                     processed: ProcessedInput | None = None,
                     source: str = "timer") -> None:
        """Commit transitions (states, alerts, the states they touch, what the flow
        withheld, told on the errors topic) in one transaction."""
        now = real_now()
        made = outbox_of(transitions, self.config.topics, self.config.status, source, now)
        rows, events, touched = list(made.rows), made.events, made.touched
        if self._deferred is not None:
            self._deferred |= touched
        else:
            rows += [self._state(code) for code in sorted(touched)]
        await self.store.commit(Change(events=events, decisions=decisions,
                                       outbox=tuple(rows), withheld=made.withheld,
                                       processed=processed, processed_at=now))
        if rows:
            self.outbox.written(rows)
            self.observer.alerts([r.stage or "" for r in rows if r.kind == "alert"])
        for row in events:
            if row.closed:
                self.events.emit(Closed(row.event_id))
        self._timeline_changed.set()

    def _state(self, code: str) -> OutboxMessage:
        """The prefecture's retained state, from its own top-ranked open events only."""
        count, top = self.engine.ranked_at(code, STATE_EVENTS_MAX)
        return state_message(code, {s.event_id: s for s in top}, self.config.topics,
                             self.config.status, sim_now=self.clock.now(), now=real_now(),
                             open_events=count)

    async def restate(self) -> None:
        """Queue again the retained state (empty: no open event) of each prefecture ever set.

        Called on every (re)connect: a broker restarted without persistence lost its
        retained messages, and one that crashed reloads an older snapshot, which can bring
        back a state the service has since cleared (a closed event "sheltering" again).
        """
        async with self._lock:
            rows = [self._state(code) for code in PREFECTURE_CODES if self.once_set is None
                    or code in self.once_set
                    or any(code in s.places for s in self.engine.events.values())]
            await self.store.enqueue(rows)
        self.outbox.written(rows)

    async def pump(self, publisher: Publisher, *, window: int | None = None) -> None:
        """Publish every unpublished outbox row in order, forever; BrokerError ends it.

        Up to `window` (default: the config's `publish_window`) publishes await their
        PUBACK at once; acknowledged rows are marked in batches (`pump.OutboxPump`)."""
        self.outbox.reset(await self.store.unpublished_count())
        pump = OutboxPump(self.store, self.clock, self.outbox.changed, self.outbox.marked,
                          window=window or self.config.publish_window)
        await pump.run(publisher)

    async def drained(self) -> bool:
        """Nothing left to publish: no unpublished row, no batch holding states back."""
        return self._deferred is None and not await self.store.unpublished()
