"""Conflicts, stale inputs, closed events and inputs left pending by a crash (no broker).

The service with a fixed clock and a real SQLite file; outcomes read from the record.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.store import Store
from alertsim.domain.admission import Limits
from alertsim.domain.prefectures import Atlas
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.errors import StoreError
from alertsim.service.config import ServiceConfig
from alertsim.service.records import Change, EventRow, OutboxMessage
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, FixedClock, make_detection

TSUGARU = ((40.6, 126.4), (34.33, 178.57))
OKINAWA = ((39.66, 124.705), (13.64, 127.88))


def raw(sequence: int = 1, event_id: str = "ev-1", route: tuple[tuple[float, float], tuple[
        float, float]] = TSUGARU, **kwargs: object) -> bytes:
    """A detection payload on `route`."""
    detection = make_detection(*route, 30, 100, sequence=sequence, event_id=event_id,
                               **kwargs)  # type: ignore[arg-type]
    return detection.model_dump_json().encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite record."""
    async with await Store.open(tmp_path / "alertsim.db") as s:
        yield s


def service_on(atlas: Atlas, store: Store, clock: FixedClock | None = None) -> Service:
    """A service reading a fixed clock two minutes after the default launch."""
    clock = clock or FixedClock(DEFAULT_LAUNCH_TIME + timedelta(minutes=2))
    return Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)


async def errors(store: Store) -> list[str]:
    """Reasons on the errors topic, in order."""
    return [json.loads(r.payload)["reason"] for r in await store.views.outbox(kind="error")]


async def test_identical_redelivery_is_a_silent_duplicate(atlas: Atlas, store: Store) -> None:
    """The same detection twice (at-least-once delivery) is acted on once, with no error."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw())
    assert await service.accept_detection(raw())
    assert len(await store.views.detections()) == 1
    assert len(await store.views.outbox(kind="alert")) == 2
    assert await errors(store) == []


async def test_same_sequence_different_content_is_a_conflict(atlas: Atlas, store: Store) -> None:
    """A second payload under an already-seen (event, sequence) is refused and reported."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw())
    assert not await service.accept_detection(raw(route=OKINAWA))
    assert await errors(store) == [
        "sequence: 1 of event 'ev-1' was already received with different content"]
    assert len(await store.views.rejected()) == 1
    assert [a.prefecture for a in await store.views.outbox(kind="alert")] == ["01", "02"]


async def test_older_sequence_after_a_newer_one_is_refused(atlas: Atlas, store: Store) -> None:
    """An older sequence that differs from what was recorded is stale and reported."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw(sequence=2))
    assert not await service.accept_detection(raw(sequence=1, route=OKINAWA))
    assert await errors(store) == [
        "sequence: 1 is older than sequence 2 of event 'ev-1', already acted on"]


async def test_closed_event_id_is_not_reused(atlas: Atlas, store: Store) -> None:
    """A new launch under a closed event's id is refused, also after a restart."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw())
    assert await service.accept_operator(b'{"action": "close", "event_id": "ev-1"}')
    assert not await service.accept_detection(raw(sequence=2, route=OKINAWA))
    restarted = service_on(atlas, store)
    await restarted.resume()
    assert not await restarted.accept_detection(raw(sequence=3, route=OKINAWA))
    reason = "event_id: event 'ev-1' is closed; a new launch needs a new event_id"
    assert await errors(store) == [reason, reason]


@pytest.mark.parametrize(("clock_offset", "expected"), [
    (timedelta(hours=3), "is stale: more than 600 s behind the service clock"),
    (timedelta(minutes=-30), "is more than 300 s ahead of the service clock"),
])
async def test_observations_far_from_the_clock_are_refused(
        atlas: Atlas, store: Store, clock_offset: timedelta, expected: str) -> None:
    """A live service never acts on yesterday's launch, nor on one from the future."""
    clock = FixedClock(DEFAULT_LAUNCH_TIME + timedelta(minutes=2) + clock_offset)
    service = service_on(atlas, store, clock)
    assert not await service.accept_detection(raw())
    (reason,) = await errors(store)
    assert reason.startswith("observed_at: 2023-11-21T22:45:00+09:00 ")
    assert expected in reason
    assert await store.views.detections() == []


async def test_limits_are_configurable(atlas: Atlas, store: Store) -> None:
    """A wider stale limit accepts what the default refuses."""
    clock = FixedClock(DEFAULT_LAUNCH_TIME + timedelta(hours=3))
    config = ServiceConfig(limits=Limits(stale_after=timedelta(hours=4)))
    service = Service(atlas=atlas, store=store.record, config=config, clock=clock)
    assert await service.accept_detection(raw())


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"action": "cancel", "event_id": "nope"}', "event_id: no event 'nope' is known"),
    (b'{"action": "launch", "event_id": "ev-1"}', "action: Input should be 'cancel' or 'close'"),
    (b'{"action": "cancel", "event_id": "bad id!"}', "event_id: String should match pattern"),
])
async def test_bad_operator_actions_are_reported(atlas: Atlas, store: Store, payload: bytes,
                                                 reason: str) -> None:
    """An operator action on an unknown event, or malformed, is refused with a reason."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw())
    assert not await service.accept_operator(payload)
    (got,) = await errors(store)
    assert reason in got


async def test_recorded_but_undecided_input_is_acted_on_at_start(atlas: Atlas,
                                                                store: Store) -> None:
    """A detection recorded just before a crash is decided and alerted when the service
    starts again, exactly once."""
    detection = make_detection(*TSUGARU, 30, 100, event_id="ev-1")
    await store.record.record_detection(raw=raw(), parsed_json=detection.model_dump_json(),
                                 event_id="ev-1", sequence=1, source="alertsim/v1/detections",
                                 received_at=DEFAULT_LAUNCH_TIME)
    await store.record.record_operator_action(raw=b'{"action": "cancel", "event_id": "ev-1"}',
                                       event_id="ev-1", action="cancel", source="op",
                                       received_at=DEFAULT_LAUNCH_TIME + timedelta(seconds=1))
    assert len(await store.record.pending_inputs()) == 2
    assert await service_on(atlas, store).resume() == 0
    stages = [(a.prefecture, a.stage) for a in await store.views.outbox(kind="alert")]
    assert stages == [("01", "shelter"), ("02", "shelter"), ("01", "cancel"), ("02", "cancel")]
    assert await store.record.pending_inputs() == []
    await service_on(atlas, store).resume()  # a second start redoes nothing
    assert len(await store.views.outbox(kind="alert")) == 4


async def test_a_change_is_written_whole_or_not_at_all(store: Store) -> None:
    """Event state, outbox rows and the processed mark share one transaction."""
    row_id = await store.record.record_detection(raw=b"{}", parsed_json="{}", event_id="ev-1",
                                          sequence=1, source="s", received_at=DEFAULT_LAUNCH_TIME)
    bad = OutboxMessage(message_id="m", event_id="ev-1", kind="gossip",  # type: ignore[arg-type]
                        prefecture=None, stage=None, topic="t", payload=b"", qos=1,
                        retain=False, sim_time=None, created_at=DEFAULT_LAUNCH_TIME)
    change = Change(events=(EventRow("ev-1", "{}", False, DEFAULT_LAUNCH_TIME),),
                    outbox=(bad,), processed=("detection", row_id))
    with pytest.raises(StoreError):
        await store.record.commit(change)
    assert await store.views.events() == []
    assert [p.id for p in await store.record.pending_inputs()] == [row_id]


async def test_restate_queues_every_prefecture_state(atlas: Atlas, store: Store) -> None:
    """After a reconnect every prefecture's retained state goes out again: the open
    event's where it has one, empty (cleared) everywhere else."""
    service = service_on(atlas, store)
    assert await service.accept_detection(raw())
    before = len(await store.views.outbox(kind="state"))
    await service.restate()
    states = (await store.views.outbox(kind="state"))[before:]
    assert [s.prefecture for s in states] == list(PREFECTURE_CODES)
    assert [s.prefecture for s in states if s.payload] == ["01", "02"]
    assert all(s.retain for s in states)
