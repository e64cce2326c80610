"""`DrillRegistry`: one row per drill run, its scenario and settings, then its report."""

from __future__ import annotations

from datetime import datetime

from alertsim.adapters.sqlite.database import Database
from alertsim.adapters.sqlite.rows import DrillRow, drill_row, text
from alertsim.errors import StoreError

__all__ = ["DrillRegistry"]


class DrillRegistry:
    """The drill runs of a record; `store.drills`."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record_drill(self, *, drill_id: str, scenario: str, started_at: datetime,
                           settings_json: str) -> None:
        """Record the start of a drill run; a drill_id already used is a StoreError."""
        await self._db.insert(
            "recording a drill",
            "INSERT INTO drills (drill_id, scenario, started_at, settings_json)"
            " VALUES (?, ?, ?, ?)",
            (drill_id, scenario, text(started_at), settings_json))

    async def finish_drill(self, drill_id: str, finished_at: datetime, report_json: str) -> None:
        """Record the end of a drill run and its report."""
        count = await self._db.update(
            "finishing a drill",
            "UPDATE drills SET finished_at = ?, report_json = ? WHERE drill_id = ?",
            (text(finished_at), report_json, drill_id))
        if count == 0:
            raise StoreError(f"store: no drill {drill_id!r} to finish")

    async def drills(self) -> list[DrillRow]:
        """Drill runs in the order started."""
        rows = await self._db.select("SELECT * FROM drills ORDER BY rowid")
        return [drill_row(r) for r in rows]
