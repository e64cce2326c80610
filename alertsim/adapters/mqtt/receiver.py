"""A receiver: what a phone or a municipal loudspeaker does with alertsim's topics.

`Receiver` subscribes (QoS 1) to the alert topics of its prefectures (and the national
topic), reads the retained state topic on connect, de-duplicates alerts by identifier,
acknowledges every delivery with a `Receipt` on its receipts topic, and reconnects with
jittered backoff when the broker goes away. `alertsim subscribe` (`alertsim.cli.subscribe`)
prints what it receives for a person to read.

De-duplication matters because the service's outbox re-publishes after a restart:
a repeated identifier is recorded (and acknowledged) but not shown twice.

Signatures (`alertsim.adapters.mqtt.signing`): the 3.1.1 envelope is always unwrapped. With
`trust`, an alert or state that is unsigned, tampered, malformed or signed by an unknown
key is rejected before anything else: not delivered, not de-duplicated (a forgery cannot
suppress the real alert with its identifier), no receipt; `on_rejected(topic, reason)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiomqtt
from pydantic import BaseModel, ValidationError

from alertsim.adapters.mqtt.client import (
    MqttSettings,
    Protocol,
    Publication,
    connect,
    publish,
    received,
    subscribe,
)
from alertsim.adapters.mqtt.reconnect import reconnecting
from alertsim.adapters.mqtt.signing import MalformedEnvelope, TrustedKeys, check, unwrap
from alertsim.domain.messages import Alert, PrefectureState, Receipt
from alertsim.domain.topics import V1, TopicTree
from alertsim.domain.vocabulary import Status, is_prefecture_code
from alertsim.errors import InputError, describe_validation_error
from alertsim.logs import get_logger

__all__ = [
    "Delivery",
    "OnDelivery",
    "OnRejected",
    "OnState",
    "Receiver",
]

log = get_logger(__name__)

OnDelivery = Callable[["Delivery"], Awaitable[None] | None]
OnState = Callable[[PrefectureState | None, str], Awaitable[None] | None]
OnRejected = Callable[[str, str], Awaitable[None] | None]  # (topic, reason)
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
    down). `deliveries` keeps every delivery,
    duplicates included; `on_delivery` sees only new ones; `on_state` sees each retained
    state (None when the state topic was cleared) with its prefecture code.
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
                 ca_file: Path | None = None) -> None:
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
        self.on_delivery = on_delivery
        self.on_state = on_state
        self.deliveries: list[Delivery] = []
        self.states: dict[str, PrefectureState | None] = {}
        self.trust = trust
        self.on_rejected = on_rejected
        self.rejected: list[tuple[str, str]] = []
        self._now = now
        self._seen: set[str] = set()
        self._stopping = asyncio.Event()
        self.tree = tree
        self._state_prefix = tree.state(status, "")

    def settings(self) -> MqttSettings:
        """The connection: a persistent session (fixed id, no clean start) when asked."""
        return MqttSettings(url=self.url, client_id=self.client_id, protocol=self.protocol,
                            clean_start=not self.persistent,
                            session_expiry_s=SESSION_EXPIRY_S, ca_file=self.ca_file)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters with QoS 1: alerts per prefecture, national, state per prefecture."""
        filters = [self.tree.alerts(self.status, code) for code in self.codes]
        if self.national:
            filters.append(self.tree.alerts(self.status, None))
        filters += [self.tree.state(self.status, code) for code in self.codes]
        return [(topic, 1) for topic in filters]

    def stop(self) -> None:
        """Ask `run()` to disconnect and return."""
        self._stopping.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Connect, subscribe, set `ready` after the SUBACK, handle messages until stopped."""
        try:
            async with asyncio.TaskGroup() as group:
                sessions = group.create_task(
                    reconnecting(functools.partial(self._session, ready), what="receiver",
                                 client_id=self.client_id),
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

    async def _session(self, ready: asyncio.Event | None, up: Callable[[], None]) -> None:
        """One connection: subscribe, then read until the broker goes away (BrokerError)."""
        async with connect(self.settings()) as client:
            await subscribe(client, self.subscriptions())
            log.debug("receiver.subscribed", client_id=self.client_id, codes=list(self.codes),
                      status=self.status, persistent=self.persistent)
            up()
            if ready is not None:
                ready.set()
            # Receipts go out from their own task: waiting for each receipt's PUBACK in the
            # read loop held the next alert back (~40 ms, Nagle + delayed ACK).
            receipts: asyncio.Queue[Receipt] = asyncio.Queue()
            async with asyncio.TaskGroup() as group, \
                    contextlib.aclosing(received(client)) as messages:
                group.create_task(self._send_receipts(client, receipts),
                                  name=f"receipts:{self.client_id}")
                async for message in messages:
                    await self._handle(message.topic, message.payload, receipts,
                                       message.user_properties)

    async def _send_receipts(self, client: aiomqtt.Client,
                             receipts: asyncio.Queue[Receipt]) -> None:
        while True:
            receipt = await receipts.get()
            await publish(client, Publication(topic=self.tree.receipts(self.client_id),
                                              payload=receipt.model_dump_json().encode(),
                                              qos=1, content_type="application/json"),
                          protocol=self.protocol)

    async def _handle(self, topic: str, payload: bytes, receipts: asyncio.Queue[Receipt],
                      properties: UserProperties = ()) -> None:
        received_at = self._now()
        verified = await self._verified(topic, payload, properties)
        if verified is None:
            return
        payload = verified
        if topic.startswith(self._state_prefix):
            await self._handle_state(topic, payload)
        else:
            await self._handle_alert(topic, payload, received_at, receipts)

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

    async def _handle_state(self, topic: str, payload: bytes) -> None:
        code = topic.removeprefix(self._state_prefix)
        state: PrefectureState | None = None
        if payload:
            state = self._parsed(PrefectureState, payload, topic)
            if state is None:
                return
        self.states[code] = state
        if self.on_state is not None:
            await _call(self.on_state, state, code)

    async def _handle_alert(self, topic: str, payload: bytes, received_at: datetime,
                            receipts: asyncio.Queue[Receipt]) -> None:
        alert = self._parsed(Alert, payload, topic)
        if alert is None:
            return
        duplicate = alert.identifier in self._seen
        self._seen.add(alert.identifier)
        delivery = Delivery(identifier=alert.identifier, prefecture=alert.prefecture,
                            stage=alert.stage, msg_type=alert.msgType,
                            received_at=received_at, duplicate=duplicate, alert=alert)
        self.deliveries.append(delivery)
        log.debug("alert.received", client_id=self.client_id, identifier=alert.identifier,
                 prefecture=alert.prefecture, stage=alert.stage, duplicate=duplicate)
        if not duplicate and self.on_delivery is not None:
            await _call(self.on_delivery, delivery)
        receipts.put_nowait(Receipt(client_id=self.client_id, identifier=alert.identifier,
                                    received_at=received_at, prefecture=alert.prefecture,
                                    stage=alert.stage, duplicate=duplicate))
