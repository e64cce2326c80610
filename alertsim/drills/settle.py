"""A drill's settle: wait, on the service's events, until delivery is over.

Settled when every outbox row is acknowledged and either every receipt the drill expects
has arrived (each reference receiver acknowledges every alert of its prefectures and every
national one) or, when some never come (faults, refusals, a receiver away), no receipt
has arrived for `quiet_s`. Bounded by `timeout_s`. It wakes on events only: rows written
and acknowledged, receipts recorded; it never polls the record's receipts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from alertsim.service.events import EventStream, Received, ServiceEvent, Written

__all__ = ["DeliveryWatch", "SettleLimits"]

log = structlog.get_logger("alertsim.drill")


@dataclass(frozen=True)
class SettleLimits:
    timeout_s: float = 15.0
    quiet_s: float = 1.0


@dataclass
class DeliveryWatch:
    """Follows a drill's service events from before the first input: what each reference
    receiver should acknowledge, and what it has.

    `plan`: client id -> the prefecture codes it listens to (all also hear national).
    `exact`: False when receipts may legitimately be missing (faults): then only the
    quiet period ends the settle."""

    events: EventStream
    plan: Mapping[str, Sequence[str]]
    exact: bool = True
    expected: set[tuple[str, str]] = field(default_factory=set)
    received: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._queue = self.events.subscribe()
        self._listeners: dict[str | None, list[str]] = {None: list(self.plan)}
        for client, codes in self.plan.items():
            for code in codes:
                self._listeners.setdefault(code, []).append(client)

    def close(self) -> None:
        self.events.unsubscribe(self._queue)

    def take(self, event: ServiceEvent) -> bool:
        """Count one event in; True when it was a receipt."""
        if isinstance(event, Written):
            for row in event.rows:
                if row.kind == "alert":
                    self.expected |= {(c, row.message_id)
                                      for c in self._listeners.get(row.prefecture, ())}
        elif isinstance(event, Received):
            self.received |= {(r.client_id, r.message_id) for r in event.receipts}
            return True
        return False

    @property
    def complete(self) -> bool:
        return self.exact and self.expected <= self.received

    async def settle(self, drained: Callable[[], Awaitable[bool]],
                     limits: SettleLimits) -> bool:
        """Wait until settled (see the module); False when `limits.timeout_s` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.timeout_s
        last_receipt = loop.time()
        while (now := loop.time()) < deadline:
            wait = deadline - now
            if await drained():
                if self.complete or now - last_receipt >= limits.quiet_s:
                    return True
                wait = min(wait, last_receipt + limits.quiet_s - now)
            try:
                async with asyncio.timeout(wait):
                    event = await self._queue.get()
            except TimeoutError:
                continue
            if event is None:  # cut off for lagging: fall back on the quiet period alone
                self._queue, self.exact = self.events.subscribe(), False
            elif self.take(event):
                last_receipt = loop.time()
        log.warning("drill.settle_timeout", timeout_s=limits.timeout_s,
                    missing=len(self.expected - self.received))
        return False
