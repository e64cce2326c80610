"""The record checked at open, before anything is written to it.

`PRAGMA integrity_check` walks every page of every table and index: it finds pages that
are not what their parents say (an 8 KB overwrite in the middle of the file was found in
40 trials of 40, random bytes or zeros), and indexes that disagree with their table (which
`quick_check` does not compare). Its cost on a record after a 1,000-detection burst
(43 MB, warm cache): 66-170 ms, against 53-81 ms for `quick_check` (docs/record.md).
SQLite keeps no checksum of the bytes inside a row, so a changed byte in a payload can
still pass.

A damaged record is refused with `RecordDamaged` naming the file and what SQLite reported:
the service must not resume events or add rows on top of pages it cannot trust.
`Store.open` checks; `check_record` checks a file read-only without opening a Store (for a
start-up that must find a damaged record before it waits for its broker).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import aiosqlite

from alertsim.errors import StoreError

__all__ = ["CHECK", "RecordDamaged", "check_integrity", "check_record", "damaged"]

CHECK = "integrity_check"
_REPORTED = 10  # problems listed at most: one damaged page can yield thousands
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class RecordDamaged(StoreError):
    """The record failed SQLite's integrity check (or SQLite found it malformed)."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        # One problem a line (SQLite may put several in one row): a one-line message.
        lines = [line.strip() for p in problems for line in p.splitlines()]
        self.problems = [line for line in lines if line and not line.startswith("***")] or lines
        super().__init__(
            f"store: {path} is damaged: SQLite's {CHECK} reported: "
            + "; ".join(self.problems[:_REPORTED])
            + ". Nothing was written to it: move it aside (or restore a copy) and start "
              "again; `sqlite3 FILE .recover` may save what is readable")


def damaged(path: str, exc: sqlite3.Error) -> RecordDamaged | None:
    """The RecordDamaged an sqlite3 error means (corrupt or not a database), or None."""
    if getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES:
        return RecordDamaged(path, [str(exc)])
    return None


async def check_integrity(db: aiosqlite.Connection, path: str) -> None:
    """Run the integrity check; RecordDamaged with what it found unless it says "ok"."""
    try:
        rows = await db.execute_fetchall(f"PRAGMA {CHECK}({_REPORTED})")
    except sqlite3.Error as exc:
        if (error := damaged(path, exc)) is not None:
            raise error from exc
        raise StoreError(f"store: checking {path} failed: {exc}") from exc
    problems = [str(row[0]) for row in rows]
    if problems != ["ok"]:
        raise RecordDamaged(path, problems or ["no answer"])


def _problems(path: str) -> list[str]:
    """What the check reports on the file at `path` (["ok"] when sound; nothing to check,
    ["ok"] too, when it does not exist yet: the service will create it)."""
    file = Path(path)
    if not file.exists():
        return ["ok"]
    # Read-only: a check must not create, migrate or checkpoint anything.
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(f"PRAGMA {CHECK}({_REPORTED})").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if (error := damaged(path, exc)) is not None:
            raise error from exc
        raise StoreError(f"store: checking {path} failed: {exc}") from exc
    return [str(row[0]) for row in rows]


async def check_record(path: str | os.PathLike[str]) -> None:
    """RecordDamaged unless the record at `path` passes the integrity check; a file that
    does not exist yet passes (the service will create it)."""
    where = os.fspath(path)
    problems = await asyncio.to_thread(_problems, where)
    if problems != ["ok"]:
        raise RecordDamaged(where, problems or ["no answer"])
