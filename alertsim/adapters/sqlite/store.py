"""The service's SQLite record: what came in, what was decided, what went out.

Tables (schema version = `PRAGMA user_version` = number of MIGRATIONS applied):

    detections  every accepted detection: raw bytes, parsed JSON, event id and sequence
    rejected    inputs refused at the boundary, raw bytes and the reason
    decisions   each decision taken for an event sequence, as JSON
    outbox      everything the service publishes, in `seq` order; `published_at` set on
                PUBACK, rows still NULL there are re-published after a restart
    events      per-event state (JSON) so that open events resume after a restart
    receipts    acknowledgements from receivers; duplicates are kept so they can be counted
    drills      one row per drill run: scenario, settings and, once finished, the report

Datetimes are ISO 8601 text with their UTC offset (naive datetimes are refused with
ValueError), JSON payloads TEXT, raw inputs and MQTT payloads BLOB. A Store owns one
connection; aiosqlite runs its statements on one thread and an asyncio.Lock keeps one
task's transaction from interleaving with another task's statements. sqlite3 errors
leave this module as `StoreError`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import aiosqlite

from alertsim.adapters.sqlite.migrations import MIGRATIONS, prepare
from alertsim.adapters.sqlite.rows import (
    DecisionRow,
    DrillRow,
    ReceiptRow,
    RejectedRow,
    event_row,
    mapped,
    opt_time,
    outbox_row,
    text,
    time,
)
from alertsim.adapters.sqlite.writes import insert_receipts, mark_all, transact, write_change
from alertsim.errors import StoreError
from alertsim.service.records import (
    Change,
    DetectionRow,
    EventRow,
    OutboxMessage,
    OutboxRow,
    PendingInput,
)

__all__ = ["Store"]

T = TypeVar("T")


def _probe(where: str) -> None:
    sqlite3.connect(where).close()



class Store:
    """The SQLite record of one service; open with `await Store.open(path)`."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        """Wrap an open, migrated connection; use `Store.open` rather than this."""
        self.path = path
        self._db: aiosqlite.Connection | None = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *,
                   migrations: Sequence[str] = MIGRATIONS) -> Store:
        """Open (creating if needed) and migrate the database at `path`."""
        where = os.fspath(path)
        with mapped(f"opening {where}"):
            # When aiosqlite.connect fails it stops its worker thread without awaiting it,
            # and the thread may then call into a closed event loop (omnilib/aiosqlite#241).
            # Opening once in a properly awaited thread surfaces those errors here instead.
            await asyncio.to_thread(_probe, where)
            db = await aiosqlite.connect(where, isolation_level=None)
        try:
            await prepare(db, where, migrations)
        except BaseException:
            await db.close()
            raise
        db.row_factory = sqlite3.Row
        return cls(db, where)

    async def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                with mapped("closing"):
                    await db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"store: {self.path} is closed")
        return self._db

    async def _insert(self, action: str, sql: str, params: Sequence[Any]) -> int:
        async with self._lock:
            with mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    if cursor.lastrowid is None:  # pragma: no cover - sqlite always sets it
                        raise StoreError(f"store: {action} returned no row id")
                    return cursor.lastrowid

    async def _update(self, action: str, sql: str, params: Sequence[Any]) -> int:
        async with self._lock:
            with mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    return cursor.rowcount

    async def _select(self, sql: str,
                      params: Sequence[Any] | dict[str, Any] = ()) -> Iterable[sqlite3.Row]:
        async with self._lock:
            with mapped("reading"):
                async with self._conn.execute(sql, params) as cursor:
                    return await cursor.fetchall()

    # detections, rejected inputs, decisions

    async def record_detection(self, *, raw: bytes, parsed_json: str, event_id: str,
                               sequence: int, source: str, received_at: datetime) -> int:
        """Record an accepted detection; returns its row id."""
        return await self._insert(
            "recording a detection",
            "INSERT INTO detections (event_id, sequence, source, received_at, raw, parsed_json)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, sequence, source, text(received_at), raw, parsed_json))

    async def detections(self, event_id: str | None = None) -> list[DetectionRow]:
        """Accepted detections in arrival order, optionally of one event."""
        rows = await self._select(
            "SELECT * FROM detections WHERE :event_id IS NULL OR event_id = :event_id"
            " ORDER BY id", {"event_id": event_id})
        return [_detection(r) for r in rows]

    async def detection(self, event_id: str, sequence: int) -> DetectionRow | None:
        """The first recorded detection of (event, sequence), or None."""
        rows = await self._select(
            "SELECT * FROM detections WHERE event_id = ? AND sequence = ? ORDER BY id LIMIT 1",
            (event_id, sequence))
        return next((_detection(r) for r in rows), None)

    async def record_operator_action(self, *, raw: bytes, event_id: str, action: str,
                                     source: str, received_at: datetime) -> int:
        """Record an operator action before it is acted on; returns its row id."""
        return await self._insert(
            "recording an operator action",
            "INSERT INTO operator_actions (event_id, action, source, received_at, raw)"
            " VALUES (?, ?, ?, ?, ?)", (event_id, action, source, text(received_at), raw))

    async def pending_inputs(self) -> list[PendingInput]:
        """Recorded inputs not yet acted on, detections and operator actions, oldest first."""
        rows = await self._select(
            "SELECT 'detection' AS kind, id, raw, source, received_at FROM detections"
            " WHERE processed_at IS NULL UNION ALL"
            " SELECT 'operator', id, raw, source, received_at FROM operator_actions"
            " WHERE processed_at IS NULL ORDER BY received_at, kind, id")
        return [PendingInput(kind=r["kind"], id=r["id"], raw=bytes(r["raw"]),
                             source=r["source"], received_at=time(r["received_at"]))
                for r in rows]

    async def record_rejected(self, *, raw: bytes, reason: str, source: str,
                              received_at: datetime) -> int:
        """Record an input refused at the boundary; returns its row id."""
        return await self._insert(
            "recording a rejected input",
            "INSERT INTO rejected (source, received_at, reason, raw) VALUES (?, ?, ?, ?)",
            (source, text(received_at), reason, raw))

    async def rejected(self) -> list[RejectedRow]:
        """Rejected inputs in arrival order."""
        rows = await self._select("SELECT * FROM rejected ORDER BY id")
        return [RejectedRow(id=r["id"], source=r["source"], received_at=time(r["received_at"]),
                            reason=r["reason"], raw=bytes(r["raw"])) for r in rows]

    async def record_decision(self, *, event_id: str, sequence: int, decision_json: str,
                              decided_at: datetime) -> int:
        """Record a decision for one sequence of an event; returns its row id."""
        return await self._insert(
            "recording a decision",
            "INSERT INTO decisions (event_id, sequence, decided_at, decision_json)"
            " VALUES (?, ?, ?, ?)",
            (event_id, sequence, text(decided_at), decision_json))

    async def decisions(self, event_id: str) -> list[DecisionRow]:
        """Decisions of one event in the order they were taken."""
        rows = await self._select("SELECT * FROM decisions WHERE event_id = ? ORDER BY id",
                                  (event_id,))
        return [DecisionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                            decision_json=r["decision_json"], decided_at=time(r["decided_at"]))
                for r in rows]

    # outbox

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        """Add messages in one transaction, in order; a message_id already queued is skipped."""
        if messages:
            await self.commit(Change(outbox=tuple(messages)))

    async def unpublished(self, *, after: int = 0) -> list[OutboxRow]:
        """Messages the broker has not acknowledged yet, in seq order (those after `after`)."""
        rows = await self._select("SELECT * FROM outbox WHERE published_at IS NULL AND seq > ?"
                                  " ORDER BY seq", (after,))
        return [outbox_row(r) for r in rows]

    async def unpublished_count(self) -> int:
        """How many messages the broker has not acknowledged yet."""
        rows = await self._select("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return int(next(iter(rows))[0])

    async def mark_published(self, message_id: str, published_at: datetime) -> None:
        """Note the broker's acknowledgement; the first time is kept on a re-publish."""
        count = await self._update(
            "marking a message published",
            "UPDATE outbox SET published_at = coalesce(published_at, ?) WHERE message_id = ?",
            (text(published_at), message_id))
        if count == 0:
            raise StoreError(f"store: no outbox message {message_id!r} to mark published")

    async def mark_all_published(self, message_ids: Sequence[str],
                                 published_at: datetime) -> int:
        """Note the acknowledgement of many messages in one transaction (first time kept);
        returns how many were unpublished until now. An unknown id is a StoreError."""
        return await self._transaction("marking messages published", functools.partial(
            mark_all, message_ids=message_ids, published_at=text(published_at)))

    async def outbox(self, event_id: str | None = None,
                     kind: str | None = None) -> list[OutboxRow]:
        """Outbox messages in seq order, optionally of one event and/or one kind."""
        rows = await self._select(
            "SELECT * FROM outbox WHERE (:event_id IS NULL OR event_id = :event_id)"
            " AND (:kind IS NULL OR kind = :kind) ORDER BY seq",
            {"event_id": event_id, "kind": kind})
        return [outbox_row(r) for r in rows]

    # events, receipts, drills

    async def commit(self, change: Change) -> None:
        """Write one input's consequences at once: event states, decisions, outbox rows,
        and the input marked processed. All of it, or (on any error) none of it."""
        await self._transaction("committing a change", functools.partial(write_change,
                                                                         change=change))

    async def _transaction(self, action: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` as one transaction, run whole on aiosqlite's thread (`writes.transact`).

        aiosqlite has no public call for this; `Connection._execute` (queue a function on
        its thread, as its own execute does) has been there since its first releases."""
        async with self._lock:
            db = self._conn
            with mapped(action):
                result: T = await db._execute(  # type: ignore[no-untyped-call]
                    transact, db._conn, work)
                return result

    async def closed_event_ids(self) -> set[str]:
        """Ids of events that have ended (a new launch must not reuse them)."""
        rows = await self._select("SELECT event_id FROM events WHERE closed = 1")
        return {r["event_id"] for r in rows}

    async def save_event(self, event_id: str, state_json: str, *, closed: bool,
                         updated_at: datetime) -> None:
        """Insert or replace the saved state of an event."""
        await self._update(
            "saving an event",
            "INSERT INTO events (event_id, state_json, closed, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET state_json = excluded.state_json,"
            " closed = excluded.closed, updated_at = excluded.updated_at",
            (event_id, state_json, int(closed), text(updated_at)))

    async def open_events(self) -> list[EventRow]:
        """Events not closed yet, in the order first saved."""
        rows = await self._select("SELECT * FROM events WHERE closed = 0 ORDER BY rowid")
        return [event_row(r) for r in rows]

    async def events(self) -> list[EventRow]:
        """All events, in the order first saved."""
        rows = await self._select("SELECT * FROM events ORDER BY rowid")
        return [event_row(r) for r in rows]

    async def record_receipt(self, *, client_id: str, message_id: str, received_at: datetime,
                             recorded_at: datetime) -> None:
        """Record a receiver's acknowledgement; duplicates are kept, one row each."""
        await self._insert(
            "recording a receipt",
            "INSERT INTO receipts (client_id, message_id, received_at, recorded_at)"
            " VALUES (?, ?, ?, ?)",
            (client_id, message_id, text(received_at), text(recorded_at)))

    async def record_receipts(
            self, receipts: Sequence[tuple[str, str, datetime, datetime]]) -> None:
        """Record many (client_id, message_id, received_at, recorded_at) receipts at once."""
        if not receipts:
            return
        params = [(c, m, text(got), text(rec)) for c, m, got, rec in receipts]
        await self._transaction("recording receipts",
                                functools.partial(insert_receipts, params=params))

    async def receipts(self, message_id: str | None = None) -> list[ReceiptRow]:
        """Receipts in the order recorded, optionally for one message."""
        rows = await self._select(
            "SELECT * FROM receipts WHERE :message_id IS NULL OR message_id = :message_id"
            " ORDER BY id", {"message_id": message_id})
        return [ReceiptRow(id=r["id"], client_id=r["client_id"], message_id=r["message_id"],
                           received_at=time(r["received_at"]),
                           recorded_at=time(r["recorded_at"])) for r in rows]

    async def record_drill(self, *, drill_id: str, scenario: str, started_at: datetime,
                           settings_json: str) -> None:
        """Record the start of a drill run; a drill_id already used is a StoreError."""
        await self._insert(
            "recording a drill",
            "INSERT INTO drills (drill_id, scenario, started_at, settings_json)"
            " VALUES (?, ?, ?, ?)",
            (drill_id, scenario, text(started_at), settings_json))

    async def finish_drill(self, drill_id: str, finished_at: datetime, report_json: str) -> None:
        """Record the end of a drill run and its report."""
        count = await self._update(
            "finishing a drill",
            "UPDATE drills SET finished_at = ?, report_json = ? WHERE drill_id = ?",
            (text(finished_at), report_json, drill_id))
        if count == 0:
            raise StoreError(f"store: no drill {drill_id!r} to finish")

    async def drills(self) -> list[DrillRow]:
        """Drill runs in the order started."""
        rows = await self._select("SELECT * FROM drills ORDER BY rowid")
        return [DrillRow(drill_id=r["drill_id"], scenario=r["scenario"],
                         started_at=time(r["started_at"]), settings_json=r["settings_json"],
                         finished_at=opt_time(r["finished_at"]), report_json=r["report_json"])
                for r in rows]


def _detection(r: sqlite3.Row) -> DetectionRow:
    return DetectionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                        source=r["source"], received_at=time(r["received_at"]),
                        raw=bytes(r["raw"]), parsed_json=r["parsed_json"],
                        processed_at=opt_time(r["processed_at"]))
