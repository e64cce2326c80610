"""The service with an in-memory publisher and a real SQLite file (no broker)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.domain import topics
from alertsim.domain.messages import Alert, PrefectureState
from alertsim.domain.prefectures import Atlas
from alertsim.errors import BrokerError
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.events import (
    Decided,
    EventStream,
    Lagged,
    Published,
    ReceiptSeen,
    Received,
    Written,
)
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, InMemoryPublisher, eventually, make_detection

TSUGARU = ((40.6, 126.4), (34.33, 178.57))


def detection_bytes(sequence: int = 1, cross: float = 30, event_id: str = "ev-1") -> bytes:
    d = make_detection(*TSUGARU, cross, 100, sequence=sequence, event_id=event_id)
    return d.model_dump_json().encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite record."""
    async with await Store.open(tmp_path / "alertsim.db") as s:
        yield s


def make_service(atlas: Atlas, store: Store, speed: float = 1.0) -> Service:
    clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2), speed=speed)
    return Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)


async def pump_until_drained(service: Service, publisher: InMemoryPublisher) -> None:
    task = asyncio.create_task(service.pump(publisher))
    await eventually(service.drained, what="outbox drained")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_detection_to_alerts_and_retained_state(atlas: Atlas, store: Store) -> None:
    """A detection warning Hokkaido and Aomori publishes two shelter alerts and two states."""
    service = make_service(atlas, store)
    publisher = InMemoryPublisher()
    assert await service.accept_detection(detection_bytes())
    await pump_until_drained(service, publisher)
    assert publisher.topics() == [topics.alerts("exercise", "01"),
                                  topics.alerts("exercise", "02"),
                                  topics.state("exercise", "01"),
                                  topics.state("exercise", "02")]
    alert = Alert.model_validate_json(publisher.messages[0].payload)
    assert (alert.stage, alert.msgType, alert.status) == ("shelter", "Alert", "Exercise")
    state = PrefectureState.model_validate_json(publisher.messages[2].payload)
    assert state.sheltering
    assert publisher.messages[2].retain
    assert ("identifier", alert.identifier) in publisher.messages[0].user_properties
    assert len(await store.views.detections()) == 1
    assert len(await store.views.decisions("ev-1")) == 1


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"event_id": "x", ', "Invalid JSON"),
    (json.dumps({"event_id": "x", "sequence": 1}).encode(), "observed_at: Field required"),
    (b"{" + b" " * 70_000 + b"}", "payload too large: 70002 bytes, the limit is 65536"),
])
async def test_bad_input_is_rejected_and_reported(atlas: Atlas, store: Store, payload: bytes,
                                                  reason: str) -> None:
    """Bad detections leave a rejected row and an errors-topic message; service carries on."""
    service = make_service(atlas, store)
    publisher = InMemoryPublisher()
    assert not await service.accept_detection(payload)
    assert await service.accept_detection(detection_bytes())
    await pump_until_drained(service, publisher)
    rejected = await store.views.rejected()
    assert len(rejected) == 1
    assert reason in rejected[0].reason
    errors = [m for m in publisher.messages if m.topic == topics.ERRORS]
    assert len(errors) == 1
    assert reason in json.loads(errors[0].payload)["reason"]
    assert topics.alerts("exercise", "01") in publisher.topics()


async def test_outbox_survives_a_broker_outage(atlas: Atlas, store: Store) -> None:
    """With the publisher down alerts stay recorded and unpublished; later all go out once."""
    service = make_service(atlas, store)
    publisher = InMemoryPublisher(down=True)
    assert await service.accept_detection(detection_bytes())
    with pytest.raises(BrokerError):
        await service.pump(publisher)
    assert len(await store.record.unpublished()) == 4
    publisher.down = False
    await pump_until_drained(service, publisher)
    assert len(publisher.messages) == 4
    assert len({m.payload for m in publisher.messages}) == 4


async def test_restart_resumes_events_and_republishes(atlas: Atlas, tmp_path: Path) -> None:
    """A new service on the same record publishes what was left and resumes open events."""
    path = tmp_path / "restart.db"
    async with await Store.open(path) as first_store:
        first = make_service(atlas, first_store)
        assert await first.accept_detection(detection_bytes())
    async with await Store.open(path) as second_store:
        second = make_service(atlas, second_store)
        assert await second.resume() == 1
        assert second.open_events() == ["ev-1"]
        publisher = InMemoryPublisher()
        await pump_until_drained(second, publisher)
        assert len(publisher.messages) == 4
        # The resumed event still de-duplicates: the same sequence again sends nothing.
        assert await second.accept_detection(detection_bytes())
        assert await second.drained()


async def test_timers_send_passed_after_the_window(atlas: Atlas, store: Store) -> None:
    """At high speed the timer loop sends "passed" once each window is over."""
    service = make_service(atlas, store, speed=600.0)
    publisher = InMemoryPublisher()
    timers = asyncio.create_task(service.run_timers())
    pump = asyncio.create_task(service.pump(publisher))
    assert await service.accept_detection(detection_bytes())

    def stages() -> list[str]:
        return [json.loads(m.payload)["alertsim"]["stage"] for m in publisher.messages
                if "/alerts/" in m.topic]

    await eventually(lambda: stages().count("passed") == 2, what="both passed alerts")
    timers.cancel()
    pump.cancel()
    await asyncio.gather(timers, pump, return_exceptions=True)
    assert stages() == ["shelter", "shelter", "passed", "passed"]


async def test_operator_cancel_and_unknown_event(atlas: Atlas, store: Store) -> None:
    """An operator cancel lifts the shelter call; one naming an unknown event is rejected."""
    service = make_service(atlas, store)
    assert await service.accept_detection(detection_bytes())
    assert await service.accept_operator(b'{"action": "cancel", "event_id": "ev-1"}')
    assert not await service.accept_operator(b'{"action": "cancel", "event_id": "nope"}')
    assert not await service.accept_operator(b'{"action": "explode", "event_id": "ev-1"}')
    stages = [row.stage for row in await store.views.outbox(kind="alert")]
    assert stages == ["shelter", "shelter", "cancel", "cancel"]
    reasons = [r.reason for r in await store.views.rejected()]
    assert any("no event 'nope'" in r for r in reasons)
    assert any("action" in r for r in reasons)


async def test_close_clears_retained_state(atlas: Atlas, store: Store) -> None:
    """Closing an event publishes empty retained payloads to its prefectures' state topics."""
    service = make_service(atlas, store)
    publisher = InMemoryPublisher()
    assert await service.accept_detection(detection_bytes())
    assert await service.accept_operator(b'{"action": "close", "event_id": "ev-1"}')
    await pump_until_drained(service, publisher)
    states = [m for m in publisher.messages if "/state/" in m.topic]
    assert [m.payload for m in states[-2:]] == [b"", b""]
    assert all(m.retain for m in states)
    assert service.open_events() == []


async def test_followers_see_every_event_in_order(atlas: Atlas, store: Store) -> None:
    """A view following the service gets rows written, decisions and receipts, in order;
    following starts at the call, so nothing emitted after it is missed."""
    service = make_service(atlas, store)
    events = service.events.follow()
    assert await service.accept_detection(detection_bytes())
    assert not await service.accept_detection(b"not json")
    await service.record_receipts([ReceiptSeen("rx-1", "m1", DEFAULT_LAUNCH_TIME)])
    got = [await anext(events) for _ in range(4)]
    assert isinstance(got[0], Written)
    assert [r.kind for r in got[0].rows] == ["alert", "alert", "state", "state"]
    assert isinstance(got[1], Decided)
    assert got[1].detection.event_id == "ev-1"
    assert isinstance(got[2], Written)
    assert [r.kind for r in got[2].rows] == ["error"]
    assert got[3] == Received((ReceiptSeen("rx-1", "m1", DEFAULT_LAUNCH_TIME),))


async def test_a_lagging_follower_is_cut_off_not_waited_for() -> None:
    """Emitting never waits: a follower BACKLOG events behind is cut off and told so."""
    stream = EventStream(backlog=2)
    slow = stream.follow()
    for n in range(3):
        stream.emit(Published(1, n))  # the third finds the queue full
    assert stream.followers == 0
    assert [await anext(slow), await anext(slow)] == [Published(1, 0), Published(1, 1)]
    with pytest.raises(Lagged):
        await anext(slow)


async def test_resumed_event_timers_still_fire(atlas: Atlas, tmp_path: Path) -> None:
    """After a restart, a resumed event's overflight windows still end in "passed"."""
    path = tmp_path / "timers.db"
    async with await Store.open(path) as first_store:
        assert await make_service(atlas, first_store).accept_detection(detection_bytes())
    async with await Store.open(path) as second_store:
        later = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=40), speed=1.0)
        second = Service(atlas=atlas, store=second_store.record, config=ServiceConfig(), clock=later)
        assert await second.resume() == 1
        assert await second.tick() == 2
        stages = [row.stage for row in await second_store.views.outbox(kind="alert")]
        assert stages == ["shelter", "shelter", "passed", "passed"]


async def test_bad_receipt_is_rejected(atlas: Atlas, store: Store) -> None:
    """A malformed receipt is kept as a rejected row with the field named; good ones record."""
    service = make_service(atlas, store)
    assert not await service.accept_receipt(b'{"client_id": "rx 1", "identifier": "a"}',
                                            source="alertsim/v1/receipts/rx")
    assert await service.accept_receipt(
        b'{"client_id": "rx-1", "identifier": "a", "received_at": "2023-11-21T13:46:00Z"}',
        source="alertsim/v1/receipts/rx-1")
    reasons = [r.reason for r in await store.views.rejected()]
    assert len(reasons) == 1
    assert "client_id: String should match pattern" in reasons[0]
    assert "received_at: Field required" in reasons[0]
    assert [r.client_id for r in await store.views.receipts()] == ["rx-1"]
