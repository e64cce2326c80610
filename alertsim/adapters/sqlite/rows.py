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
from alertsim.service.records import EventRow, OutboxRow

__all__ = ["DecisionRow", "DrillRow", "ReceiptRow", "RejectedRow", "event_row",
           "mapped", "opt_text", "opt_time", "outbox_row", "text", "time"]


@dataclass(frozen=True)
class RejectedRow:
    """An input refused at the boundary."""

    id: int
    source: str
    received_at: datetime
    reason: str
    raw: bytes


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
