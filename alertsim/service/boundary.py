"""The service's boundary: every input checked for rate, size and schema before the service
acts on it, and refused inputs recorded at a bounded cost (docs/record.md).

    GuardedRecord    the record port plus what the guards need: counters and the size
    Boundary.parse   the payload as a model, or None once refused (size, JSON, schema)
    receipt_allowed  a receipt within its client's rate (`InputGuards.receipts`), else
                     refused as "rate"
    refuse           one refusal: while its client is within the refusal rate, a row (the
                     first 256 bytes, the size, a bounded reason) and an errors-topic
                     report; past it, only the client's counter; past the record's size cap
                     (`budget.RecordBudget`), nothing but the metric and the log
    gathered         the counters of the refusals inside written once, at its end

Each refusal is still counted on the `rejected` metric and told on the log (the first one
counted rather than kept, per client, as `input.refusals_counted`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from alertsim.domain.rate import RateGuard
from alertsim.domain.refusal import RefusalGate, bounded, escaped
from alertsim.errors import describe_validation_error
from alertsim.service.budget import RecordBudget
from alertsim.service.clock import real_now
from alertsim.service.config import ServiceConfig
from alertsim.service.observer import input_kind
from alertsim.service.outgoing import error_message
from alertsim.service.ports import Record
from alertsim.service.pump import OutboxGauge
from alertsim.service.records import RefusalCount

__all__ = ["Boundary", "GuardedRecord"]

log = structlog.get_logger("alertsim.service")
InputModel = TypeVar("InputModel", bound=BaseModel)
_COUNTING_MAX = 10_000  # clients remembered as "only counted" (for the log line), at most


class GuardedRecord(Record, Protocol):
    """The record as the guards use it besides the `Record` port (`ServiceRecord`)."""

    async def count_refusals(self, counts: Sequence[RefusalCount]) -> None: ...

    async def size_bytes(self) -> int: ...


class Boundary:
    """Rate, size and schema checks, and the bounded record of what they refuse."""

    def __init__(self, store: GuardedRecord, config: ServiceConfig, outbox: OutboxGauge,
                 budget: RecordBudget) -> None:
        self._store = store
        self._config = config
        self._outbox = outbox
        self.budget = budget
        self._gate = RefusalGate(config.guards)
        rate = config.guards.receipts
        self._receipts = None if rate is None else RateGuard(rate)
        self._pending: dict[str, RefusalCount] | None = None  # inside `gathered`
        self._counting: set[str] = set()  # clients told on the log as only counted

    async def parse(self, model: type[InputModel], raw: bytes,
                    source: str) -> InputModel | None:
        """The payload as `model`, or None once it has been refused (size, JSON, schema)."""
        limit = self._config.max_payload_bytes
        if len(raw) > limit:
            await self.refuse(raw, f"payload too large: {len(raw)} bytes, the limit is "
                                   f"{limit}", source)
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            await self.refuse(raw, "; ".join(describe_validation_error(exc)), source)
            return None

    async def receipt_allowed(self, raw: bytes, source: str) -> bool:
        """True when the receipt's client (its topic) is within its rate; else refused."""
        if self._receipts is None or self._receipts.allow(source, time.monotonic()):
            return True
        client = self._config.topics.client_of_receipt(source)
        await self.refuse(raw, f"rate: receipts client {client!r} sent more than "
                               f"{self._receipts.rate.describe()}", source)
        return False

    async def refuse(self, raw: bytes, reason: str, source: str) -> bool:
        """Record one refused input at a bounded cost and report it; the service goes on.
        True when it got a row of its own (and an errors-topic report), not just a count."""
        reason = bounded(reason)
        self._outbox.observer.rejected(input_kind(self._config.topics, source))
        now = time.monotonic()
        how, key = self._gate.recording(source, now)
        if not await self.budget.allows("refusal", now):
            return False
        if how == "count":
            await self._count(key, len(raw), reason)
            return False
        self._counting.discard(key)
        at = real_now()
        await self._store.record_rejected(raw=raw, reason=reason, source=source,
                                          received_at=at)
        row = error_message(raw, reason, source, self._config.topics, at)
        await self._store.enqueue([row])
        self._outbox.written([row])
        log.warning("input.rejected", source=source, reason=reason, size=len(raw),
                    excerpt=escaped(raw, 80))
        return True

    async def _count(self, key: str, size: int, reason: str) -> None:
        if key not in self._counting:
            if len(self._counting) >= _COUNTING_MAX:
                self._counting.clear()
            self._counting.add(key)
            log.warning("input.refusals_counted", source=key, reason=reason,
                        note="refusals from this client past its rate are counted, not kept")
        count = RefusalCount(key, 1, size, real_now())
        if self._pending is None:
            await self._store.count_refusals([count])
            return
        was = self._pending.get(key)
        self._pending[key] = count if was is None else RefusalCount(
            key, was.count + 1, was.bytes + size, count.at)

    @contextlib.asynccontextmanager
    async def gathered(self) -> AsyncIterator[None]:
        """Refusals counted inside add to their counters once, in one transaction, at the
        end (a batch of receipts from one flooding client is one write, not hundreds)."""
        if self._pending is not None:
            yield
            return
        pending: dict[str, RefusalCount] = {}
        self._pending = pending
        try:
            yield
        finally:
            self._pending = None
        if pending:  # not on an error or a cancellation: the counts are lost, nothing else
            await self._store.count_refusals(list(pending.values()))
