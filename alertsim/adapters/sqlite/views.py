"""`RecordViews`: the record read back for reports, exports and replays.

These queries read a finished record. While a drill is live, views follow the service's
event stream instead of polling here: inside `store.views.closed_while_live()` every query
raises LiveReadError, so a poll that slipped in fails loudly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from alertsim.adapters.sqlite.database import Database, Params
from alertsim.adapters.sqlite.rows import (
    AuditRow,
    DecisionRow,
    ReceiptRow,
    RefusalCountRow,
    RejectedRow,
    audit_row,
    decision_row,
    detection_row,
    event_row,
    outbox_row,
    receipt_row,
    refusal_count_row,
    rejected_row,
)
from alertsim.errors import LiveReadError
from alertsim.service.records import DetectionRow, EventRow, OutboxRow

__all__ = ["RecordViews"]


class RecordViews:
    """Read queries over the whole record; `store.views`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._live = 0  # how many closed_while_live blocks are open

    @contextmanager
    def closed_while_live(self) -> Iterator[None]:
        """Every query raises LiveReadError inside the block; blocks may nest."""
        self._live += 1
        try:
            yield
        finally:
            self._live -= 1

    async def _select(self, sql: str, params: Params = ()) -> Iterable[sqlite3.Row]:
        if self._live:
            raise LiveReadError("views read the record while the drill is live: "
                                "follow the service's events instead")
        return await self._db.select(sql, params)

    async def detections(self, event_id: str | None = None) -> list[DetectionRow]:
        """Accepted detections in arrival order, optionally of one event."""
        rows = await self._select(
            "SELECT * FROM detections WHERE :event_id IS NULL OR event_id = :event_id"
            " ORDER BY id", {"event_id": event_id})
        return [detection_row(r) for r in rows]

    async def rejected(self) -> list[RejectedRow]:
        """Rejected inputs (and withheld messages) in arrival order."""
        rows = await self._select("SELECT * FROM rejected ORDER BY id")
        return [rejected_row(r) for r in rows]

    async def refusal_counts(self) -> list[RefusalCountRow]:
        """Refusals counted per client instead of kept one row each, by client."""
        rows = await self._select("SELECT * FROM refusal_counts ORDER BY source")
        return [refusal_count_row(r) for r in rows]

    async def decisions(self, event_id: str) -> list[DecisionRow]:
        """Decisions of one event in the order they were taken."""
        rows = await self._select("SELECT * FROM decisions WHERE event_id = ? ORDER BY id",
                                  (event_id,))
        return [decision_row(r) for r in rows]

    async def outbox(self, event_id: str | None = None,
                     kind: str | None = None) -> list[OutboxRow]:
        """Outbox messages in seq order, optionally of one event and/or one kind."""
        rows = await self._select(
            "SELECT * FROM outbox WHERE (:event_id IS NULL OR event_id = :event_id)"
            " AND (:kind IS NULL OR kind = :kind) ORDER BY seq",
            {"event_id": event_id, "kind": kind})
        return [outbox_row(r) for r in rows]

    async def events(self) -> list[EventRow]:
        """All events, open and closed, in the order first saved."""
        rows = await self._select("SELECT * FROM events ORDER BY rowid")
        return [event_row(r) for r in rows]

    async def receipts(self, message_id: str | None = None) -> list[ReceiptRow]:
        """Receipts in the order recorded, optionally for one message."""
        rows = await self._select(
            "SELECT * FROM receipts WHERE :message_id IS NULL OR message_id = :message_id"
            " ORDER BY id", {"message_id": message_id})
        return [receipt_row(r) for r in rows]

    async def audit(self) -> tuple[AuditRow, ...]:
        """The audit log: every operator action the service recorded, applied or refused,
        with who sent it and the service's answer, in the order received."""
        rows = await self._select("SELECT * FROM operator_actions ORDER BY id")
        return tuple(audit_row(r) for r in rows)
