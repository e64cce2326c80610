"""A receiver: what a phone or a municipal loudspeaker does with alertsim's topics.

`Receiver` subscribes (QoS 1) to the alert topics of its prefectures (and the national
topic), reads the retained state topic on connect, de-duplicates alerts by identifier,
acknowledges every delivery with a `Receipt` on its receipts topic, and reconnects with
jittered backoff when the broker goes away. `alertsim subscribe` (`alertsim.cli.subscribe`)
prints what it receives for a person to read.

What it shows and acknowledges is decided by `alertsim.domain.reception.Reception`:
de-duplication by identifier (the outbox re-publishes after a restart: a repeated
identifier is acknowledged as `ignored` but not shown twice), Updates and Cancels held
until the Alert they refer to arrives, and a late join read from the retained state. Each
receipt says `shown` or `ignored` and what the receiver now believes (`Receipt`).

With `control=True` it also obeys `{root}/conformance/control/{client_id}` (used by
`alertsim conformance`): `{"action": "rejoin", "after_s": N}` makes it leave at once and
come back N seconds later with a clean session, as a device switched off would, so that it
must rely on the retained state. `drop_connection()` (fault injection) leaves the
connection and reconnects with the usual backoff, keeping the session.

Signatures (`alertsim.signing`): the 3.1.1 envelope is always unwrapped. With
`trust`, an alert or state that is unsigned, tampered, malformed or signed by an unknown
key is rejected before anything else: not delivered, not de-duplicated (a forgery cannot
suppress the real alert with its identifier), no receipt; `on_rejected(topic, reason)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from alertsim.domain.messages import Alert, Outcome, PrefectureState, Receipt, Via
from alertsim.domain.publication import Publication
from alertsim.domain.reception import HOLD_S, Handled, Reception
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status, is_prefecture_code
from alertsim.errors import BrokerError, InputError, describe_validation_error
from alertsim.logs import get_logger
from alertsim.mqtt.client import (
    Client,
    MqttSettings,
    Protocol,
    connect,
    publish,
    received,
    subscribe,
)
from alertsim.mqtt.reconnect import reconnecting
from alertsim.signing import MalformedEnvelope, TrustedKeys, check, unwrap

__all__ = [
    "Delivery",
    "OnDelivery",
    "OnMessage",
    "OnRejected",
    "OnState",
    "RawMessage",
    "Receiver",
]

log = get_logger(__name__)

OnDelivery = Callable[["Delivery"], Awaitable[None] | None]
OnState = Callable[[PrefectureState | None, str], Awaitable[None] | None]
OnRejected = Callable[[str, str], Awaitable[None] | None]  # (topic, reason)
OnMessage = Callable[["RawMessage"], Awaitable[None] | None]
UserProperties = tuple[tuple[str, str], ...]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # the Receipt model's client_id rule
# Under MQTT 5 the broker keeps a persistent receiver's session (subscriptions and queued
# QoS 1 alerts) this long after it disconnects.
SESSION_EXPIRY_S = 24 * 3600

Parsed = TypeVar("Parsed", bound=BaseModel)


@dataclass(frozen=True)
class Delivery:
    """One alert as a receiver read it; `duplicate` when its identifier was seen before."""

    identifier: str
    prefecture: str | None
    stage: str
    msg_type: str
    received_at: datetime
    duplicate: bool
    alert: Alert
    outcome: Outcome = "shown"
    via: Via = "alert"


@dataclass(frozen=True)
class RawMessage:
    """An alert or state message as it arrived (after any signature check and unwrapping)."""

    topic: str
    payload: bytes
    user_properties: UserProperties
    retained: bool
    received_at: datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _call(callback: Callable[..., Awaitable[None] | None], *args: object) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class Receiver:
    """Subscribe to some prefectures' alerts and state; de-duplicate, acknowledge, reconnect.

    `run()` loops until `stop()` or cancellation, and returns promptly after either in
    every state (connecting, subscribed, reading, sending a receipt, backing off, broker
    down). `deliveries` keeps every alert handled (duplicates and ignored ones included, a
    held Update once released); `on_delivery` sees only those shown; `on_state` sees each
    state (None when the state topic was cleared) with its prefecture code; `on_message`
    sees every alert and state message as it arrived. Receipts wait
    in `pending_receipts` across reconnections until the broker has them.
    `now` is the clock `received_at` is read from (aware UTC). With `trust`, only messages
    signed by one of its keys are handled; `rejected` keeps (topic, reason) of the others.
    """

    def __init__(self, *, url: str, protocol: Protocol, client_id: str, codes: Sequence[str],
                 status: Status = "exercise", national: bool = True,
                 tree: TopicTree = V1,
                 persistent: bool = True, on_delivery: OnDelivery | None = None,
                 on_state: OnState | None = None,
                 now: Callable[[], datetime] = _utc_now,
                 trust: TrustedKeys | None = None,
                 on_rejected: OnRejected | None = None,
                 ca_file: Path | None = None, control: bool = False,
                 hold_s: float = HOLD_S, on_message: OnMessage | None = None) -> None:
        problems = [f"codes: {code!r} is not a JIS X 0401 prefecture code (01..47)"
                    for code in codes if not is_prefecture_code(code)]
        if not _CLIENT_ID.match(client_id):
            problems.append(f"client_id: 1 to 64 of A-Z a-z 0-9 . _ - (got {client_id!r})")
        if status not in ("exercise", "test"):
            problems.append(f"status: exercise or test (got {status!r})")
        if problems:
            raise InputError(source="receiver", problems=problems)
        self.ca_file = ca_file
        self.url = url
        self.protocol: Protocol = protocol
        self.client_id = client_id
        self.codes = tuple(dict.fromkeys(codes))
        self.status: Status = status
        self.national = national
        self.persistent = persistent
        self.control = control
        self.on_delivery = on_delivery
        self.on_state = on_state
        self.on_message = on_message
        self.deliveries: list[Delivery] = []
        self.states: dict[str, PrefectureState | None] = {}
        self.trust = trust
        self.on_rejected = on_rejected
        self.rejected: list[tuple[str, str]] = []
        self.reception = Reception(hold_s)
        self.pending_receipts: deque[Receipt] = deque()
        self.sessions = 0  # connections made (reconnections and rejoins included)
        self._receipt_added = asyncio.Event()
        self._now = now
        self._stopping = asyncio.Event()
        self._dropping = asyncio.Event()
        self._held = asyncio.Event()  # a message was held: its due time may be the first
        self._handled = asyncio.Condition()  # notified after messages are handled
        self._rejoin_after: float | None = None
        self._clean_next = False
        self.tree = tree
        self._state_prefix = tree.state(status, "")

    def settings(self) -> MqttSettings:
        """The connection: a persistent session (fixed id, no clean start) when asked."""
        return MqttSettings(url=self.url, client_id=self.client_id, protocol=self.protocol,
                            clean_start=not self.persistent or self._clean_next,
                            session_expiry_s=SESSION_EXPIRY_S, ca_file=self.ca_file)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters with QoS 1: alerts per prefecture, national, state per prefecture,
        and with `control` the conformance control topic."""
        filters = [self.tree.alerts(self.status, code) for code in self.codes]
        if self.national:
            filters.append(self.tree.alerts(self.status, None))
        filters += [self.tree.state(self.status, code) for code in self.codes]
        if self.control:
            filters.append(self.tree.conformance_control(self.client_id))
        return [(topic, 1) for topic in filters]

    def stop(self) -> None:
        """Ask `run()` to disconnect and return."""
        self._stopping.set()

    def drop_connection(self) -> None:
        """Leave the current connection and reconnect with backoff (fault injection)."""
        self._dropping.set()

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
        async with connect(self.settings()) as client:
            await subscribe(client, self.subscriptions())
            self._clean_next = False
            self.sessions += 1
            log.debug("receiver.subscribed", client_id=self.client_id, codes=list(self.codes),
                      status=self.status, persistent=self.persistent)
            up()
            if ready is not None:
                ready.set()
            async with asyncio.TaskGroup() as group, \
                    contextlib.aclosing(received(client)) as messages:
                # Receipts go out from their own task: waiting for each receipt's PUBACK in
                # the read loop held the next alert back (~40 ms, Nagle + delayed ACK).
                helpers = [group.create_task(self._send_receipts(client),
                                             name=f"receipts:{self.client_id}"),
                           group.create_task(self._release_overdue()),
                           group.create_task(self._watch_drop())]
                try:
                    async for message in messages:
                        if await self._handle(message.topic, message.payload,
                                              message.user_properties, message.retain):
                            break  # asked to rejoin: the session ends, _sessions waits
                finally:
                    for helper in helpers:
                        helper.cancel()

    async def _send_receipts(self, client: Client) -> None:
        while True:
            while not self.pending_receipts:
                self._receipt_added.clear()
                await self._receipt_added.wait()
            receipt = self.pending_receipts[0]
            await publish(client, Publication(topic=self.tree.receipts(self.client_id),
                                              payload=receipt.model_dump_json().encode(),
                                              qos=1, content_type="application/json"),
                          protocol=self.protocol)
            self.pending_receipts.popleft()  # only once the broker has it

    async def _release_overdue(self) -> None:
        """Show held Updates whose Alert has not come within the hold limit, at the moment
        the first falls due (woken when a message is held, to look again)."""
        while True:
            due = self.reception.next_due()
            self._held.clear()
            wait = None if due is None else max(0.0, (due - self._now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._held.wait()
            await self._emit(self.reception.overdue(self._now()))

    async def _watch_drop(self) -> None:
        self._dropping.clear()
        await self._dropping.wait()
        self._dropping.clear()
        raise BrokerError(f"receiver {self.client_id}: connection dropped (fault injection)")

    async def _handle(self, topic: str, payload: bytes, properties: UserProperties = (),
                      retained: bool = False) -> bool:
        """Handle one message; True when it asks this receiver to leave and rejoin."""
        received_at = self._now()
        if self.control and topic == self.tree.conformance_control(self.client_id):
            return self._control(payload)
        verified = await self._verified(topic, payload, properties)
        if verified is None:
            return False
        payload = verified
        if self.on_message is not None:
            await _call(self.on_message, RawMessage(topic, payload, properties, retained,
                                                    received_at))
        if topic.startswith(self._state_prefix):
            await self._handle_state(topic, payload, retained, received_at)
        else:
            await self._handle_alert(topic, payload, received_at)
        return False

    def _control(self, payload: bytes) -> bool:
        """`{"action": "rejoin", "after_s": N}` (0 <= N <= 300): leave, come back in N s."""
        try:
            body = json.loads(payload)
            after = float(body["after_s"])
            action = body.get("action")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("receiver.bad_control", client_id=self.client_id, error=str(exc))
            return False
        if action != "rejoin" or not 0 <= after <= 300:
            log.warning("receiver.bad_control", client_id=self.client_id,
                        error="action must be rejoin, after_s 0..300")
            return False
        self._rejoin_after = after
        return True

    async def _verified(self, topic: str, payload: bytes,
                        properties: UserProperties) -> bytes | None:
        """The original payload; None (after `on_rejected`) when `trust` refuses it."""
        if self.trust is None:
            try:
                return unwrap(payload, properties)[0]
            except MalformedEnvelope:
                return payload
        original, verdict = check(payload, properties, self.trust)
        if verdict.ok:
            return original
        reason = verdict.reason or "rejected"
        self.rejected.append((topic, reason))
        log.warning("receiver.unverified", client_id=self.client_id, topic=topic,
                    reason=reason)
        if self.on_rejected is not None:
            await _call(self.on_rejected, topic, reason)
        return None

    def _parsed(self, model: type[Parsed], payload: bytes, topic: str) -> Parsed | None:
        """The payload as `model`, or None after logging why it was rejected."""
        try:
            return model.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("receiver.rejected", client_id=self.client_id, topic=topic,
                        problems=describe_validation_error(exc))
            return None

    async def _handle_state(self, topic: str, payload: bytes, retained: bool,
                            received_at: datetime) -> None:
        code = topic.removeprefix(self._state_prefix)
        state: PrefectureState | None = None
        if payload:
            state = self._parsed(PrefectureState, payload, topic)
            if state is None:
                return
        self.states[code] = state
        if self.on_state is not None:
            await _call(self.on_state, state, code)
        await self._emit(self.reception.on_state(code, state, retained=retained,
                                                 received_at=received_at))

    async def _handle_alert(self, topic: str, payload: bytes, received_at: datetime) -> None:
        alert = self._parsed(Alert, payload, topic)
        if alert is None:
            return
        handled = self.reception.on_alert(alert, received_at)
        if self.reception.held:
            self._held.set()
        if not handled:
            log.debug("alert.held", client_id=self.client_id, identifier=alert.identifier,
                      references=list(alert.referenced_identifiers()))
        await self._emit(handled)

    async def _emit(self, handled: Sequence[Handled]) -> None:
        """Record, show (when shown) and acknowledge each handled message, in order."""
        for h in handled:
            if h.alert is not None:
                delivery = Delivery(identifier=h.identifier, prefecture=h.prefecture,
                                    stage=h.stage, msg_type=h.alert.msgType,
                                    received_at=h.received_at, duplicate=h.duplicate,
                                    alert=h.alert, outcome=h.outcome, via=h.via)
                self.deliveries.append(delivery)
                log.debug("alert.received", client_id=self.client_id, identifier=h.identifier,
                          prefecture=h.prefecture, stage=h.stage, duplicate=h.duplicate,
                          outcome=h.outcome)
                if h.shown and self.on_delivery is not None:
                    await _call(self.on_delivery, delivery)
            self.pending_receipts.append(Receipt(
                client_id=self.client_id, identifier=h.identifier, received_at=h.received_at,
                prefecture=h.prefecture, stage=h.stage, duplicate=h.duplicate,
                outcome=h.outcome, via=h.via, belief=h.belief))
            self._receipt_added.set()
        if handled:
            async with self._handled:
                self._handled.notify_all()

    async def handled(self, identifier: str) -> None:
        """Return once this receiver has handled the message `identifier` (shown, held
        or ignored): for faults that act right after a delivery."""
        async with self._handled:
            await self._handled.wait_for(lambda: identifier in self.reception.known)
