"""A receiver: what a phone or a municipal loudspeaker does with alertsim's topics.

`Receiver` subscribes (QoS 1) to the alert topics of its prefectures (and the national
topic), reads the retained state topic on connect, acknowledges every delivery with a
`Receipt` on its receipts topic, and reconnects with jittered backoff when the broker goes
away. `alertsim subscribe` (`alertsim.cli.subscribe`) prints what it receives for a person
to read. What it is (broker, client id, prefectures, trust, ...) is a `ReceiverOptions`
(`alertsim.clients.receiver_options`).

This module is the connection: sessions, reconnection, the receipts going out. What it
does with each message (signature check, de-duplication by identifier, Updates and Cancels
held until their Alert, the late join from retained state, deliveries and receipts) is the
`Inbox` (`alertsim.clients.inbox`), around `alertsim.domain.reception.Reception`.

With `control` it also obeys `{root}/conformance/control/{client_id}` (used by `alertsim
conformance`, `alertsim.clients.control`): a rejoin message makes it leave at once and
come back N seconds later with a clean session, as a device switched off would, so that it
must rely on the retained state. `drop_connection()` (fault injection) leaves the
connection and reconnects with the usual backoff, keeping the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from alertsim.clients.control import rejoin_after
from alertsim.clients.inbox import (
    Delivery,
    Inbox,
    Listeners,
    OnDelivery,
    OnMessage,
    OnRejected,
    OnState,
    RawMessage,
)
from alertsim.clients.receiver_options import ReceiverOptions
from alertsim.domain.messages import PrefectureState
from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.logs import get_logger
from alertsim.mqtt.client import Client, connect
from alertsim.mqtt.messages import Received, publish, received, subscribe
from alertsim.mqtt.reconnect import reconnecting

__all__ = [
    "Delivery",
    "OnDelivery",
    "OnMessage",
    "OnRejected",
    "OnState",
    "RawMessage",
    "Receiver",
    "ReceiverOptions",
]

log = get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Receiver:
    """Subscribe to some prefectures' alerts and state; de-duplicate, acknowledge, reconnect.

    `run()` loops until `stop()` or cancellation, and returns promptly after either in
    every state (connecting, subscribed, reading, sending a receipt, backing off, broker
    down). The callbacks are the `Listeners`'; `deliveries`, `states`, `rejected` and
    `pending_receipts` (kept across reconnections until the broker has them) are the
    `inbox`'s. `now` is the clock `received_at` is read from (aware UTC).
    """

    def __init__(self, options: ReceiverOptions, *, on_delivery: OnDelivery | None = None,
                 on_state: OnState | None = None, on_rejected: OnRejected | None = None,
                 on_message: OnMessage | None = None,
                 now: Callable[[], datetime] = _utc_now) -> None:
        self.options = options
        self.inbox = Inbox(options, Listeners(on_delivery=on_delivery, on_state=on_state,
                                              on_rejected=on_rejected, on_message=on_message),
                           now)
        self.sessions = 0  # connections made (reconnections and rejoins included)
        self._now = now
        self._stopping = asyncio.Event()
        self._dropping = asyncio.Event()
        self._rejoin_after: float | None = None
        self._clean_next = False

    @property
    def client_id(self) -> str:
        return self.options.client_id

    @property
    def codes(self) -> Sequence[str]:
        return self.options.codes

    @property
    def deliveries(self) -> list[Delivery]:
        return self.inbox.deliveries

    @property
    def states(self) -> dict[str, PrefectureState | None]:
        return self.inbox.states

    @property
    def rejected(self) -> list[tuple[str, str]]:
        return self.inbox.rejected

    def keep_session(self) -> None:
        """Use a persistent session from the next connection on (fault injection chooses
        the receivers it will drop before they start)."""
        self.options = dataclasses.replace(self.options, persistent=True)

    def stop(self) -> None:
        """Ask `run()` to disconnect and return."""
        self._stopping.set()

    def drop_connection(self) -> None:
        """Leave the current connection and reconnect with backoff (fault injection)."""
        self._dropping.set()

    async def handled(self, identifier: str) -> None:
        """Return once this receiver has handled the message `identifier` (shown, held
        or ignored): for faults that act right after a delivery."""
        await self.inbox.handled(identifier)

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Connect, subscribe, set `ready` after the SUBACK, handle messages until stopped."""
        try:
            async with asyncio.TaskGroup() as group:
                sessions = group.create_task(self._sessions(ready),
                                             name=f"receiver:{self.client_id}")
                await self._stopping.wait()
                sessions.cancel()
        except BaseExceptionGroup as group_error:
            # One child task: hand its error on as itself, not wrapped in a group.
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        finally:
            self._stopping.clear()  # a stop() before run() began is honoured; run() again works

    async def _sessions(self, ready: asyncio.Event | None) -> None:
        """Sessions with backoff; a session returns only when asked to rejoin later."""
        while True:
            await reconnecting(functools.partial(self._session, ready), what="receiver",
                               client_id=self.client_id)
            after, self._rejoin_after = self._rejoin_after or 0.0, None
            log.info("receiver.rejoining", client_id=self.client_id, after_s=after)
            self._clean_next = True  # come back as a device that was off: no session
            await asyncio.sleep(after)

    async def _session(self, ready: asyncio.Event | None, up: Callable[[], None]) -> None:
        """One connection: subscribe, then read until the broker goes away (BrokerError)."""
        async with connect(self.options.settings(clean=self._clean_next)) as client:
            await subscribe(client, self.options.subscriptions())
            self._clean_next = False
            self.sessions += 1
            log.debug("receiver.subscribed", client_id=self.client_id, codes=list(self.codes),
                      status=self.options.status, persistent=self.options.persistent)
            up()
            if ready is not None:
                ready.set()
            async with asyncio.TaskGroup() as group, \
                    contextlib.aclosing(received(client)) as messages:
                # Receipts go out from their own task: waiting for each receipt's PUBACK in
                # the read loop held the next alert back (~40 ms, Nagle + delayed ACK).
                helpers = [group.create_task(self._send_receipts(client),
                                             name=f"receipts:{self.client_id}"),
                           group.create_task(self.inbox.release_overdue()),
                           group.create_task(self._watch_drop())]
                try:
                    async for message in messages:
                        if await self._handle(message):
                            break  # asked to rejoin: the session ends, _sessions waits
                finally:
                    for helper in helpers:
                        helper.cancel()

    async def _send_receipts(self, client: Client) -> None:
        while True:
            receipt = await self.inbox.next_receipt()
            await publish(client, Publication(topic=self.options.tree.receipts(self.client_id),
                                              payload=receipt.model_dump_json().encode(),
                                              qos=1, content_type="application/json"),
                          protocol=self.options.protocol)
            self.inbox.receipt_sent()  # only once the broker has it

    async def _watch_drop(self) -> None:
        self._dropping.clear()
        await self._dropping.wait()
        self._dropping.clear()
        raise BrokerError(f"receiver {self.client_id}: connection dropped (fault injection)")

    async def _handle(self, message: Received) -> bool:
        """Handle one message; True when it asks this receiver to leave and rejoin."""
        received_at = self._now()
        if self.options.control and message.topic == self.options.control_topic:
            return self._control(message.payload)
        await self.inbox.handle(message.topic, message.payload, message.user_properties,
                                message.retain, received_at)
        return False

    def _control(self, payload: bytes) -> bool:
        """Obey a rejoin message (True: leave now); log and ignore anything else."""
        try:
            self._rejoin_after = rejoin_after(payload)
        except ValueError as exc:
            log.warning("receiver.bad_control", client_id=self.client_id, error=str(exc))
            return False
        return True
