"""`ReferenceFleet`: a drill's reference receivers, in this process, on one broker or more.

One `Receiver` per client id (clean sessions: a fleet lives for one drill; the national
topic too), all owned by one `asyncio.TaskGroup` inside a single runner task. Given
several broker URLs (the nodes of a cluster), the receivers are dealt over them by
`spread`, so every alert and receipt crosses the cluster. The receivers verify signatures
(with `trust`) and send their receipts over MQTT themselves.

aiomqtt costs a timer per client, which is fine for hundreds of receivers; more are a
process fleet (`drills/process_fleet.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from alertsim.clients.receiver import Delivery, Receiver, ReceiverOptions
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.drills.fleet import FleetOutcome, ReceiptSink, Rejection
from alertsim.drills.spread import spread
from alertsim.errors import BrokerError
from alertsim.fleet.summary import FleetReady
from alertsim.logs import get_logger
from alertsim.mqtt.protocol import Protocol
from alertsim.service.events import EventStream
from alertsim.signing import TrustedKeys

__all__ = ["READY_TIMEOUT_S", "ReferenceFleet"]

log = get_logger(__name__)

READY_TIMEOUT_S = 30.0


class ReferenceFleet:
    """Many receivers (client id -> prefectures) started and stopped together.

    `start()` then `await ready()` (all subscribed, or BrokerError after 30 s); read
    `deliveries()`; `stop()`. Also usable as `async with ReferenceFleet(...) as fleet:`.
    """

    label = "reference receivers"

    def __init__(self, *, urls: Sequence[str], protocol: Protocol, status: Status,
                 codes_per_receiver: Mapping[str, Sequence[str]],
                 tree: TopicTree = V1, trust: TrustedKeys | None = None,
                 ca_file: Path | None = None, signed_tree: TopicTree | None = None) -> None:
        self.receivers = {
            client_id: Receiver(ReceiverOptions(
                url=url, protocol=protocol, client_id=client_id, codes=codes, status=status,
                national=True, persistent=False, tree=tree, trust=trust, ca_file=ca_file,
                signed_tree=signed_tree))
            for url, share in spread(codes_per_receiver, urls).items()
            for client_id, codes in share.items()
        }
        self.verifies = trust is not None
        self._ready = {client_id: asyncio.Event() for client_id in self.receivers}
        self._runner: asyncio.Task[None] | None = None
        self._started = 0.0

    @property
    def plan(self) -> dict[str, Sequence[str]]:
        """Client id -> the prefectures it listens to (all also hear national)."""
        return {client_id: r.codes for client_id, r in self.receivers.items()}

    async def start(self) -> None:
        """Start every receiver (returns at once; `ready()` waits for the subscriptions)."""
        if self._runner is not None:
            raise RuntimeError("the fleet is already started")
        self._started = asyncio.get_running_loop().time()
        self._runner = asyncio.create_task(self._run(), name="fleet")
        log.info("fleet.started", receivers=len(self.receivers))

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for client_id, receiver in self.receivers.items():
                group.create_task(receiver.run(self._ready[client_id]),
                                  name=f"fleet:{client_id}")

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> FleetReady:
        """Wait until every receiver has its SUBACK; BrokerError after `timeout_s`."""
        if self._runner is None:
            raise RuntimeError("start() the fleet first")
        try:
            async with asyncio.timeout(timeout_s):
                for client_id, event in self._ready.items():
                    await self._subscribed(client_id, event, self._runner)
        except TimeoutError:
            waiting = [cid for cid, event in self._ready.items() if not event.is_set()]
            raise BrokerError(f"{len(waiting)} of {len(self.receivers)} receivers not "
                              f"subscribed within {timeout_s} s (first: {waiting[0]})") from None
        log.info("fleet.ready", receivers=len(self.receivers))
        took = asyncio.get_running_loop().time() - self._started
        return FleetReady(receivers=len(self.receivers), shards=1,
                          subscribed=len(self.receivers), connect_s=round(took, 3))

    @staticmethod
    async def _subscribed(client_id: str, event: asyncio.Event,
                          runner: asyncio.Task[None]) -> None:
        """Wait for one receiver's subscription; raise the error of a receiver that failed."""
        ready = asyncio.create_task(event.wait(), name=f"fleet.ready:{client_id}")
        try:
            await asyncio.wait({ready, runner}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if runner.done():
            runner.result()  # a receiver failed: raise its error here
            raise BrokerError("the fleet stopped before all receivers subscribed")

    def follow(self, events: EventStream) -> None:
        """Nothing to hear: the receivers acknowledge, and the drill's settle waits."""

    def deliveries(self) -> dict[str, list[Delivery]]:
        """Every receiver's deliveries so far (duplicates included), by client id."""
        return {client_id: list(r.deliveries) for client_id, r in self.receivers.items()}

    def rejected(self) -> dict[str, list[tuple[str, str]]]:
        """(topic, reason) of every message a receiver refused (with `trust`), by client id."""
        return {client_id: list(r.rejected) for client_id, r in self.receivers.items()
                if r.rejected}

    async def collect(self, sink: ReceiptSink) -> FleetOutcome:
        """What the receivers got; their receipts went out over MQTT already."""
        deliveries = sum(len(r.deliveries) for r in self.receivers.values())
        return FleetOutcome(
            label=self.label, receivers=len(self.receivers), deliveries=deliveries,
            verified=deliveries if self.verifies else 0,
            rejected=tuple(Rejection(cid, topic, reason)
                           for cid, found in self.rejected().items()
                           for topic, reason in found))

    async def stop(self) -> None:
        """Disconnect every receiver and wait for them (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for receiver in self.receivers.values():
            receiver.stop()
        await runner
        log.info("fleet.stopped", receivers=len(self.receivers))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
