"""A thin typed shell over aiomqtt: settings, outgoing messages, connect, publish, backoff.

aiomqtt and socket errors are re-raised as `alertsim.errors.BrokerError` here, so callers
above this module handle one family. MQTT 5 properties (message expiry, content type,
user properties, session expiry) are sent only when the protocol is "5"; a broker that
speaks only 3.1.1 (amqtt, NATS) is detected with `negotiate_protocol`.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alertsim.adapters.mqtt.brokers import parse_broker_url
from alertsim.errors import BrokerError

__all__ = [
    "Client",
    "MqttSettings",
    "OutgoingMessage",
    "Protocol",
    "backoff_delays",
    "connect",
    "incoming",
    "negotiate_protocol",
    "publish",
    "subscribe",
]

Client = aiomqtt.Client

Protocol = Literal["5", "3.1.1"]

_VERSIONS: dict[Protocol, aiomqtt.ProtocolVersion] = {
    "5": aiomqtt.ProtocolVersion.V5,
    "3.1.1": aiomqtt.ProtocolVersion.V311,
}


def _new_properties(packet_type: int) -> Properties:
    # paho's Properties.__init__ has no annotations; this is the one untyped call.
    return Properties(packet_type)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class OutgoingMessage:
    """One PUBLISH: topic, bytes, QoS, retain flag and the MQTT 5 properties to attach."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    expiry_s: int | None = None
    content_type: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()

    def properties(self, protocol: Protocol, packet_type: int = PacketTypes.PUBLISH,
                   ) -> Properties | None:
        """The MQTT 5 properties for this message, or None (always None under 3.1.1)."""
        if protocol != "5":
            return None
        if self.expiry_s is None and self.content_type is None and not self.user_properties:
            return None
        props = _new_properties(packet_type)
        if self.expiry_s is not None:
            props.MessageExpiryInterval = self.expiry_s
        if self.content_type is not None:
            props.ContentType = self.content_type
        if self.user_properties:
            props.UserProperty = list(self.user_properties)
        return props


@dataclass(frozen=True)
class MqttSettings:
    """How to connect: broker URL, client id, protocol, session and last will.

    With `clean_start=False` the broker keeps the session (subscriptions and queued QoS 1
    messages) across disconnects; under MQTT 5 it keeps it for `session_expiry_s`.
    """

    url: str
    client_id: str
    protocol: Protocol = "5"
    clean_start: bool = True
    keepalive: int = 30
    will: OutgoingMessage | None = None
    session_expiry_s: int = 3600
    timeout_s: float = 10.0


def _client(settings: MqttSettings) -> aiomqtt.Client:
    host, port = parse_broker_url(settings.url)
    will = None
    if settings.will is not None:
        w = settings.will
        will = aiomqtt.Will(w.topic, w.payload, w.qos, w.retain,
                            w.properties(settings.protocol, PacketTypes.WILLMESSAGE))
    if settings.protocol == "5":
        connect_props = None
        if not settings.clean_start:
            connect_props = _new_properties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = settings.session_expiry_s
        return aiomqtt.Client(
            host, port, identifier=settings.client_id, protocol=_VERSIONS["5"], will=will,
            clean_start=settings.clean_start, properties=connect_props,
            keepalive=settings.keepalive, timeout=settings.timeout_s,
        )
    return aiomqtt.Client(
        host, port, identifier=settings.client_id, protocol=_VERSIONS["3.1.1"], will=will,
        clean_session=settings.clean_start, keepalive=settings.keepalive,
        timeout=settings.timeout_s,
    )


@contextlib.asynccontextmanager
async def _connected(settings: MqttSettings) -> AsyncIterator[aiomqtt.Client]:
    client = _client(settings)
    try:
        async with client:
            yield client
    except aiomqtt.MqttError as exc:
        # Covers CONNECT (aiomqtt wraps socket errors), DISCONNECT and aiomqtt calls made
        # inside the block (subscribe, message iteration), so callers never see aiomqtt's
        # errors. OSError is not caught: inside the block it may be the caller's own.
        raise BrokerError(f"MQTT broker {settings.url} ({settings.client_id}): {exc}") from exc


def connect(settings: MqttSettings) -> AbstractAsyncContextManager[aiomqtt.Client]:
    """Connect on entry, disconnect on exit; aiomqtt and socket errors become BrokerError."""
    return _connected(settings)


async def publish(client: aiomqtt.Client, message: OutgoingMessage, *,
                  protocol: Protocol = "5", timeout_s: float | None = None) -> None:
    """Publish and, for QoS 1 and 2, wait for the broker's acknowledgement.

    `protocol` must be the one the client connected with: MQTT 5 properties are attached
    only under "5". Errors become BrokerError.
    """
    try:
        await client.publish(message.topic, message.payload, qos=message.qos,
                             retain=message.retain, properties=message.properties(protocol),
                             timeout=timeout_s)
    except (aiomqtt.MqttError, OSError) as exc:
        raise BrokerError(f"publish to {message.topic!r} failed: {exc}") from exc


async def subscribe(client: aiomqtt.Client, topic: str, qos: int = 1) -> None:
    try:
        await client.subscribe(topic, qos=qos)
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"subscribe to {topic!r} failed: {exc}") from exc


async def incoming(client: aiomqtt.Client) -> AsyncIterator[tuple[str, bytes]]:
    """(topic, payload) of every message the client receives; errors become BrokerError."""
    try:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                raw = bytes(payload)
            else:
                raw = b"" if payload is None else str(payload).encode()
            yield str(message.topic), raw
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"lost the broker while reading messages: {exc}") from exc


async def negotiate_protocol(url: str, *, timeout_s: float = 5.0) -> Protocol:
    """"5" if the broker accepts an MQTT 5 CONNECT, else "3.1.1" if it accepts that.

    Raises BrokerError when neither works (broker down, refused, timed out).
    """
    errors: list[str] = []
    for protocol in ("5", "3.1.1"):
        probe = MqttSettings(url=url, client_id=f"alertsim-probe-{uuid.uuid4().hex[:12]}",
                             protocol=protocol, timeout_s=timeout_s)
        try:
            async with _client(probe):
                return protocol
        except (aiomqtt.MqttError, OSError) as exc:
            errors.append(f"MQTT {protocol}: {exc}")
    raise BrokerError(f"MQTT broker {url} refused both protocols: " + "; ".join(errors))


def backoff_delays(*, rng: random.Random, initial: float = 0.2, maximum: float = 10.0,
                   factor: float = 2.0) -> Iterator[float]:
    """Endless "full jitter" backoff: attempt n sleeps uniform(0, min(maximum, initial*factor**n)).

    Pure apart from `rng`; pass a seeded `random.Random` in tests.
    """
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("need 0 < initial <= maximum and factor >= 1")
    ceiling = initial
    while True:
        yield rng.uniform(0.0, ceiling)
        ceiling = min(maximum, ceiling * factor)
