"""Rows read back from the SQLite record, and the text forms of times stored there.

Datetimes are ISO 8601 text with their UTC offset (naive datetimes are refused with
ValueError); sqlite3 errors leave through `mapped` as StoreError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from alertsim.errors import StoreError
from alertsim.service.records import DetectionRow, EventRow, OutboxRow

__all__ = [
    "AuditRow",
    "DecisionRow",
    "DrillRow",
    "ReceiptRow",
    "RefusalCountRow",
    "RejectedRow",
    "audit_row",
    "decision_row",
    "detection_row",
    "drill_row",
    "event_row",
    "mapped",
    "opt_text",
    "opt_time",
    "outbox_row",
    "receipt_row",
    "refusal_count_row",
    "rejected_row",
    "text",
    "time",
]


@dataclass(frozen=True)
class AuditRow:
    """One operator action in the audit log: when the service received it, who sent it
    (the payload's `by`; None when it did not say), what (`action` on `event_id`), the
    service's answer ('applied', or the reason it refused; None while not yet acted on)
    and the topic it came from."""

    received_at: datetime
    by: str | None
    action: str
    event_id: str
    answer: str | None
    source: str


@dataclass(frozen=True)
class RejectedRow:
    """An input refused at the boundary: `raw` holds its first bytes (at most
    `domain.refusal.EXCERPT_BYTES`), `size` its whole length."""

    id: int
    source: str
    received_at: datetime
    reason: str
    raw: bytes
    size: int


@dataclass(frozen=True)
class RefusalCountRow:
    """Refusals from one client (topic; `*` = past the overall rate) counted, not kept."""

    source: str
    count: int
    bytes: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class DecisionRow:
    """A decision taken for one sequence of an event."""

    id: int
    event_id: str
    sequence: int
    decision_json: str
    decided_at: datetime


@dataclass(frozen=True)
class ReceiptRow:
    """A receiver's acknowledgement of a message."""

    id: int
    client_id: str
    message_id: str
    received_at: datetime
    recorded_at: datetime


@dataclass(frozen=True)
class DrillRow:
    """A drill run; `finished_at` and `report_json` stay None until it finishes."""

    drill_id: str
    scenario: str
    started_at: datetime
    settings_json: str
    finished_at: datetime | None
    report_json: str | None


def text(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no UTC offset")
    return moment.isoformat()


def opt_text(moment: datetime | None) -> str | None:
    return None if moment is None else text(moment)


def time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def opt_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@contextmanager
def mapped(action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"store: {action} failed: {exc}") from exc


def outbox_row(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(message_id=r["message_id"], event_id=r["event_id"], kind=r["kind"],
                     msg_type=r["msg_type"],
                     prefecture=r["prefecture"], stage=r["stage"], topic=r["topic"],
                     payload=bytes(r["payload"]), qos=r["qos"], retain=bool(r["retain"]),
                     sim_time=opt_time(r["sim_time"]), created_at=time(r["created_at"]),
                     expires_at=opt_time(r["expires_at"]),
                     seq=r["seq"], published_at=opt_time(r["published_at"]))


def event_row(r: sqlite3.Row) -> EventRow:
    return EventRow(event_id=r["event_id"], state_json=r["state_json"], closed=bool(r["closed"]),
                    updated_at=time(r["updated_at"]))


def detection_row(r: sqlite3.Row) -> DetectionRow:
    return DetectionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                        source=r["source"], received_at=time(r["received_at"]),
                        raw=bytes(r["raw"]), parsed_json=r["parsed_json"],
                        processed_at=opt_time(r["processed_at"]))


def rejected_row(r: sqlite3.Row) -> RejectedRow:
    return RejectedRow(id=r["id"], source=r["source"], received_at=time(r["received_at"]),
                       reason=r["reason"], raw=bytes(r["raw"]), size=r["size"])


def refusal_count_row(r: sqlite3.Row) -> RefusalCountRow:
    return RefusalCountRow(source=r["source"], count=r["count"], bytes=r["bytes"],
                           first_at=time(r["first_at"]), last_at=time(r["last_at"]))


def decision_row(r: sqlite3.Row) -> DecisionRow:
    return DecisionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                       decision_json=r["decision_json"], decided_at=time(r["decided_at"]))


def receipt_row(r: sqlite3.Row) -> ReceiptRow:
    return ReceiptRow(id=r["id"], client_id=r["client_id"], message_id=r["message_id"],
                      received_at=time(r["received_at"]), recorded_at=time(r["recorded_at"]))


def drill_row(r: sqlite3.Row) -> DrillRow:
    return DrillRow(drill_id=r["drill_id"], scenario=r["scenario"],
                    started_at=time(r["started_at"]), settings_json=r["settings_json"],
                    finished_at=opt_time(r["finished_at"]), report_json=r["report_json"])


def audit_row(r: sqlite3.Row) -> AuditRow:
    return AuditRow(received_at=time(r["received_at"]), by=r["by_user"], action=r["action"],
                    event_id=r["event_id"], answer=r["answer"], source=r["source"])
