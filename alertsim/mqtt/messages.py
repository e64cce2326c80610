"""Messages over a connected client: publish, subscribe, what comes in, acknowledgements.

Every wait (PUBACK, SUBACK) is bounded here with `asyncio.timeout`, aiomqtt being asked to
wait without one (see `client` for why); aiomqtt and socket errors, the timeouts included,
become `alertsim.errors.BrokerError`. MQTT 5 properties go out only under "5" (`protocol`).
A publish the broker refuses in its PUBACK raises `PublishRefused`, and a connection taken
over by another with the same client id `SessionTakenOver` (`alertsim.mqtt.errors`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import aiomqtt

from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.errors import PublishRefused, broker_error, code_of
from alertsim.mqtt.paho_compat import PubackRefused, ack
from alertsim.mqtt.protocol import Protocol, properties_of

__all__ = [
    "Received",
    "acknowledge",
    "incoming",
    "publish",
    "received",
    "subscribe",
]


@dataclass(frozen=True)
class Received:
    """One incoming message: topic, payload, MQTT 5 user properties, mid and QoS (to ack)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    user_properties: tuple[tuple[str, str], ...] = ()
    retain: bool = False  # a retained message sent on subscribe (the receiver was away)


def _bound(client: aiomqtt.Client, timeout_s: float | None) -> float | None:
    """The wait limit in seconds for `asyncio.timeout`: `timeout_s`, else the client's."""
    limit = client.timeout if timeout_s is None else timeout_s
    return None if math.isinf(limit) else limit


async def publish(client: aiomqtt.Client, message: Publication, *,
                  protocol: Protocol = "5", timeout_s: float | None = None) -> None:
    """Publish and, for QoS 1 and 2, wait for the broker's acknowledgement.

    `protocol` must be the one the client connected with: MQTT 5 properties are attached
    only under "5". The wait is bounded by `timeout_s` (default: the client's timeout).
    Errors, including the timeout, become BrokerError; a PUBACK with a failure reason
    code (MQTT 5 only) becomes `PublishRefused`.
    """
    try:
        async with asyncio.timeout(_bound(client, timeout_s)):
            await client.publish(message.topic, message.payload, qos=message.qos,
                                 retain=message.retain,
                                 properties=properties_of(message, protocol), timeout=math.inf)
    except TimeoutError as exc:
        raise BrokerError(f"publish to {message.topic!r}: no acknowledgement in time") from exc
    except PubackRefused as exc:
        code = code_of(exc.rc)
        raise PublishRefused(message.topic, 0x80 if code is None else code,
                             str(exc.rc)) from exc
    except (aiomqtt.MqttError, OSError) as exc:
        raise BrokerError(f"publish to {message.topic!r} failed: {exc}") from exc


async def subscribe(client: aiomqtt.Client, topic: str | Sequence[tuple[str, int]],
                    qos: int = 1, *, timeout_s: float | None = None) -> tuple[int, ...]:
    """Subscribe to `topic` at `qos`, or to several (filter, qos) pairs in one SUBSCRIBE;
    returns the SUBACK's code per filter (the QoS granted; 0x80 and above: refused).

    Waits for the SUBACK, at most `timeout_s` (default: the client's timeout); errors,
    including the timeout, become BrokerError.
    """
    filters: str | list[tuple[str, int]] = topic if isinstance(topic, str) else list(topic)
    try:
        async with asyncio.timeout(_bound(client, timeout_s)):
            granted = await client.subscribe(filters, qos=qos, timeout=math.inf)
    except TimeoutError as exc:
        raise BrokerError(f"subscribe to {filters!r}: no SUBACK in time") from exc
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"subscribe to {filters!r} failed: {exc}") from exc
    codes = (code_of(code) for code in granted)
    return tuple(0x80 if code is None else code for code in codes)


async def incoming(client: aiomqtt.Client) -> AsyncGenerator[tuple[str, bytes], None]:
    """(topic, payload) of every message the client receives; errors become BrokerError."""
    async for message in received(client):
        yield message.topic, message.payload


async def received(client: aiomqtt.Client) -> AsyncGenerator[Received, None]:
    """Every message the client receives (see `Received`); BrokerError when it is lost."""
    try:
        async for message in client.messages:
            payload = message.payload
            raw = bytes(payload) if isinstance(payload, bytes | bytearray) else (
                b"" if payload is None else str(payload).encode())
            found = getattr(message.properties, "UserProperty", None) or []
            yield Received(str(message.topic), raw, message.mid, message.qos,
                           tuple((str(k), str(v)) for k, v in found), bool(message.retain))
    except aiomqtt.MqttError as exc:
        raise broker_error("lost the broker while reading messages", exc) from exc


def acknowledge(client: aiomqtt.Client, message: Received) -> None:
    """Send the PUBACK of a message received with `manual_ack` (nothing for QoS 0)."""
    ack(client, message.mid, message.qos)
