"""The service's ports: what it needs from the outside, as small Protocols.

    Publisher  sends one Publication and returns once the broker acknowledged it
    Record     the durable record (inputs, decisions, events, outbox, receipts)
    Clock      "now" on the scenario's timeline, and real seconds until a moment

Adapters implement them (`adapters.mqtt.link.ClientPublisher`, `adapters.sqlite.ServiceRecord`,
`service.clock.SystemClock` / `ScaledClock`); tests use `alertsim.testing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from alertsim.domain.publication import Publication
from alertsim.service.records import (
    Change,
    DetectionRow,
    EventRow,
    OutboxMessage,
    OutboxRow,
    PendingInput,
)

__all__ = ["Clock", "Publisher", "Record"]


class Publisher(Protocol):
    async def publish(self, message: Publication) -> None:
        """Publish and return once the broker has acknowledged (QoS 1); BrokerError if not.

        Publishes overlap (the pump keeps a window of them in flight), so an implementation
        must hand the message to its connection before it first suspends: publishes
        started in order then leave in that order, and keep their order per topic.
        """
        ...


class Clock(Protocol):
    speed: float

    def now(self) -> datetime:
        """Current simulated time (aware)."""
        ...

    def seconds_until(self, moment: datetime) -> float:
        """Real seconds until the simulated `moment` (negative when it is past)."""
        ...


class Record(Protocol):
    """The part of the SQLite store the service writes and reads."""

    async def record_detection(self, *, raw: bytes, parsed_json: str, event_id: str,
                               sequence: int, source: str, received_at: datetime) -> int: ...

    async def detection(self, event_id: str, sequence: int) -> DetectionRow | None: ...

    async def record_operator_action(self, *, raw: bytes, event_id: str, action: str,
                                     source: str, received_at: datetime,
                                     by: str | None = None) -> int: ...

    async def record_refused_action(self, *, raw: bytes, event_id: str, action: str,
                                    source: str, received_at: datetime, by: str | None,
                                    reason: str) -> int: ...

    async def pending_inputs(self) -> list[PendingInput]: ...

    async def record_rejected(self, *, raw: bytes, reason: str, source: str,
                              received_at: datetime) -> int: ...

    async def record_receipt(self, *, client_id: str, message_id: str, received_at: datetime,
                             recorded_at: datetime) -> None: ...

    async def record_receipts(
        self, receipts: Sequence[tuple[str, str, datetime, datetime]]) -> None: ...

    async def commit(self, change: Change) -> None: ...

    async def open_events(self) -> list[EventRow]: ...

    async def closed_event_ids(self) -> set[str]: ...

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None: ...

    async def unpublished(self, *, after: int = 0) -> list[OutboxRow]: ...

    async def unpublished_count(self) -> int: ...

    async def mark_published(self, message_id: str, published_at: datetime) -> None: ...

    async def mark_all_published(self, message_ids: Sequence[str],
                                 published_at: datetime) -> int: ...
