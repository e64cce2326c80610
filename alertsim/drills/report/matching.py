"""Receipts matched to the alerts they acknowledge: deliveries (the first receipt of a
(client_id, message_id) pair, with its latency) and duplicates (every further receipt), as
the package docstring defines them (`alertsim.drills.report`). Pure: rows in.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from alertsim.adapters.sqlite.rows import ReceiptRow
from alertsim.drills.report.model import NATIONAL
from alertsim.service.records import OutboxRow

__all__ = ["Delivery", "Receipts", "place_of", "to_ms"]


def to_ms(delta: timedelta) -> float:
    """A time difference in milliseconds."""
    return delta / timedelta(milliseconds=1)


def place_of(row: OutboxRow) -> str:
    """The place an alert row is for: its prefecture code, or "national"."""
    return row.prefecture or NATIONAL


@dataclass(frozen=True)
class Delivery:
    """The first receipt of one alert by one client, with its latency."""

    client_id: str
    row: OutboxRow
    latency_ms: float


@dataclass(frozen=True)
class Receipts:
    """Receipts matched to a set of alert rows: deliveries in receipt order, duplicates."""

    deliveries: tuple[Delivery, ...]
    duplicates: Counter[tuple[str, str]]  # (client_id, message_id) -> extra receipts
    # Indexes over the two above, so a report stays linear in deliveries at 20,000
    # receivers: (client_id, place) -> deliveries, place -> deliveries, and
    # client_id -> {message_id: extra receipts}.
    by_client: dict[tuple[str, str], list[Delivery]] = field(default_factory=dict)
    by_place: dict[str, list[Delivery]] = field(default_factory=dict)
    extra: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def match(cls, rows: Sequence[OutboxRow], receipts: Sequence[ReceiptRow]) -> Receipts:
        """Match `receipts` to `rows`; receipts naming none of the rows are left out."""
        by_id = {r.message_id: r for r in rows}
        seen: set[tuple[str, str]] = set()
        deliveries: list[Delivery] = []
        duplicates: Counter[tuple[str, str]] = Counter()
        for receipt in receipts:
            row = by_id.get(receipt.message_id)
            if row is None:
                continue
            key = (receipt.client_id, receipt.message_id)
            if key in seen:
                duplicates[key] += 1
                continue
            seen.add(key)
            deliveries.append(Delivery(receipt.client_id, row,
                                        to_ms(receipt.received_at - row.created_at)))
        by_client: defaultdict[tuple[str, str], list[Delivery]] = defaultdict(list)
        by_place: defaultdict[str, list[Delivery]] = defaultdict(list)
        for d in deliveries:
            by_client[(d.client_id, place_of(d.row))].append(d)
            by_place[place_of(d.row)].append(d)
        extra: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for (client_id, message_id), n in duplicates.items():
            extra[client_id][message_id] += n
        return cls(tuple(deliveries), duplicates, dict(by_client), dict(by_place), dict(extra))

    def acknowledged(self, client_id: str, place: str) -> list[Delivery]:
        """The client's deliveries of the place's alerts, in receipt order."""
        return list(self.by_client.get((client_id, place), ()))

    def ofplace_of(self, place: str) -> list[Delivery]:
        """Every client's deliveries of the place's alerts, in receipt order."""
        return list(self.by_place.get(place, ()))
