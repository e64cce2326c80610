"""The dashboard's starting picture, as plain data: what the record held when it opened.

`serve --dashboard` on an existing record shows the current states at once: the page is
seeded from the record once, then follows the service's events only. The record is read
through `SeedSource` (the store's read side, `store.views`), so the web
layer never imports an adapter. Subscribe to `Service.events` before calling `seed_from`:
nothing is lost in between, and `LiveModel` drops what it sees twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from alertsim.domain.detection import Detection
from alertsim.service.events import ReceiptSeen
from alertsim.service.records import DetectionRow, EventRow, OutboxMessage

__all__ = ["DashboardSeed", "SeedSource", "seed_from"]


class ReceiptLike(Protocol):
    """A recorded receipt as the store reads it back."""

    @property
    def client_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def received_at(self) -> datetime: ...


class SeedSource(Protocol):
    """The reads the starting picture needs (the SQLite store's views)."""

    async def outbox(self) -> Sequence[OutboxMessage]: ...

    async def detections(self) -> Sequence[DetectionRow]: ...

    async def events(self) -> Sequence[EventRow]: ...

    async def receipts(self) -> Sequence[ReceiptLike]: ...


@dataclass(frozen=True)
class DashboardSeed:
    """Outbox rows in order, each event's latest detection, closed events, receipts."""

    rows: tuple[OutboxMessage, ...] = ()
    detections: tuple[Detection, ...] = ()
    closed: frozenset[str] = frozenset()
    receipts: tuple[ReceiptSeen, ...] = ()


async def seed_from(views: SeedSource) -> DashboardSeed:
    """Read the starting picture from the record (once, before the page opens)."""
    latest: dict[str, DetectionRow] = {}
    for row in await views.detections():
        if row.event_id not in latest or row.sequence >= latest[row.event_id].sequence:
            latest[row.event_id] = row
    return DashboardSeed(
        rows=tuple(await views.outbox()),
        detections=tuple(Detection.model_validate_json(r.parsed_json)
                         for _, r in sorted(latest.items())),
        closed=frozenset(e.event_id for e in await views.events() if e.closed),
        receipts=tuple(ReceiptSeen(r.client_id, r.message_id, r.received_at)
                       for r in await views.receipts()))
