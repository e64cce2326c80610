"""What the service publishes, built from the pure core's output: outbox messages and the
MQTT publication of each stored row.

    alert_message   one Alert on its prefecture's (or the national) alert topic, QoS 1
    state_message   a prefecture's retained state over its open events (empty = cleared)
    error_message   a rejected input, with the reason, on the errors topic
    publication     a stored row as published: MQTT 5 expiry and user properties from the
                    row's own columns, never from parsing its payload
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from alertsim.domain.lifecycle import EventState
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import Reference, Status, alert_status
from alertsim.service.ports import Clock, Publication
from alertsim.service.records import OutboxMessage, OutboxRow

__all__ = ["alert_message", "error_message", "publication", "state_message"]

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


def _place_events(code: str, events: Mapping[str, EventState]) -> tuple[PlaceEvent, ...]:
    found = []
    for event_id, state in sorted(events.items()):
        place = state.places.get(code)
        if place is None or state.closed or not place.references:
            continue
        found.append(PlaceEvent(
            event_id=event_id, stage=place.stages[-1],
            identifier=Reference.parse(place.references[-1]).identifier,
            sheltering=place.status == "sheltering"))
    return tuple(found)


def state_message(code: str, events: Mapping[str, EventState], tree: TopicTree,
                  status: Status, *, sim_now: datetime, now: datetime) -> OutboxMessage:
    """The retained state of one prefecture over all open events (empty payload = cleared)."""
    place_events = _place_events(code, events)
    payload = b""
    if place_events:
        payload = PrefectureState(code=code, status=alert_status(status), updated=sim_now,
                                  events=place_events).model_dump_json().encode()
    return OutboxMessage(message_id=f"state.{code}.{uuid.uuid4().hex}", event_id=None,
                         kind="state", prefecture=code, stage=None,
                         topic=tree.state(status, code), payload=payload, qos=1,
                         retain=True, sim_time=sim_now, created_at=now)


def error_message(raw: bytes, reason: str, source: str, tree: TopicTree,
                  now: datetime) -> OutboxMessage:
    """The errors-topic report of one rejected input: source, reason, size and an excerpt."""
    body = {"source": source, "reason": reason, "received_at": now.isoformat(),
            "size": len(raw), "excerpt": raw[:200].decode("utf-8", "replace")}
    return OutboxMessage(
        message_id=f"error.{uuid.uuid4().hex}", event_id=None, kind="error",
        prefecture=None, stage=None, topic=tree.errors,
        payload=json.dumps(body, ensure_ascii=False).encode(), qos=1, retain=False,
        sim_time=None, created_at=now)


def publication(row: OutboxRow, clock: Clock) -> Publication:
    """The MQTT message for an outbox row, with MQTT 5 expiry and user properties."""
    expiry: int | None = None
    props: tuple[tuple[str, str], ...] = (("kind", row.kind),)
    if row.expires_at is not None:
        left = clock.seconds_until(row.expires_at)
        expiry = int(min(MAX_EXPIRY_S, max(MIN_EXPIRY_S, left)))
    if row.kind == "alert":
        props += (("identifier", row.message_id), ("msgType", row.msg_type or ""),
                  ("stage", row.stage or ""))
    return Publication(topic=row.topic, payload=row.payload, qos=row.qos, retain=row.retain,
                       expiry_s=expiry,
                       content_type="application/json" if row.payload else None,
                       user_properties=props)
