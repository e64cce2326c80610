"""The record-size guard: past `ServiceConfig.max_record_bytes`, low-value writes stop.

Low value: a refused input's row and its errors-topic report, refusal counters, and
receipts. Never guarded: detections, operator actions, decisions, event states, alerts and
retained states, which the service writes whatever the size (alerting never waits on
this guard; a full disk still stops the service, later). The size is SQLite's own count
of the record's pages (`GuardedRecord.size_bytes`), read at most once every CHECK_EVERY_S
seconds, so the cap can be passed by what arrives in that second; crossing it either way
is logged once (`record.full` as an error, `record.below_cap`), not once per input.
"""

from __future__ import annotations

from collections import Counter
from typing import Final, Literal, Protocol

import structlog

__all__ = ["CHECK_EVERY_S", "LowValue", "RecordBudget", "Sized"]

log = structlog.get_logger("alertsim.service")

CHECK_EVERY_S: Final = 1.0
LowValue = Literal["refusal", "receipt"]


class Sized(Protocol):
    async def size_bytes(self) -> int: ...


class RecordBudget:
    """Whether a low-value write may go to the record now (`allows`); None: no cap."""

    def __init__(self, record: Sized, max_bytes: int | None) -> None:
        self._record = record
        self.max_bytes = max_bytes
        self.full = False
        self.dropped: Counter[LowValue] = Counter()  # since the record went over its cap
        self._checked_at: float | None = None

    async def allows(self, what: LowValue, now: float, count: int = 1) -> bool:
        """True while the record is under its cap; else `count` writes of `what` are
        dropped (counted). `now`: monotonic seconds, for how often the size is read."""
        if self.max_bytes is None:
            return True
        if self._checked_at is None or now - self._checked_at >= CHECK_EVERY_S:
            self._checked_at = now
            self._update(await self._record.size_bytes())
        if self.full:
            self.dropped[what] += count
        return not self.full

    def _update(self, size: int) -> None:
        assert self.max_bytes is not None
        full = size >= self.max_bytes
        if full and not self.full:
            log.error("record.full", size=size, cap=self.max_bytes,
                      refused="refusal rows, their errors-topic reports, receipts",
                      kept="detections, operator actions, decisions, alerts, states")
        elif self.full and not full:
            log.warning("record.below_cap", size=size, cap=self.max_bytes,
                        dropped=dict(self.dropped))
            self.dropped.clear()
        self.full = full
