"""What the service publishes, built from the pure core's output: outbox messages and the
MQTT publication of each stored row.

    alert_message   one Alert on its prefecture's (or the national) alert topic, QoS 1
    state_message   a prefecture's retained state over its open events (empty = cleared)
    error_message   a rejected input, with the reason, on the errors topic
    outbox_of       what transitions write: event rows, alerts, what the flow withheld
    publication     a stored row as published: MQTT 5 expiry and user properties from the
                    row's own columns, never from parsing its payload, plus `sent-at`
                    (wall-clock ms since the epoch when it is published)
    CapPublisher    with `--cap`: each alert published again as CAP 1.2 XML on its cap topic
"""

from __future__ import annotations

import asyncio
import heapq
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from alertsim.domain.cap import CAP_CONTENT_TYPE, CapRenderer
from alertsim.domain.event_state import EventState, Transition
from alertsim.domain.messages import (
    STATE_EVENTS_MAX,
    Alert,
    PlaceEvent,
    PrefectureState,
)
from alertsim.domain.notices import error_report
from alertsim.domain.publication import Publication
from alertsim.domain.timeline import state_rank
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import Reference, Status, alert_status
from alertsim.service.ports import Clock, Publisher
from alertsim.service.records import EventRow, OutboxMessage, OutboxRow

log = structlog.get_logger("alertsim.service")

__all__ = ["CapPublisher", "Made", "alert_message", "cap_publication", "error_message",
           "outbox_of", "publication", "state_message"]

MIN_EXPIRY_S = 60  # a message already past its `expires` still gets a minute to arrive
MAX_EXPIRY_S = 2**32 - 1  # MQTT 5 message expiry is a four-byte integer


def alert_message(alert: Alert, tree: TopicTree, status: Status,
                  now: datetime) -> OutboxMessage:
    """The outbox message for one alert, keyed by its CAP identifier."""
    return OutboxMessage(
        message_id=alert.identifier, event_id=alert.alertsim.event_id, kind="alert",
        prefecture=alert.prefecture, stage=alert.stage, msg_type=alert.msgType,
        topic=tree.alerts(status, alert.prefecture),
        payload=alert.model_dump_json().encode(), qos=1, retain=False,
        sim_time=alert.sent, expires_at=alert.info[0].expires, created_at=now)


def _place_events(code: str,
                  events: Mapping[str, EventState]) -> tuple[int, tuple[PlaceEvent, ...]]:
    """How many of `events` are open in the place, and the STATE_EVENTS_MAX of them to
    list, in `state_rank` order (sheltering first, then the latest). Only those are built."""
    ranked = [(rank, state) for state in events.values()
              if (rank := state_rank(state, code)) is not None]
    listed = []
    for _, state in heapq.nsmallest(STATE_EVENTS_MAX, ranked, key=lambda item: item[0]):
        place = state.places[code]
        listed.append(PlaceEvent(
            event_id=state.event_id, stage=place.stages[-1],
            identifier=Reference.parse(place.references[-1]).identifier,
            sheltering=place.status == "sheltering"))
    return len(ranked), tuple(listed)


def state_message(code: str, events: Mapping[str, EventState], tree: TopicTree,
                  status: Status, *, sim_now: datetime, now: datetime,
                  open_events: int | None = None) -> OutboxMessage:
    """The retained state of one prefecture over its open events (empty payload = cleared),
    listing at most STATE_EVENTS_MAX of them (`PrefectureState`). `open_events`: how many
    are open there when `events` holds only the top-ranked ones (`Engine.ranked_at`)."""
    count, listed = _place_events(code, events)
    count = count if open_events is None else open_events
    payload = b""
    if listed:
        payload = PrefectureState(code=code, status=alert_status(status), updated=sim_now,
                                  events=listed, open_events=count).model_dump_json().encode()
    return OutboxMessage(message_id=f"state.{code}.{uuid.uuid4().hex}", event_id=None,
                         kind="state", prefecture=code, stage=None,
                         topic=tree.state(status, code), payload=payload, qos=1,
                         retain=True, sim_time=sim_now, created_at=now)


def error_message(raw: bytes, reason: str, source: str, tree: TopicTree,
                  now: datetime) -> OutboxMessage:
    """The errors-topic report of one rejected input: source, reason, size and an excerpt."""
    report = error_report(raw, reason=reason, source=source, received_at=now)
    return OutboxMessage(
        message_id=f"error.{uuid.uuid4().hex}", event_id=None, kind="error",
        prefecture=None, stage=None, topic=tree.errors,
        payload=report.model_dump_json().encode(), qos=1, retain=False,
        sim_time=None, created_at=now)


def publication(row: OutboxRow, clock: Clock) -> Publication:
    """The MQTT message for an outbox row, with MQTT 5 expiry and user properties."""
    expiry: int | None = None
    # `sent-at`: wall-clock ms since the epoch as the row goes out, so a receiver can time
    # the delivery itself (MQTT 5 only; the fleet measures latency against it). The same
    # instant is `sent_ms`, which a signature binds (with the expiry: receivers refuse a
    # copy replayed later than that).
    sent_ms = time.time_ns() // 1_000_000
    props: tuple[tuple[str, str], ...] = (("kind", row.kind), ("sent-at", str(sent_ms)))
    if row.expires_at is not None:
        left = clock.seconds_until(row.expires_at)
        expiry = int(min(MAX_EXPIRY_S, max(MIN_EXPIRY_S, left)))
    if row.kind == "alert":
        props += (("identifier", row.message_id), ("msgType", row.msg_type or ""),
                  ("stage", row.stage or ""))
    return Publication(topic=row.topic, payload=row.payload, qos=row.qos, retain=row.retain,
                       expiry_s=expiry,
                       content_type="application/json" if row.payload else None,
                       user_properties=props, sent_ms=sent_ms)


def cap_publication(alert_publication: Publication, renderer: CapRenderer, tree: TopicTree,
                    status: Status) -> Publication | None:
    """The CAP 1.2 XML twin of an alert's publication (same expiry), or None for others."""
    if ("kind", "alert") not in alert_publication.user_properties:
        return None
    alert = Alert.model_validate_json(alert_publication.payload)
    props = tuple(p for p in alert_publication.user_properties if p[0] != "kind")
    return Publication(topic=tree.cap(status, alert.prefecture), payload=renderer.render(alert),
                       qos=1, retain=False, expiry_s=alert_publication.expiry_s,
                       content_type=CAP_CONTENT_TYPE, user_properties=(("kind", "cap"), *props))


@dataclass
class CapPublisher:
    """A Publisher that follows every alert with its CAP 1.2 XML on the cap topic (`--cap`).

    Every message goes to `inner` from a task of its own, the JSON alert's before its CAP
    copy's: tasks start in the order they are made, so the pump's order (rows handed to the
    connection in seq order) holds for both. A row whose PUBACKs did not both come back is
    published again, both copies: receivers de-duplicate by identifier. CAP copies are not
    signed (`signing` covers alerts and states): verify the JSON alert.
    """

    inner: Publisher
    renderer: CapRenderer
    tree: TopicTree
    status: Status

    async def publish(self, message: Publication) -> None:
        twin = cap_publication(message, self.renderer, self.tree, self.status)
        copies = (message,) if twin is None else (message, twin)
        await asyncio.gather(*(self.inner.publish(m) for m in copies))


@dataclass(frozen=True)
class Made:
    """What transitions write: event rows, outbox rows (alerts, and withheld messages told
    on the errors topic), withheld inputs (source, reason, raw) and the places touched."""

    events: tuple[EventRow, ...]
    rows: tuple[OutboxMessage, ...]
    withheld: tuple[tuple[str, str, bytes], ...]
    touched: frozenset[str]


def outbox_of(transitions: Iterable[Transition], topics: TopicTree, status: Status,
              source: str, now: datetime) -> Made:
    """The rows `transitions` write, committed together by the service."""
    rows: list[OutboxMessage] = []
    events: list[EventRow] = []
    withheld: list[tuple[str, str, bytes]] = []
    touched: set[str] = set()
    for transition in transitions:
        state = transition.state
        for note in transition.withheld:
            raw = json.dumps({"event_id": note.event_id, "prefecture": note.prefecture,
                              "withheld": True}).encode()
            withheld.append((source, note.reason, raw))
            rows.append(error_message(raw, note.reason, source, topics, now))
            log.warning("alert.withheld", event_id=note.event_id,
                        prefecture=note.prefecture, reason=note.reason)
        events.append(EventRow(state.event_id, state.model_dump_json(), state.closed, now))
        rows += [alert_message(a, topics, status, now) for a in transition.alerts]
        touched |= {a.prefecture for a in transition.alerts if a.prefecture is not None}
        if state.closed:  # closing changes every place's state without an alert
            touched |= set(state.places)
    return Made(tuple(events), tuple(rows), tuple(withheld), frozenset(touched))
