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
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import aiosqlite

from alertsim.errors import StoreError

__all__ = [
    "MIGRATIONS",
    "DecisionRow",
    "DetectionRow",
    "DrillRow",
    "EventRow",
    "OutboxRow",
    "Outgoing",
    "ReceiptRow",
    "RejectedRow",
    "Store",
    "open_store",
]

# Append new scripts; never edit one that has shipped. Each runs in its own transaction.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE detections (
        id          INTEGER PRIMARY KEY,
        event_id    TEXT    NOT NULL,
        sequence    INTEGER NOT NULL,
        source      TEXT    NOT NULL,
        received_at TEXT    NOT NULL,
        raw         BLOB    NOT NULL,
        parsed_json TEXT    NOT NULL CHECK (json_valid(parsed_json))
    );
    CREATE INDEX detections_event ON detections (event_id, sequence);
    CREATE TABLE rejected (
        id          INTEGER PRIMARY KEY,
        source      TEXT NOT NULL,
        received_at TEXT NOT NULL,
        reason      TEXT NOT NULL,
        raw         BLOB NOT NULL
    );
    CREATE TABLE decisions (
        id            INTEGER PRIMARY KEY,
        event_id      TEXT    NOT NULL,
        sequence      INTEGER NOT NULL,
        decided_at    TEXT    NOT NULL,
        decision_json TEXT    NOT NULL CHECK (json_valid(decision_json))
    );
    CREATE INDEX decisions_event ON decisions (event_id, sequence);
    CREATE TABLE outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id   TEXT    NOT NULL UNIQUE,
        event_id     TEXT,
        kind         TEXT    NOT NULL CHECK (kind IN ('alert', 'state', 'status', 'error')),
        prefecture   TEXT    CHECK (prefecture GLOB '[0-9][0-9]'),
        stage        TEXT,
        topic        TEXT    NOT NULL,
        payload      BLOB    NOT NULL,
        qos          INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
        retain       INTEGER NOT NULL CHECK (retain IN (0, 1)),
        sim_time     TEXT,
        created_at   TEXT    NOT NULL,
        published_at TEXT
    );
    CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
    CREATE INDEX outbox_event ON outbox (event_id, seq);
    CREATE TABLE events (
        event_id   TEXT    PRIMARY KEY,
        state_json TEXT    NOT NULL CHECK (json_valid(state_json)),
        closed     INTEGER NOT NULL CHECK (closed IN (0, 1)),
        updated_at TEXT    NOT NULL
    );
    CREATE TABLE receipts (
        id          INTEGER PRIMARY KEY,
        client_id   TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        received_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX receipts_message ON receipts (message_id);
    CREATE TABLE drills (
        drill_id      TEXT PRIMARY KEY,
        scenario      TEXT NOT NULL,
        started_at    TEXT NOT NULL,
        settings_json TEXT NOT NULL CHECK (json_valid(settings_json)),
        finished_at   TEXT,
        report_json   TEXT CHECK (report_json IS NULL OR json_valid(report_json))
    );
    """,
)


@dataclass(frozen=True)
class Outgoing:
    """One message the service will publish; `message_id` is the CAP identifier for alerts."""

    message_id: str
    event_id: str | None
    kind: str  # "alert" | "state" | "status" | "error"
    prefecture: str | None  # two-digit code; None = national
    stage: str | None
    topic: str
    payload: bytes
    qos: int
    retain: bool
    sim_time: datetime | None  # the alert's simulated `sent` time
    created_at: datetime


@dataclass(frozen=True)
class OutboxRow(Outgoing):
    """An outbox message with its position and, once the broker acknowledged it, when."""

    seq: int
    published_at: datetime | None


@dataclass(frozen=True)
class DetectionRow:
    """An accepted detection as it arrived and as it was parsed."""

    id: int
    event_id: str
    sequence: int
    source: str
    received_at: datetime
    raw: bytes
    parsed_json: str


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
class EventRow:
    """The saved state of an event."""

    event_id: str
    state_json: str
    closed: bool
    updated_at: datetime


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


def _text(moment: datetime) -> str:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no UTC offset")
    return moment.isoformat()


def _opt_text(moment: datetime | None) -> str | None:
    return None if moment is None else _text(moment)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@contextmanager
def _mapped(action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"store: {action} failed: {exc}") from exc


def _probe(where: str) -> None:
    sqlite3.connect(where).close()


async def _prepare(db: aiosqlite.Connection, where: str, migrations: Sequence[str]) -> None:
    with _mapped(f"opening {where}"):
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA synchronous=NORMAL")
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise StoreError(f"store: {where} has schema version {version}, newer than the "
                         f"{len(migrations)} this alertsim knows; upgrade alertsim")
    for number in range(version + 1, len(migrations) + 1):
        # executescript commits any open transaction first, so the script carries its own.
        script = (f"BEGIN IMMEDIATE;\n{migrations[number - 1]};\n"
                  f"PRAGMA user_version = {number};\nCOMMIT;")
        with _mapped(f"migration {number} of {where}"):
            try:
                await db.executescript(script)
            except sqlite3.Error:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise


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
        with _mapped(f"opening {where}"):
            # When aiosqlite.connect fails it stops its worker thread without awaiting it,
            # and the thread may then call into a closed event loop (omnilib/aiosqlite#241).
            # Opening once in a properly awaited thread surfaces those errors here instead.
            await asyncio.to_thread(_probe, where)
            db = await aiosqlite.connect(where, isolation_level=None)
        try:
            await _prepare(db, where, migrations)
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
                with _mapped("closing"):
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
            with _mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    if cursor.lastrowid is None:  # pragma: no cover - sqlite always sets it
                        raise StoreError(f"store: {action} returned no row id")
                    return cursor.lastrowid

    async def _update(self, action: str, sql: str, params: Sequence[Any]) -> int:
        async with self._lock:
            with _mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    return cursor.rowcount

    async def _select(self, sql: str,
                      params: Sequence[Any] | dict[str, Any] = ()) -> Iterable[sqlite3.Row]:
        async with self._lock:
            with _mapped("reading"):
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
            (event_id, sequence, source, _text(received_at), raw, parsed_json))

    async def detections(self, event_id: str | None = None) -> list[DetectionRow]:
        """Accepted detections in arrival order, optionally of one event."""
        rows = await self._select(
            "SELECT * FROM detections WHERE :event_id IS NULL OR event_id = :event_id"
            " ORDER BY id", {"event_id": event_id})
        return [DetectionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                             source=r["source"], received_at=_time(r["received_at"]),
                             raw=bytes(r["raw"]), parsed_json=r["parsed_json"]) for r in rows]

    async def record_rejected(self, *, raw: bytes, reason: str, source: str,
                              received_at: datetime) -> int:
        """Record an input refused at the boundary; returns its row id."""
        return await self._insert(
            "recording a rejected input",
            "INSERT INTO rejected (source, received_at, reason, raw) VALUES (?, ?, ?, ?)",
            (source, _text(received_at), reason, raw))

    async def rejected(self) -> list[RejectedRow]:
        """Rejected inputs in arrival order."""
        rows = await self._select("SELECT * FROM rejected ORDER BY id")
        return [RejectedRow(id=r["id"], source=r["source"], received_at=_time(r["received_at"]),
                            reason=r["reason"], raw=bytes(r["raw"])) for r in rows]

    async def record_decision(self, *, event_id: str, sequence: int, decision_json: str,
                              decided_at: datetime) -> int:
        """Record a decision for one sequence of an event; returns its row id."""
        return await self._insert(
            "recording a decision",
            "INSERT INTO decisions (event_id, sequence, decided_at, decision_json)"
            " VALUES (?, ?, ?, ?)",
            (event_id, sequence, _text(decided_at), decision_json))

    async def decisions(self, event_id: str) -> list[DecisionRow]:
        """Decisions of one event in the order they were taken."""
        rows = await self._select("SELECT * FROM decisions WHERE event_id = ? ORDER BY id",
                                  (event_id,))
        return [DecisionRow(id=r["id"], event_id=r["event_id"], sequence=r["sequence"],
                            decision_json=r["decision_json"], decided_at=_time(r["decided_at"]))
                for r in rows]

    # outbox

    async def enqueue(self, messages: Sequence[Outgoing]) -> None:
        """Add messages in one transaction, in order; a message_id already queued is skipped."""
        params = [(m.message_id, m.event_id, m.kind, m.prefecture, m.stage, m.topic, m.payload,
                   m.qos, int(m.retain), _opt_text(m.sim_time), _text(m.created_at))
                  for m in messages]
        if not params:
            return
        async with self._lock:
            db = self._conn
            with _mapped("enqueueing"):
                await db.execute("BEGIN IMMEDIATE")
                try:
                    # ON CONFLICT names the one constraint to tolerate; INSERT OR IGNORE
                    # would also swallow CHECK failures such as an unknown kind.
                    await db.executemany(
                        "INSERT INTO outbox (message_id, event_id, kind, prefecture, stage,"
                        " topic, payload, qos, retain, sim_time, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (message_id) DO NOTHING", params)
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")

    async def unpublished(self) -> list[OutboxRow]:
        """Messages the broker has not acknowledged yet, in seq order."""
        rows = await self._select("SELECT * FROM outbox WHERE published_at IS NULL ORDER BY seq")
        return [_outbox_row(r) for r in rows]

    async def mark_published(self, message_id: str, published_at: datetime) -> None:
        """Note the broker's acknowledgement; the first time is kept on a re-publish."""
        count = await self._update(
            "marking a message published",
            "UPDATE outbox SET published_at = coalesce(published_at, ?) WHERE message_id = ?",
            (_text(published_at), message_id))
        if count == 0:
            raise StoreError(f"store: no outbox message {message_id!r} to mark published")

    async def outbox(self, event_id: str | None = None,
                     kind: str | None = None) -> list[OutboxRow]:
        """Outbox messages in seq order, optionally of one event and/or one kind."""
        rows = await self._select(
            "SELECT * FROM outbox WHERE (:event_id IS NULL OR event_id = :event_id)"
            " AND (:kind IS NULL OR kind = :kind) ORDER BY seq",
            {"event_id": event_id, "kind": kind})
        return [_outbox_row(r) for r in rows]

    # events, receipts, drills

    async def save_event(self, event_id: str, state_json: str, *, closed: bool,
                         updated_at: datetime) -> None:
        """Insert or replace the saved state of an event."""
        await self._update(
            "saving an event",
            "INSERT INTO events (event_id, state_json, closed, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET state_json = excluded.state_json,"
            " closed = excluded.closed, updated_at = excluded.updated_at",
            (event_id, state_json, int(closed), _text(updated_at)))

    async def open_events(self) -> list[EventRow]:
        """Events not closed yet, in the order first saved."""
        rows = await self._select("SELECT * FROM events WHERE closed = 0 ORDER BY rowid")
        return [_event_row(r) for r in rows]

    async def events(self) -> list[EventRow]:
        """All events, in the order first saved."""
        rows = await self._select("SELECT * FROM events ORDER BY rowid")
        return [_event_row(r) for r in rows]

    async def record_receipt(self, *, client_id: str, message_id: str, received_at: datetime,
                             recorded_at: datetime) -> None:
        """Record a receiver's acknowledgement; duplicates are kept, one row each."""
        await self._insert(
            "recording a receipt",
            "INSERT INTO receipts (client_id, message_id, received_at, recorded_at)"
            " VALUES (?, ?, ?, ?)",
            (client_id, message_id, _text(received_at), _text(recorded_at)))

    async def receipts(self, message_id: str | None = None) -> list[ReceiptRow]:
        """Receipts in the order recorded, optionally for one message."""
        rows = await self._select(
            "SELECT * FROM receipts WHERE :message_id IS NULL OR message_id = :message_id"
            " ORDER BY id", {"message_id": message_id})
        return [ReceiptRow(id=r["id"], client_id=r["client_id"], message_id=r["message_id"],
                           received_at=_time(r["received_at"]),
                           recorded_at=_time(r["recorded_at"])) for r in rows]

    async def record_drill(self, *, drill_id: str, scenario: str, started_at: datetime,
                           settings_json: str) -> None:
        """Record the start of a drill run; a drill_id already used is a StoreError."""
        await self._insert(
            "recording a drill",
            "INSERT INTO drills (drill_id, scenario, started_at, settings_json)"
            " VALUES (?, ?, ?, ?)",
            (drill_id, scenario, _text(started_at), settings_json))

    async def finish_drill(self, drill_id: str, finished_at: datetime, report_json: str) -> None:
        """Record the end of a drill run and its report."""
        count = await self._update(
            "finishing a drill",
            "UPDATE drills SET finished_at = ?, report_json = ? WHERE drill_id = ?",
            (_text(finished_at), report_json, drill_id))
        if count == 0:
            raise StoreError(f"store: no drill {drill_id!r} to finish")

    async def drills(self) -> list[DrillRow]:
        """Drill runs in the order started."""
        rows = await self._select("SELECT * FROM drills ORDER BY rowid")
        return [DrillRow(drill_id=r["drill_id"], scenario=r["scenario"],
                         started_at=_time(r["started_at"]), settings_json=r["settings_json"],
                         finished_at=_opt_time(r["finished_at"]), report_json=r["report_json"])
                for r in rows]


def _outbox_row(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(message_id=r["message_id"], event_id=r["event_id"], kind=r["kind"],
                     prefecture=r["prefecture"], stage=r["stage"], topic=r["topic"],
                     payload=bytes(r["payload"]), qos=r["qos"], retain=bool(r["retain"]),
                     sim_time=_opt_time(r["sim_time"]), created_at=_time(r["created_at"]),
                     seq=r["seq"], published_at=_opt_time(r["published_at"]))


def _event_row(r: sqlite3.Row) -> EventRow:
    return EventRow(event_id=r["event_id"], state_json=r["state_json"], closed=bool(r["closed"]),
                    updated_at=_time(r["updated_at"]))


@asynccontextmanager
async def open_store(path: str | os.PathLike[str]) -> AsyncIterator[Store]:
    """`async with open_store(path) as store:` opens, migrates and finally closes."""
    store = await Store.open(path)
    try:
        yield store
    finally:
        await store.close()
