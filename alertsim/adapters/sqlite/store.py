"""The service's SQLite record: what came in, what was decided, what went out.

Tables (schema version = `PRAGMA user_version` = number of MIGRATIONS applied):

    detections        every accepted detection: raw bytes, parsed JSON, event id and
                      sequence; `processed_at` NULL until it has been acted on
    operator_actions  cancel/close commands, recorded before they are acted on
    rejected          inputs refused at the boundary: the first 256 bytes, the size and
                      the reason (never a whole payload)
    refusal_counts    per client (topic), refusals past its rate counted, not kept
    decisions         each decision taken for an event sequence, as JSON
    outbox            everything the service publishes, in `seq` order; `published_at` set
                      on PUBACK, rows still NULL there are re-published after a restart
    events            per-event state (JSON) so that open events resume after a restart
    receipts          acknowledgements from receivers; duplicates are kept to be counted
    drills            one row per drill run: scenario, settings and, once finished, the report

A `Store` owns the connection (`database.Database`) and hands it to three parts, split by
what each serves:

    store.record  ServiceRecord   what the service writes and reads (its `Record` port)
    store.drills  DrillRegistry   drill runs and their reports
    store.views   RecordViews     read queries for reports, exports and replays

Datetimes are ISO 8601 text with their UTC offset (naive datetimes are refused with
ValueError), JSON payloads TEXT, raw inputs and MQTT payloads BLOB. sqlite3 errors leave
this package as `StoreError`; a record that fails the integrity check at open as its leaf
`RecordDamaged` (`integrity`).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from types import TracebackType
from typing import Self

import aiosqlite

from alertsim.adapters.sqlite.database import Database
from alertsim.adapters.sqlite.drills import DrillRegistry
from alertsim.adapters.sqlite.integrity import check_integrity
from alertsim.adapters.sqlite.migrations import MIGRATIONS, prepare
from alertsim.adapters.sqlite.record import ServiceRecord
from alertsim.adapters.sqlite.rows import mapped
from alertsim.adapters.sqlite.views import RecordViews

__all__ = ["Store"]


def _probe(where: str) -> None:
    sqlite3.connect(where).close()


class Store:
    """The SQLite record of one service; open with `await Store.open(path)`."""

    def __init__(self, database: Database) -> None:
        """Wrap an open, migrated database; use `Store.open` rather than this."""
        self.database = database
        self.record = ServiceRecord(database)
        self.drills = DrillRegistry(database)
        self.views = RecordViews(database)

    @property
    def path(self) -> str:
        """The database file, as opened."""
        return self.database.path

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, migrations: Sequence[str] = MIGRATIONS,
                   check: bool = True) -> Store:
        """Open (creating if needed), check and migrate the database at `path`.

        With `check` (the default) SQLite's integrity check runs first, and a damaged
        record is refused with RecordDamaged before anything is written to it."""
        where = os.fspath(path)
        with mapped(f"opening {where}"):
            # When aiosqlite.connect fails it stops its worker thread without awaiting it,
            # and the thread may then call into a closed event loop (omnilib/aiosqlite#241).
            # Opening once in a properly awaited thread surfaces those errors here instead.
            await asyncio.to_thread(_probe, where)
            db = await aiosqlite.connect(where, isolation_level=None)
        try:
            if check:
                await check_integrity(db, where)
            await prepare(db, where, migrations)
        except BaseException:
            await db.close()
            raise
        db.row_factory = sqlite3.Row
        return cls(Database(db, where))

    async def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        await self.database.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
