"""`DrillProcessFleet`: a drill's extra receivers (`--receivers N` on an MQTT 5 broker) as
a process fleet (`alertsim.fleet`), spread over the prefectures by population.

It follows the service's events to learn every alert of its tree as it is written, and at
`collect` waits until each has reached every fleet receiver of its place (a deadline that
grows with the deliveries expected), stops, and hands the deliveries to the service as
receipts (`ReceiptSink`, `Service.record_receipts`), in one batch, so the report (built
from the record alone) judges them like any receiver's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.drills.fleet import FleetOutcome, ReceiptSink
from alertsim.fleet.fleet import ProcessFleet
from alertsim.fleet.summary import FleetReady
from alertsim.fleet.tally import ReceiverTally
from alertsim.logs import get_logger
from alertsim.service.events import EventStream, Lagged, ReceiptSeen, ServiceEvent, Written

__all__ = ["DrillProcessFleet", "receipts_of"]

log = get_logger(__name__)

SETTLE_BASE_S = 10.0
SETTLE_PER_DELIVERY_S = 0.001  # 20,000 receivers x 3 alerts: 70 s


def receipts_of(records: Sequence[ReceiverTally], now: datetime) -> list[ReceiptSeen]:
    """Each receiver's deliveries as receipts: the first copy at its receive time, every
    extra copy (a duplicate, counted by the report) at `now`."""
    found = [ReceiptSeen(r.client_id, ident, datetime.fromtimestamp(ms / 1000, UTC))
             for r in records for ident, ms in r.first.items()]
    found += [ReceiptSeen(r.client_id, ident, now) for r in records
              for ident, n in r.duplicates.items() for _ in range(n)]
    return found


class DrillProcessFleet:
    """A drill's process fleet: `start`, `follow` the service, `collect` once it published."""

    label = "fleet"

    def __init__(self, plan: Mapping[str, str], *, url: str, status: Status, tree: TopicTree,
                 ca_file: Path | None = None, spread_urls: Sequence[str] = ()) -> None:
        self.fleet = ProcessFleet(plan, url=url, status=status, tree=tree, ca_file=ca_file,
                                  spread_urls=spread_urls)
        self._alert_prefix = tree.alerts(status, "01")[:-2]
        self._expected: dict[str, int] = {}  # alert identifier -> fleet receivers to get it
        self._watch: asyncio.Task[None] | None = None
        self._ready: FleetReady | None = None

    async def start(self) -> None:
        """Start the shards; returns once every receiver is subscribed (or BrokerError)."""
        self._ready = await self.fleet.start()

    async def ready(self) -> FleetReady:
        if self._ready is None:
            raise RuntimeError("start() the fleet first")
        return self._ready

    def follow(self, events: EventStream) -> None:
        """Learn the alerts of this fleet's tree as the service writes them."""
        if self._watch is not None:
            raise RuntimeError("the fleet already follows a service")
        self._watch = asyncio.create_task(self._watch_alerts(events.follow()),
                                          name="fleet.watch-alerts")

    async def _watch_alerts(self, events: AsyncIterator[ServiceEvent]) -> None:
        try:
            async for event in events:
                if isinstance(event, Written):
                    self._expected.update(
                        (row.message_id, self.fleet.expected(row.prefecture))
                        for row in event.rows
                        if row.kind == "alert" and row.topic.startswith(self._alert_prefix))
        except Lagged:  # waits for the alerts heard so far; the report still judges all
            log.warning("fleet.watch_lagged", alerts=len(self._expected))

    async def _unfollow(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def collect(self, sink: ReceiptSink) -> FleetOutcome:
        """Wait for the expected deliveries (bounded), stop, and hand them to `sink` as
        receipts; `complete`: whether all expected deliveries came in time."""
        await self._unfollow()
        expected = dict(self._expected)
        timeout = SETTLE_BASE_S + SETTLE_PER_DELIVERY_S * sum(expected.values())
        complete = await self.fleet.wait_for(expected, timeout)
        if not complete:
            log.warning("fleet.settle_timeout", timeout_s=timeout)
        result = await self.fleet.stop()
        await sink.record_receipts(receipts_of(result.records, datetime.now(UTC)))
        totals = result.summary.totals
        return FleetOutcome(label=self.label, receivers=result.summary.receivers,
                            deliveries=totals.deliveries, verified=0, complete=complete,
                            summary=result.summary)

    async def stop(self) -> None:
        """Stop the fleet if `collect` has not (for an exit stack)."""
        await self._unfollow()
        await self.fleet.stop()
