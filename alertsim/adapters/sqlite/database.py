"""One open connection to the record, and the only way the record's parts reach it.

aiosqlite runs every statement on its one thread, in the order queued. `Database` adds an
asyncio.Lock so that one task's statements, or its whole transaction, never interleave
with another task's, and maps sqlite3 errors to StoreError (`rows.mapped`). Only
aiosqlite's public API is used.

A transaction (`Database.transaction`) is BEGIN IMMEDIATE, the caller's statements, then
COMMIT, all under the lock; any error, cancellation included, queues a ROLLBACK instead.
aiosqlite queues a statement before its await first suspends, so a ROLLBACK queued after a
cancellation still runs after the statements already queued, and before anything another
task queues once the lock is free: a transaction is committed whole or not at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite

from alertsim.adapters.sqlite.rows import mapped
from alertsim.errors import StoreError

__all__ = ["Database", "Params"]

Params = Sequence[Any] | dict[str, Any]


class Database:
    """An open, migrated connection, its lock and its path; closing twice is harmless."""

    def __init__(self, db: aiosqlite.Connection, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = db
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the connection once the statements holding the lock are done."""
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                with mapped("closing"):
                    await db.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError(f"store: {self.path} is closed")
        return self._db

    async def insert(self, action: str, sql: str, params: Params) -> int:
        """Run one INSERT; returns the new row's id."""
        async with self._lock:
            with mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    if cursor.lastrowid is None:  # pragma: no cover - sqlite always sets it
                        raise StoreError(f"store: {action} returned no row id")
                    return cursor.lastrowid

    async def update(self, action: str, sql: str, params: Params) -> int:
        """Run one UPDATE (or upsert); returns how many rows it changed."""
        async with self._lock:
            with mapped(action):
                async with self._conn.execute(sql, params) as cursor:
                    return cursor.rowcount

    async def select(self, sql: str, params: Params = ()) -> Iterable[sqlite3.Row]:
        """Run one query; returns all its rows."""
        async with self._lock:
            with mapped("reading"):
                return await self._conn.execute_fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """The connection inside BEGIN IMMEDIATE ... COMMIT, under the lock; on any error or
        cancellation in the block (or in COMMIT) the transaction is rolled back instead."""
        async with self._lock:
            db = self._conn
            with mapped(action):
                try:
                    # Inside the try: a cancellation while BEGIN is queued still rolls back.
                    await db.execute("BEGIN IMMEDIATE")
                    yield db
                    await db.commit()
                except BaseException:
                    # A no-op when no transaction is open (BEGIN failed, COMMIT went through).
                    await db.rollback()
                    raise
