"""`ServiceRecord`: exactly what the service writes and reads (the `Record` port).

Inputs are recorded before they are acted on (detections, operator actions, refusals: an
excerpt and the size, or past a client's rate only its counter);
what one input changed is committed whole (`commit`); the outbox is read back in `seq`
order and marked published on the broker's acknowledgement; receipts are kept, duplicates
included.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alertsim.adapters.sqlite.database import Database
from alertsim.adapters.sqlite.rows import detection_row, event_row, outbox_row, text, time
from alertsim.adapters.sqlite.writes import (
    COUNT_REFUSALS,
    INSERT_RECEIPT,
    REFUSED_ACTION,
    REJECT,
    change_statements,
    mark_all,
    rejected_params,
    write_all,
)
from alertsim.domain.refusal import bounded, excerpt
from alertsim.errors import StoreError
from alertsim.service.records import (
    Change,
    DetectionRow,
    EventRow,
    OutboxMessage,
    OutboxRow,
    PendingInput,
    RefusalCount,
)

__all__ = ["ServiceRecord"]


class ServiceRecord:
    """The service's side of the record; `store.record`, passed to `Service(store=...)`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # inputs

    async def record_detection(self, *, raw: bytes, parsed_json: str, event_id: str,
                               sequence: int, source: str, received_at: datetime) -> int:
        """Record an accepted detection; returns its row id."""
        return await self._db.insert(
            "recording a detection",
            "INSERT INTO detections (event_id, sequence, source, received_at, raw, parsed_json)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, sequence, source, text(received_at), raw, parsed_json))

    async def detection(self, event_id: str, sequence: int) -> DetectionRow | None:
        """The first recorded detection of (event, sequence), or None."""
        rows = await self._db.select(
            "SELECT * FROM detections WHERE event_id = ? AND sequence = ? ORDER BY id LIMIT 1",
            (event_id, sequence))
        return next((detection_row(r) for r in rows), None)

    async def record_operator_action(self, *, raw: bytes, event_id: str, action: str,
                                     source: str, received_at: datetime,
                                     by: str | None = None) -> int:
        """Record an operator action before it is acted on; returns its row id. Its answer
        ('applied') is written with what it changed (`commit`)."""
        return await self._db.insert(
            "recording an operator action",
            "INSERT INTO operator_actions (event_id, action, source, received_at, raw, by_user)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, action, source, text(received_at), raw, by))

    async def record_refused_action(self, *, raw: bytes, event_id: str, action: str,
                                    source: str, received_at: datetime, by: str | None,
                                    reason: str) -> int:
        """Record, for the audit log, an operator action the service refused, with the
        reason as its answer: done at once (never redone), an excerpt of it kept."""
        return await self._db.insert(
            "recording a refused operator action", REFUSED_ACTION,
            (event_id, action, source, text(received_at), excerpt(raw), by, bounded(reason),
             text(received_at)))

    async def pending_inputs(self) -> list[PendingInput]:
        """Recorded inputs not yet acted on, detections and operator actions, oldest first."""
        rows = await self._db.select(
            "SELECT 'detection' AS kind, id, raw, source, received_at FROM detections"
            " WHERE processed_at IS NULL UNION ALL"
            " SELECT 'operator', id, raw, source, received_at FROM operator_actions"
            " WHERE processed_at IS NULL ORDER BY received_at, kind, id")
        return [PendingInput(kind=r["kind"], id=r["id"], raw=bytes(r["raw"]),
                             source=r["source"], received_at=time(r["received_at"]))
                for r in rows]

    async def record_rejected(self, *, raw: bytes, reason: str, source: str,
                              received_at: datetime) -> int:
        """Record an input refused at the boundary (an excerpt of it, its size and a bounded
        reason, never the whole payload: `domain.refusal`); returns its row id."""
        return await self._db.insert("recording a rejected input", REJECT,
                                     rejected_params(source, received_at, reason, raw))

    async def count_refusals(self, counts: Sequence[RefusalCount]) -> None:
        """Add refusals to their clients' counters (one row per client, updated in place)."""
        if not counts:
            return
        params: list[tuple[object, ...]] = [
            (c.source, c.count, c.bytes, text(c.at), text(c.at)) for c in counts]
        async with self._db.transaction("counting refusals") as db:
            await db.executemany(COUNT_REFUSALS, params)

    async def size_bytes(self) -> int:
        """The record's size as SQLite counts it: pages times page size (the WAL's pages
        not yet checkpointed included, free pages too)."""
        rows = await self._db.select(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
        return int(next(iter(rows))[0])

    async def record_receipt(self, *, client_id: str, message_id: str, received_at: datetime,
                             recorded_at: datetime) -> None:
        """Record a receiver's acknowledgement; duplicates are kept, one row each."""
        await self._db.insert("recording a receipt", INSERT_RECEIPT,
                              (client_id, message_id, text(received_at), text(recorded_at)))

    async def record_receipts(
            self, receipts: Sequence[tuple[str, str, datetime, datetime]]) -> None:
        """Record many (client_id, message_id, received_at, recorded_at) receipts at once."""
        if not receipts:
            return
        params: list[tuple[object, ...]] = [(c, m, text(got), text(rec))
                                            for c, m, got, rec in receipts]
        async with self._db.transaction("recording receipts") as db:
            await db.executemany(INSERT_RECEIPT, params)

    # what inputs changed: events, decisions, outbox

    async def commit(self, change: Change) -> None:
        """Write one input's consequences at once: event states, decisions, outbox rows,
        and the input marked processed. All of it, or (on any error) none of it."""
        statements = change_statements(change)
        if statements:
            async with self._db.transaction("committing a change") as db:
                await write_all(db, statements)

    async def open_events(self) -> list[EventRow]:
        """Events not closed yet, in the order first saved."""
        rows = await self._db.select("SELECT * FROM events WHERE closed = 0 ORDER BY rowid")
        return [event_row(r) for r in rows]

    async def closed_event_ids(self) -> set[str]:
        """Ids of events that have ended (a new launch must not reuse them)."""
        rows = await self._db.select("SELECT event_id FROM events WHERE closed = 1")
        return {r["event_id"] for r in rows}

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        """Add messages in one transaction, in order; a message_id already queued is skipped."""
        if messages:
            await self.commit(Change(outbox=tuple(messages)))

    async def unpublished(self, *, after: int = 0) -> list[OutboxRow]:
        """Messages the broker has not acknowledged yet, in seq order (those after `after`)."""
        rows = await self._db.select("SELECT * FROM outbox WHERE published_at IS NULL"
                                     " AND seq > ? ORDER BY seq", (after,))
        return [outbox_row(r) for r in rows]

    async def unpublished_count(self) -> int:
        """How many messages the broker has not acknowledged yet."""
        rows = await self._db.select("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return int(next(iter(rows))[0])

    async def mark_published(self, message_id: str, published_at: datetime) -> None:
        """Note the broker's acknowledgement; the first time is kept on a re-publish."""
        count = await self._db.update(
            "marking a message published",
            "UPDATE outbox SET published_at = coalesce(published_at, ?) WHERE message_id = ?",
            (text(published_at), message_id))
        if count == 0:
            raise StoreError(f"store: no outbox message {message_id!r} to mark published")

    async def mark_all_published(self, message_ids: Sequence[str],
                                 published_at: datetime) -> int:
        """Note the acknowledgement of many messages in one transaction (first time kept);
        returns how many were unpublished until now. An unknown id is a StoreError."""
        at = text(published_at)
        if not message_ids:
            return 0
        async with self._db.transaction("marking messages published") as db:
            return await mark_all(db, message_ids, at)
