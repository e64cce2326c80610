"""A receiver: what a phone or a municipal loudspeaker does with alertsim's topics.

`Receiver` subscribes (QoS 1) to the alert topics of its prefectures (and the national
topic), reads the retained state topic on connect, de-duplicates alerts by identifier,
acknowledges every delivery with a `Receipt` on its receipts topic, and reconnects with
jittered backoff when the broker goes away. `run_subscriber` is the `alertsim subscribe`
command: it prints the retained state and each new alert for a person to read.

De-duplication matters because the service's outbox re-publishes after a restart:
a repeated identifier is recorded (and acknowledged) but not shown twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import random
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TextIO, TypeVar

import aiomqtt
from pydantic import BaseModel, ValidationError

from alertsim.adapters.mqtt import topics
from alertsim.adapters.mqtt.client import (
    MqttSettings,
    OutgoingMessage,
    Protocol,
    backoff_delays,
    connect,
    negotiate_protocol,
    publish,
)
from alertsim.domain.messages import Alert, PrefectureState, Receipt
from alertsim.domain.model import JST
from alertsim.errors import BrokerError, InputError, describe_validation_error
from alertsim.logs import get_logger

__all__ = [
    "Delivery",
    "OnDelivery",
    "OnState",
    "Receiver",
    "default_client_id",
    "render_alert",
    "render_state",
    "run_subscriber",
]

log = get_logger(__name__)

OnDelivery = Callable[["Delivery"], Awaitable[None] | None]
OnState = Callable[[PrefectureState | None, str], Awaitable[None] | None]

_CODE = re.compile(r"^(0[1-9]|[1-3][0-9]|4[0-7])$")
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


def _payload_bytes(payload: object) -> bytes | None:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    if payload is None:
        return b""
    return None


class Receiver:
    """Subscribe to some prefectures' alerts and state; de-duplicate, acknowledge, reconnect.

    `run()` loops until `stop()` or cancellation. `deliveries` keeps every delivery,
    duplicates included; `on_delivery` sees only new ones; `on_state` sees each retained
    state (None when the state topic was cleared) with its prefecture code.
    `now` is the clock `received_at` is read from (aware UTC).
    """

    def __init__(self, *, url: str, protocol: Protocol, client_id: str, codes: Sequence[str],
                 status: topics.TopicStatus = "exercise", national: bool = True,
                 persistent: bool = True, on_delivery: OnDelivery | None = None,
                 on_state: OnState | None = None,
                 now: Callable[[], datetime] = _utc_now) -> None:
        problems = [f"codes: {code!r} is not a JIS X 0401 prefecture code (01..47)"
                    for code in codes if not _CODE.match(code)]
        if not _CLIENT_ID.match(client_id):
            problems.append(f"client_id: 1 to 64 of A-Z a-z 0-9 . _ - (got {client_id!r})")
        if status not in ("exercise", "test"):
            problems.append(f"status: exercise or test (got {status!r})")
        if problems:
            raise InputError(source="receiver", problems=problems)
        self.url = url
        self.protocol: Protocol = protocol
        self.client_id = client_id
        self.codes = tuple(dict.fromkeys(codes))
        self.status: topics.TopicStatus = status
        self.national = national
        self.persistent = persistent
        self.on_delivery = on_delivery
        self.on_state = on_state
        self.deliveries: list[Delivery] = []
        self.states: dict[str, PrefectureState | None] = {}
        self._now = now
        self._seen: set[str] = set()
        self._stopping = asyncio.Event()
        self._state_prefix = topics.state(status, "")

    def settings(self) -> MqttSettings:
        """The connection: a persistent session (fixed id, no clean start) when asked."""
        return MqttSettings(url=self.url, client_id=self.client_id, protocol=self.protocol,
                            clean_start=not self.persistent,
                            session_expiry_s=SESSION_EXPIRY_S)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Topic filters with QoS 1: alerts per prefecture, national, state per prefecture."""
        filters = [topics.alerts(self.status, code) for code in self.codes]
        if self.national:
            filters.append(topics.alerts(self.status, None))
        filters += [topics.state(self.status, code) for code in self.codes]
        return [(topic, 1) for topic in filters]

    def stop(self) -> None:
        """Ask `run()` to disconnect and return."""
        self._stopping.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Connect, subscribe, set `ready` after the SUBACK, handle messages until stopped."""
        try:
            async with asyncio.TaskGroup() as group:
                session = group.create_task(self._sessions(ready),
                                            name=f"receiver:{self.client_id}")
                await self._stopping.wait()
                session.cancel()
        except BaseExceptionGroup as group_error:
            # One child task: hand its error on as itself, not wrapped in a group.
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        finally:
            self._stopping.clear()  # a stop() before run() began is honoured; run() again works

    async def _sessions(self, ready: asyncio.Event | None) -> None:
        """One reconnect loop: a session until the broker goes away, then backoff, again."""
        delays = backoff_delays(rng=random.Random())
        while True:
            try:
                async with connect(self.settings()) as client:
                    await self._subscribe(client)
                    delays = backoff_delays(rng=random.Random())
                    if ready is not None:
                        ready.set()
                    # Receipts go out from their own task: waiting for each receipt's PUBACK
                    # in the read loop held the next alert back (~40 ms, Nagle + delayed ACK).
                    receipts: asyncio.Queue[Receipt] = asyncio.Queue()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._send_receipts(client, receipts),
                                          name=f"receipts:{self.client_id}")
                        await self._read(client, receipts)
            except* BrokerError as errors:
                delay = next(delays)
                log.warning("receiver.disconnected", client_id=self.client_id,
                            error=str(errors.exceptions[0]), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        try:
            await client.subscribe(self.subscriptions())
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"subscribe failed for {self.client_id}: {exc}") from exc
        log.debug("receiver.subscribed", client_id=self.client_id, codes=list(self.codes),
                 status=self.status, persistent=self.persistent)

    async def _read(self, client: aiomqtt.Client, receipts: asyncio.Queue[Receipt]) -> None:
        try:
            async for message in client.messages:
                await self._handle(message, receipts)
        except aiomqtt.MqttError as exc:
            raise BrokerError(f"{self.client_id} lost the broker while reading: {exc}") from exc

    async def _send_receipts(self, client: aiomqtt.Client,
                             receipts: asyncio.Queue[Receipt]) -> None:
        while True:
            receipt = await receipts.get()
            await publish(client, OutgoingMessage(topic=topics.receipts(self.client_id),
                                                  payload=receipt.model_dump_json().encode(),
                                                  qos=1, content_type="application/json"),
                          protocol=self.protocol)

    async def _handle(self, message: aiomqtt.Message, receipts: asyncio.Queue[Receipt]) -> None:
        received_at = self._now()
        topic = message.topic.value
        payload = _payload_bytes(message.payload)
        if payload is None:
            log.warning("receiver.rejected", client_id=self.client_id, topic=topic,
                        problems=["payload: not bytes"])
            return
        if topic.startswith(self._state_prefix):
            await self._handle_state(topic, payload)
        else:
            await self._handle_alert(topic, payload, received_at, receipts)

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


_BANNERS = {
    "Exercise": "*** EXERCISE — 訓練 / not a real alert ***",
    "Test": "*** TEST — 試験 / not a real alert ***",
}
_LABELS = {
    "ja": {"area": "対象地域", "sent": "発表時刻"},
    "en": {"area": "Area", "sent": "Sent"},
}


def render_alert(alert: Alert, lang: Literal["ja", "en"]) -> str:
    """The alert as a person reads it: banner, texts in `lang`, area, JST time, footer."""
    language = "ja-JP" if lang == "ja" else "en-US"
    info = next((i for i in alert.info if i.language == language), alert.info[0])
    labels = _LABELS[lang]
    areas = ("、" if lang == "ja" else ", ").join(a.areaDesc for a in info.area)
    banner = _BANNERS[alert.status]
    return "\n".join([
        banner,
        info.headline,
        info.description,
        info.instruction,
        f"{labels['area']}: {areas}",
        f"{labels['sent']}: {alert.sent.astimezone(JST):%H:%M:%S} JST",
        f"-- {alert.msgType} {alert.identifier}",
    ])


def render_state(state: PrefectureState | None, code: str) -> str:
    """One prefecture's retained state: its open events, or "no active alert"."""
    if state is None or not state.events:
        return f"[{code}] no active alert"
    mode = "SHELTERING" if state.sheltering else "no shelter call"
    lines = [f"[{code}] {state.status.upper()} state: {mode} "
             f"(updated {state.updated.astimezone(JST):%H:%M:%S} JST)"]
    lines += [f"  event {e.event_id}: {e.stage} ({e.identifier})" for e in state.events]
    return "\n".join(lines)


def default_client_id(codes: Sequence[str]) -> str:
    """`alertsim-sub-47-01`; a long list is shortened with a hash to fit 64 characters."""
    joined = "-".join(dict.fromkeys(codes))
    client_id = f"alertsim-sub-{joined}"
    if len(client_id) <= 64:
        return client_id
    digest = hashlib.sha256(joined.encode()).hexdigest()[:10]
    return f"{client_id[:50]}-{digest}"


async def run_subscriber(*, url: str, codes: Sequence[str], lang: Literal["ja", "en"],
                         status: topics.TopicStatus, client_id: str,
                         protocol: Protocol | Literal["auto"] = "auto",
                         out: TextIO | None = None) -> None:
    """Print the retained state of `codes`, then every new alert, until cancelled."""
    stream = out or sys.stdout

    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    def show_state(state: PrefectureState | None, code: str) -> None:
        write(render_state(state, code))

    def show_alert(delivery: Delivery) -> None:
        write("\n" + render_alert(delivery.alert, lang) + "\n")

    chosen: Protocol = await negotiate_protocol(url) if protocol == "auto" else protocol
    receiver = Receiver(url=url, protocol=chosen, client_id=client_id, codes=codes,
                        status=status, national=True, persistent=True,
                        on_delivery=show_alert, on_state=show_state)
    write(f"alertsim subscriber {client_id}: {status} alerts for {', '.join(receiver.codes)} "
          f"and national, from {url} (MQTT {chosen}); Ctrl-C to stop")
    await receiver.run()
