"""The dashboard's model: display states from retained states, the log, receipts, seeding,
and the frames it sends (diffs, coalesced, encoded once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertsim.domain.messages import PlaceEvent, PrefectureState
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import simulate
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.service.config import ServiceConfig
from alertsim.service.events import Closed, Decided, Published, ReceiptSeen, Received, Written
from alertsim.service.outgoing import alert_message
from alertsim.service.records import OutboxMessage
from alertsim.testing import make_detection
from alertsim.web.frames import coalesce, encode
from alertsim.web.live import LiveModel, display_state, event_state, reasons_of
from alertsim.web.seed import DashboardSeed

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
    assert updates == [{"type": "state", "code": "47", "state": "shelter"},
                       {"type": "place", "code": "47",
                        "place": {"events": ["e"], "last": None}}]
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
    receipts = (ReceiptSeen("a", sent.alert.identifier, NOW + timedelta(milliseconds=40)),
                ReceiptSeen("b", sent.alert.identifier, NOW + timedelta(milliseconds=60)),
                ReceiptSeen("c", "unknown", NOW))
    place_code = sent.alert.prefecture or "national"
    tally = {"count": 2, "latency_ms_median": 50, "latency_ms_max": 60}
    assert model.take(Received(receipts)) == [{"type": "receipts",
                                                "receipts": {place_code: tally}}]
    assert model.receipts_json() == {place_code: tally}


def test_seed_then_queued_events_count_once(atlas: Atlas) -> None:
    """Events queued while the seed was read (subscribed first) are not counted twice:
    the alert logs once, the receipt counts once, the track is drawn once."""
    engine = ServiceConfig().engine(atlas)
    detection = make_detection((39.66, 124.705), (26.5, 127.9), 50, 100)
    sent = next(iter(simulate([(detection.observed_at, detection)], engine, nonce="t")))
    row = alert_message(sent.alert, TopicTree(), "exercise", NOW)
    receipt = ReceiptSeen("a", sent.alert.identifier, NOW + timedelta(milliseconds=40))
    model = LiveModel(status="Exercise")
    model.seed(DashboardSeed(rows=(row,), detections=(detection,),
                             closed=frozenset({"old"}), receipts=(receipt,)))
    assert [model.take(e) for e in (Written((row,)), Decided(detection), Received((receipt,)))] \
        == [[], [], []]
    model.caught_up()
    assert (len(model.log), model.closed) == (1, {"old"})
    assert model.receipts_json()[sent.alert.prefecture or "national"]["count"] == 1
    assert model.take(Received((receipt,)))  # after catching up, a new one counts
    model.take(Closed(detection.event_id))
    assert detection.event_id in model.closed
    assert model.take(Published(3, 0)) == []


def test_a_track_update_carries_that_event_only(atlas: Atlas) -> None:
    """A new detection sends its own event's overlay group per map frame, not the overlay."""
    model = LiveModel(status="Exercise")
    first = make_detection((39.66, 124.705), (26.5, 127.9), 50, 100, event_id="one")
    model.take(Decided(first))
    reasons, update = model.take(Decided(make_detection((39.66, 124.705), (40.0, 140.0), 30,
                                                        100, event_id="two")))
    assert (reasons["type"], reasons["event_id"]) == ("reasons", "two")
    assert (update["type"], update["event_id"]) == ("track", "two")
    assert set(update["svg"]) == {"main", "okinawa", "ogasawara", "minamitorishima"}
    assert all('data-event="two"' in g and 'data-event="one"' not in g
               for g in update["svg"].values())
    assert model.take(Decided(first)) == []  # the same sequence again draws nothing


def test_coalesce_keeps_the_last_state_and_every_row() -> None:
    """A frame folds its updates: last state per prefecture and track per event, every log
    row and error in order, receipt tallies merged."""
    frame = coalesce([
        {"type": "state", "code": "47", "state": "shelter"},
        {"type": "log", "row": {"identifier": "a"}},
        {"type": "state", "code": "47", "state": "passed"},
        {"type": "receipts", "receipts": {"47": {"count": 1}}},
        {"type": "receipts", "receipts": {"01": {"count": 2}}},
        {"type": "log", "row": {"identifier": "b"}},
        {"type": "track", "event_id": "e", "svg": {"main": "1"}},
        {"type": "track", "event_id": "e", "svg": {"main": "2"}},
        {"type": "place", "code": "47", "place": {"events": ["e"], "last": None}},
        {"type": "place", "code": "47", "place": {"events": ["e"], "last": "passed"}},
        {"type": "reasons", "event_id": "e", "reasons": {"47": "overflight"}},
        {"type": "closed", "event_id": "e"},
        {"type": "published"},
    ])
    assert frame == {"type": "frame", "states": {"47": "passed"},
                     "log": [{"identifier": "a"}, {"identifier": "b"}],
                     "receipts": {"47": {"count": 1}, "01": {"count": 2}},
                     "tracks": {"e": {"main": "2"}},
                     "places": {"47": {"events": ["e"], "last": "passed"}},
                     "reasons": {"e": {"47": "overflight"}}, "closed": ["e"]}
    assert coalesce([]) == {"type": "frame"}
    assert encode({"type": "frame"}) == b'data: {"type":"frame"}\n\n'


def test_the_last_state_is_kept_after_close() -> None:
    """When a prefecture's events all close (its state cleared), it reads none, as
    retained, and keeps what it showed as `last`, with the events it came from; a new
    event at that place drops it."""
    model = LiveModel(status="Exercise")
    model.apply(state_row("47", state("47", place("e", "passed"))))
    [cleared, placed] = model.apply(state_row("47", None))
    assert cleared == {"type": "state", "code": "47", "state": "none"}
    assert placed["place"] == {"events": ["e"], "last": "passed"}
    assert model.prefectures()["47"] == "none"
    assert model.last_states() == {"47": "passed"}
    assert model.snapshot(NOW)["places"] == {"47": {"events": ["e"], "last": "passed"}}
    model.apply(state_row("47", state("47", place("f", "shelter", True))))
    assert model.last_states() == {}
    assert model.places() == {"47": {"events": ["f"], "last": None}}


def test_a_closed_event_loses_its_track() -> None:
    """Closing an event sends its empty group per frame (the page removes the track) and
    the close itself; its times stay listed, closed; a second close sends nothing."""
    model = LiveModel(status="Exercise")
    model.take(Decided(make_detection((39.66, 124.705), (26.5, 127.9), 50, 100,
                                      event_id="one")))
    closed, removed = model.take(Closed("one"))
    assert closed == {"type": "closed", "event_id": "one"}
    assert removed["type"] == "track"
    assert all("<polyline" not in g for g in removed["svg"].values())
    assert "one" not in model.track_svgs
    assert model.events()[0]["event_id"] == "one"
    assert model.events()[0]["closed"]
    assert model.take(Closed("one")) == []


def test_a_seeded_closed_event_has_no_track() -> None:
    """Seeded from a record where the event is closed: no track on the page."""
    detection = make_detection((39.66, 124.705), (26.5, 127.9), 50, 100, event_id="old")
    model = LiveModel(status="Exercise")
    model.seed(DashboardSeed(detections=(detection,), closed=frozenset({"old"})))
    assert model.track_svgs == {}
    assert "old" in model.reasons


def test_reasons_follow_the_decision() -> None:
    """Each warned prefecture's reason is the decision's: a track over Aomori is
    overflight there; the 2017 block rule adds its block, the 2023 rule neighbours; a
    prefecture the chosen rule leaves out takes another rule's reason."""
    detection = make_detection((39.0, 125.75), (41.0, 157.4), 15, 100,
                               launch_time=datetime(2017, 8, 28, 20, 57, tzinfo=UTC))
    block = reasons_of(detection)  # auto: the rule of 2017-08-29
    assert (block["02"], block["03"]) == ("overflight", "block")
    adjacent = reasons_of(detection, "prefecture+adjacent")
    assert adjacent["03"] == "adjacent"
    assert reasons_of(detection, "prefecture")["02"] == "overflight"
    impact = reasons_of(make_detection((40.0, 128.2), (39.7, 140.1), 5, 30))
    assert "impact_area" in impact.values()
