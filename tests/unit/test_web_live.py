"""The dashboard's model: display states from retained states, the log, receipts, seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertsim.domain.messages import PlaceEvent, PrefectureState
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import simulate
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.service.config import ServiceConfig
from alertsim.service.outgoing import alert_message
from alertsim.service.records import OutboxMessage
from alertsim.testing import make_detection
from alertsim.web.live import LiveModel, display_state, event_state

NOW = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)


def place(event_id: str, stage: str, sheltering: bool = False) -> PlaceEvent:
    return PlaceEvent(event_id=event_id, stage=stage, identifier=f"id-{event_id}-{stage}",
                      sheltering=sheltering)


def state(code: str, *events: PlaceEvent) -> PrefectureState:
    return PrefectureState(code=code, status="Exercise", updated=NOW, events=events)


@pytest.mark.parametrize(("stage", "sheltering", "expected"), [
    ("shelter", True, "shelter"),
    ("imminent", True, "shelter"),
    ("passed", False, "passed"),
    ("fell_land", False, "fell"),
    ("fell_sea", False, "fell"),
    ("cancel", False, "cancelled"),
])
def test_event_state_table(stage: str, sheltering: bool, expected: str) -> None:
    """Each retained stage maps to one map state."""
    assert event_state(place("e", stage, sheltering)) == expected


@pytest.mark.parametrize(("events", "expected"), [
    ((), "none"),
    ((("a", "passed", False), ("b", "shelter", True)), "shelter"),
    ((("a", "cancel", False), ("b", "passed", False)), "passed"),
    ((("a", "fell_sea", False), ("b", "passed", False)), "fell"),
    ((("a", "cancel", False),), "cancelled"),
])
def test_most_urgent_event_wins(events: tuple[tuple[str, str, bool], ...], expected: str) -> None:
    """Several open events at one place: shelter > fell > passed > cancelled > none."""
    assert display_state(state("01", *(place(*e) for e in events))) == expected


def test_cleared_state_is_none() -> None:
    """An empty retained payload (no open event) reads none."""
    assert display_state(None) == "none"


def state_row(code: str, prefecture_state: PrefectureState | None) -> OutboxMessage:
    payload = b"" if prefecture_state is None else prefecture_state.model_dump_json().encode()
    return OutboxMessage(message_id=f"state.{code}", event_id=None, kind="state",
                         prefecture=code, stage=None,
                         topic=TopicTree().state("exercise", code), payload=payload, qos=1,
                         retain=True, sim_time=NOW, created_at=NOW)


def test_state_rows_drive_the_snapshot() -> None:
    """Retained state rows set and clear a prefecture; the snapshot lists all 47."""
    model = LiveModel(status="Exercise")
    updates = model.apply(state_row("47", state("47", place("e", "shelter", True))))
    assert updates == [{"type": "state", "code": "47", "state": "shelter",
                        "events": [{"event_id": "e", "stage": "shelter", "state": "shelter"}]}]
    snapshot = model.snapshot(NOW)
    assert snapshot["status"] == "Exercise"
    assert list(snapshot["prefectures"]) == list(PREFECTURE_CODES)
    assert {c for c, s in snapshot["prefectures"].items() if s != "none"} == {"47"}
    assert snapshot["events"] == [{"event_id": "e", "closed": False,
                                   "prefectures": {"47": "shelter"}}]
    model.apply(state_row("47", None))
    assert set(model.prefectures().values()) == {"none"}


def test_receipts_count_and_latency_per_place(atlas: Atlas) -> None:
    """Receipts of a known alert count for its place, once each, with their latency."""
    engine = ServiceConfig().engine(atlas)
    detection = make_detection((39.66, 124.705), (26.5, 127.9), 50, 100)  # onto Okinawa
    sent = next(iter(simulate([(detection.observed_at, detection)], engine, nonce="t")))
    row = alert_message(sent.alert, TopicTree(), "exercise", NOW)
    model = LiveModel(status="Exercise")
    [log] = model.apply(row)
    assert log["row"]["identifier"] == sent.alert.identifier
    assert model.apply(row) == []  # the same alert again (seeded, then watched) logs once
    receipts = [(1, sent.alert.identifier, NOW + timedelta(milliseconds=40)),
                (2, sent.alert.identifier, NOW + timedelta(milliseconds=60)),
                (3, "unknown", NOW)]
    model.add_receipts(receipts)
    assert model.add_receipts(receipts) == []  # already counted
    place_code = sent.alert.prefecture or "national"
    assert model.receipts_json() == {place_code: {"count": 2, "latency_ms_median": 50,
                                                  "latency_ms_max": 60}}
