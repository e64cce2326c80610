"""The service's throughput parts without a broker: the windowed pump, batched marks and
receipts, the deadline heap, the per-prefecture index and the bounded state message."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.database import Database
from alertsim.adapters.sqlite.record import ServiceRecord
from alertsim.adapters.sqlite.store import Store
from alertsim.domain import lifecycle
from alertsim.domain.messages import STATE_EVENTS_MAX, PrefectureState, Receipt
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.domain.timeline import Engine
from alertsim.errors import BrokerError
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.records import OutboxRow
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from alertsim.testing.bursts import burst

START = DEFAULT_LAUNCH_TIME + timedelta(minutes=2)


class CountingRecord(ServiceRecord):
    """The real service record, counting the transactions that mark rows published."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.marks: list[int] = []

    async def mark_all_published(self, message_ids: Sequence[str],
                                 published_at: datetime) -> int:
        self.marks.append(len(message_ids))
        return await super().mark_all_published(message_ids, published_at)


class CountingStore(Store):
    """The real store, its service record a CountingRecord."""

    record: CountingRecord

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.record = CountingRecord(database)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    plain = await Store.open(tmp_path / "alertsim.db")
    async with CountingStore(plain.database) as counting:
        yield counting


@dataclass
class SlowPublisher:
    """Takes each message at once (in call order) and acknowledges it after a random delay,
    so acknowledgements come back out of order; `fail_at` makes that call fail instead."""

    rng: random.Random = field(default_factory=lambda: random.Random(3))
    messages: list[Publication] = field(default_factory=list)
    acked: list[bytes] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    fail_at: int | None = None

    async def publish(self, message: Publication) -> None:
        number = len(self.messages)
        self.messages.append(message)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.rng.uniform(0, 0.003))
            if number == self.fail_at:
                raise BrokerError("broker went away mid-window")
            self.acked.append(message.payload)
        finally:
            self.in_flight -= 1


def service_on(atlas: Atlas, store: Store, **config: int) -> Service:
    return Service(atlas=atlas, store=store.record, config=ServiceConfig(**config),  # type: ignore[arg-type]
                   clock=ScaledClock(start=START))


async def accept_burst(service: Service, count: int) -> None:
    for detection in burst(count):
        assert await service.accept_detection(detection.model_dump_json().encode())


def coalesced(rows: list[OutboxRow]) -> list[bytes]:
    """What the windowed pump sends of rows fetched together: the last state of each place."""
    last = {r.topic: r.seq for r in rows if r.kind == "state"}
    return [r.payload for r in rows if r.kind != "state" or last[r.topic] == r.seq]


async def pump_until_drained(service: Service, publisher: SlowPublisher) -> None:
    task = asyncio.create_task(service.pump(publisher))
    await eventually(service.drained, timeout=30, what="outbox drained")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("window", [64, 1])
async def test_window_publishes_in_order_and_marks_everything(
        atlas: Atlas, store: CountingStore, window: int) -> None:
    """Publishes overlap up to the window, leave in outbox order and are all marked; with
    a window the marks take fewer transactions than rows, and of the states of one place
    fetched together only the last is sent (window 1: the serial pump, everything)."""
    service = service_on(atlas, store, publish_window=window)
    await accept_burst(service, 30)
    rows = await store.views.outbox()
    publisher = SlowPublisher()
    await pump_until_drained(service, publisher)
    sent = [r.payload for r in rows] if window == 1 else coalesced(rows)
    assert [m.payload for m in publisher.messages] == sent
    assert all(r.published_at is not None for r in await store.views.outbox())
    assert sum(store.record.marks) == len(rows) > 200
    if window == 1:
        assert publisher.most_in_flight == 1
        assert len(store.record.marks) == len(rows)
    else:
        assert 1 < publisher.most_in_flight <= window
        assert len(store.record.marks) < len(rows) / 4


async def test_failure_mid_window_loses_nothing(atlas: Atlas, store: CountingStore) -> None:
    """A publish failing mid-window ends the pump with BrokerError (not a group); what was
    not acknowledged stays unmarked and the next pump publishes it, in order."""
    service = service_on(atlas, store)
    await accept_burst(service, 20)
    rows = await store.views.outbox()
    failing = SlowPublisher(fail_at=100)
    with pytest.raises(BrokerError):
        await service.pump(failing)
    left = await store.record.unpublished()
    assert coalesced(rows)[100] in {r.payload for r in left}  # the failed one
    marked = {r.payload for r in await store.views.outbox() if r.published_at is not None}
    superseded = {r.payload for r in rows} - set(coalesced(rows))
    # every acknowledgement before the failure marked, and the states superseded before it
    assert set(failing.acked) <= marked <= set(failing.acked) | superseded
    assert 0 < len(failing.acked) < len(coalesced(rows))
    again = SlowPublisher()
    await pump_until_drained(service, again)
    assert [m.payload for m in again.messages] == coalesced(left)
    sent = set(failing.acked) | {m.payload for m in again.messages}
    assert sent | superseded == {r.payload for r in rows}
    last_states = {r.topic: r.payload for r in rows if r.kind == "state"}
    assert set(last_states.values()) <= sent  # each place's latest state went out


async def test_receipts_recorded_in_one_batch(atlas: Atlas, store: CountingStore) -> None:
    """Valid receipts are recorded together; bad ones are rejected one by one."""
    service = service_on(atlas, store)
    now = DEFAULT_LAUNCH_TIME
    good = [(Receipt(client_id=f"r{i}", identifier=f"id-{i}", received_at=now)
             .model_dump_json().encode(), f"alertsim/v1/receipts/r{i}") for i in range(300)]
    bad = [(b"{not json", "alertsim/v1/receipts/bad"), (b"{}", "alertsim/v1/receipts/bad")]
    assert await service.accept_receipts([*good[:150], *bad, *good[150:]]) == 300
    assert len(await store.views.receipts()) == 300
    assert len(await store.views.rejected()) == 2


def brute_next_deadline(engine: Engine) -> datetime | None:
    """What the engine computed before the heap: the minimum over every event."""
    times = [t for s in engine.events.values()
             if (t := lifecycle.next_deadline(s, close_after=engine.close_after)) is not None]
    return min(times, default=None)


def test_deadline_heap_agrees_with_a_scan(atlas: Atlas) -> None:
    """Over a burst of events ticked to the end, the heap's next deadline is always the
    minimum over all events, and ticking at it moves the same events a scan would."""
    engine = Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s@x.invalid",
                    close_after=timedelta(minutes=10), events={})
    for detection in burst(60):
        engine.detection(detection, now=START, nonce="n")
    ticks = 0
    while (deadline := engine.next_deadline()) is not None:
        assert deadline == brute_next_deadline(engine)
        before = dict(engine.events)
        moved = {t.state.event_id for t in engine.tick(now=deadline)}
        scanned = {e for e, s in before.items()
                   if (d := lifecycle.next_deadline(s, close_after=engine.close_after))
                   is not None and d <= deadline}
        assert moved == scanned
        ticks += 1
    assert ticks > 20
    assert brute_next_deadline(engine) is None


def test_open_at_lists_only_the_prefectures_own_open_events(atlas: Atlas) -> None:
    engine = Engine(atlas=atlas, policy="prefecture", status="Exercise", sender="s@x.invalid",
                    close_after=timedelta(minutes=10), events={})
    for detection in burst(40):
        engine.detection(detection, now=START, nonce="n")
    for code in ("01", "13", "47"):
        expected = {e for e, s in engine.events.items() if code in s.places and not s.closed}
        assert set(engine.open_at(code)) == expected


async def test_state_message_stays_small(atlas: Atlas, store: CountingStore) -> None:
    """With 25 events open over one prefecture, its state lists STATE_EVENTS_MAX of them,
    sheltering ones first, and counts them all."""
    service = service_on(atlas, store)
    for n in range(25):  # the Tsugaru route: warns 01 and 02
        d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id=f"many-{n}")
        assert await service.accept_detection(d.model_dump_json().encode())
    cancel = b'{"action": "cancel", "event_id": "many-0"}'
    assert await service.accept_operator(cancel)
    states = [r for r in await store.views.outbox(kind="state") if r.prefecture == "01"]
    last = PrefectureState.model_validate_json(states[-1].payload)
    assert last.open_events == 25
    assert len(last.events) == STATE_EVENTS_MAX
    assert all(e.sheltering for e in last.events)  # many-0, cancelled, is left out
    assert "many-0" not in {e.event_id for e in last.events}
    assert max(len(r.payload) for r in states) < 2_500


async def test_a_batch_writes_each_touched_state_once(atlas: Atlas,
                                                      store: CountingStore) -> None:
    """Inputs handled in one batch write a prefecture's state once, at the end, listing
    every event; until then the service is not drained."""
    service = service_on(atlas, store)
    async with service.batch():
        for n in range(3):  # the Tsugaru route: warns 01 and 02
            d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id=f"b-{n}")
            assert await service.accept_detection(d.model_dump_json().encode())
        assert await store.views.outbox(kind="state") == []
        assert not await service.drained()
    states = await store.views.outbox(kind="state")
    assert [r.prefecture for r in states] == ["01", "02"]
    assert PrefectureState.model_validate_json(states[0].payload).open_events == 3
    rows = await store.views.outbox()
    assert [r.kind for r in rows] == ["alert"] * 6 + ["state"] * 2
