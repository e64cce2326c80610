"""A thin typed shell over aiomqtt: settings, outgoing messages, connect, publish, subscribe.

aiomqtt and socket errors are re-raised as `alertsim.errors.BrokerError` here, so callers
above this module handle one family. MQTT 5 properties (message expiry, content type,
user properties, session expiry) are sent only when the protocol is "5"; a broker that
speaks only 3.1.1 (amqtt, NATS) is detected with `negotiate_protocol`.

Cancellation is safe everywhere here. aiomqtt waits for CONNACK, SUBACK, PUBACK and its own
DISCONNECT with `asyncio.wait_for`, which in Python 3.11 returns the result, and drops the
CancelledError, when the awaited future completes in the same loop iteration as the cancel
(receivers stopped just as a restarted broker answered never returned). So this module
asks aiomqtt to wait without a timeout (a plain `await`, which never loses a cancellation)
and bounds every wait itself with `asyncio.timeout`; the connection handshake runs in a task
of its own that is never cancelled, and a connection whose caller went away is closed.

What aiomqtt offers no public call for (the two races it leaves open, manual
acknowledgements, closing a socket at once) is done in `paho_compat`, and only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.paho_compat import PatchedClient, ack, enable_manual_ack, force_close
from alertsim.mqtt.reconnect import reconnecting
from alertsim.mqtt.url import client_auth, parse_broker_url
from alertsim.mqtt.url import redacted as _redacted

log = structlog.get_logger("alertsim.mqtt")

__all__ = [
    "DISCONNECT_TIMEOUT_S",
    "Client",
    "MqttSettings",
    "Protocol",
    "Received",
    "acknowledge",
    "connect",
    "incoming",
    "negotiate_protocol",
    "properties_of",
    "publish",
    "received",
    "subscribe",
    "wait_for_protocol",
]

Client = aiomqtt.Client

Protocol = Literal["5", "3.1.1"]

# How long leaving `connect()` waits for the DISCONNECT to go out before closing the socket.
DISCONNECT_TIMEOUT_S = 1.0

_VERSIONS: dict[Protocol, aiomqtt.ProtocolVersion] = {
    "5": aiomqtt.ProtocolVersion.V5,
    "3.1.1": aiomqtt.ProtocolVersion.V311,
}


def _new_properties(packet_type: int) -> Properties:
    # paho's Properties.__init__ has no annotations; this is the one untyped call.
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def properties_of(message: Publication, protocol: Protocol,
                  packet_type: int = PacketTypes.PUBLISH) -> Properties | None:
    """The MQTT 5 properties for `message`, or None (always None under 3.1.1)."""
    if protocol != "5":
        return None
    if message.expiry_s is None and message.content_type is None \
            and not message.user_properties:
        return None
    props = _new_properties(packet_type)
    if message.expiry_s is not None:
        props.MessageExpiryInterval = message.expiry_s
    if message.content_type is not None:
        props.ContentType = message.content_type
    if message.user_properties:
        props.UserProperty = list(message.user_properties)
    return props


@dataclass(frozen=True)
class MqttSettings:
    """How to connect: broker URL, client id, protocol, session and last will.

    With `clean_start=False` the broker keeps the session (subscriptions and queued QoS 1
    messages) across disconnects; under MQTT 5 it keeps it for `session_expiry_s`.
    `timeout_s` bounds the handshake and is the default bound of `publish` and `subscribe`.
    `username` / `password` default to those in the URL; TLS is used for `mqtts://` or when
    `ca_file` is set (that CA, else the system's; the host name is always checked).
    `repr()` never shows the password, in the field or in the URL.
    """

    url: str
    client_id: str
    protocol: Protocol = "5"
    clean_start: bool = True
    keepalive: int = 30
    will: Publication | None = None
    session_expiry_s: int = 3600
    timeout_s: float = 10.0
    # The application acknowledges each QoS 1 message (`acknowledge`) once it has kept it;
    # until then a broker redelivers it to the session after a crash.
    manual_ack: bool = False
    # QoS 1/2 publishes in flight at once (paho's default: 20); more wait in paho's queue,
    # in order.
    max_inflight_messages: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["url"] = _redacted(self.url)
        return f"MqttSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


@dataclass(frozen=True)
class Received:
    """One incoming message: topic, payload, MQTT 5 user properties, mid and QoS (to ack)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    user_properties: tuple[tuple[str, str], ...] = ()
    retain: bool = False  # a retained message sent on subscribe (the receiver was away)


def _client(settings: MqttSettings) -> aiomqtt.Client:
    client = _new_client(settings)
    if settings.manual_ack:
        enable_manual_ack(client)
    if settings.max_inflight_messages is not None:
        # aiomqtt warns when more calls than this wait; a wider window is meant.
        client.pending_calls_threshold = max(client.pending_calls_threshold,
                                             2 * settings.max_inflight_messages)
    return client


def _new_client(settings: MqttSettings) -> aiomqtt.Client:
    url = parse_broker_url(settings.url)
    host, port = url.host, url.port
    auth = client_auth(url, settings.username, settings.password, settings.ca_file)
    will = None
    if settings.will is not None:
        w = settings.will
        will = aiomqtt.Will(w.topic, w.payload, w.qos, w.retain,
                            properties_of(w, settings.protocol, PacketTypes.WILLMESSAGE))
    if settings.protocol == "5":
        connect_props = None
        if not settings.clean_start:
            connect_props = _new_properties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = settings.session_expiry_s
        return PatchedClient(
            host, port, identifier=settings.client_id, protocol=_VERSIONS["5"], will=will,
            clean_start=settings.clean_start, properties=connect_props,
            keepalive=settings.keepalive, timeout=settings.timeout_s,
            max_inflight_messages=settings.max_inflight_messages, **auth,
        )
    return PatchedClient(
        host, port, identifier=settings.client_id, protocol=_VERSIONS["3.1.1"], will=will,
        clean_session=settings.clean_start, keepalive=settings.keepalive,
        timeout=settings.timeout_s, max_inflight_messages=settings.max_inflight_messages,
        **auth,
    )


def _discard(client: aiomqtt.Client, handshake: asyncio.Task[aiomqtt.Client]) -> None:
    """Close a connection whose caller stopped waiting for the handshake."""
    if not handshake.cancelled():
        handshake.exception()  # retrieved: nobody else will look at it
    force_close(client)


async def _open(client: aiomqtt.Client, settings: MqttSettings) -> None:
    """CONNECT and wait for the CONNACK, at most `settings.timeout_s`; BrokerError if not.

    aiomqtt connects in a worker thread that cannot be stopped, then waits for the CONNACK
    (bounded by `timeout_s` too). The handshake therefore runs in a task that is never
    cancelled: a caller that is cancelled or gives up returns at once, and the connection
    is closed as soon as the handshake is over.
    """
    handshake = asyncio.create_task(client.__aenter__(),
                                    name=f"mqtt-connect:{settings.client_id}")
    try:
        async with asyncio.timeout(settings.timeout_s):
            await asyncio.shield(handshake)
    except BaseException as exc:
        handshake.add_done_callback(functools.partial(_discard, client))
        where = f"MQTT broker {_redacted(settings.url)} ({settings.client_id})"
        if isinstance(exc, aiomqtt.MqttError):
            raise BrokerError(f"{where}: {exc}") from exc
        if isinstance(exc, TimeoutError):
            raise BrokerError(f"{where}: no CONNACK within {settings.timeout_s} s") from exc
        raise


async def _close(client: aiomqtt.Client) -> None:
    """Send DISCONNECT, waiting at most DISCONNECT_TIMEOUT_S, then close the socket anyway.

    A failed or slow DISCONNECT (the broker has just gone) is logged, never raised: it must
    not replace the exception, or the cancellation, that ends the block.
    """
    client.timeout = math.inf  # aiomqtt then awaits plainly; the bound below is ours
    try:
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await client.__aexit__(None, None, None)
    except (aiomqtt.MqttError, TimeoutError) as exc:
        log.debug("broker.disconnect_forced", client_id=client.identifier,
                  error=str(exc) or type(exc).__name__)
    finally:
        force_close(client)


@contextlib.asynccontextmanager
async def _connected(settings: MqttSettings) -> AsyncIterator[aiomqtt.Client]:
    client = _client(settings)
    await _open(client, settings)
    try:
        yield client
    except aiomqtt.MqttError as exc:
        # aiomqtt calls made inside the block (subscribe, message iteration) fail with
        # aiomqtt's errors; callers never see them. OSError is not caught: inside the
        # block it may be the caller's own.
        raise BrokerError(f"MQTT broker {_redacted(settings.url)} "
                          f"({settings.client_id}): {exc}") from exc
    finally:
        await _close(client)


def connect(settings: MqttSettings) -> AbstractAsyncContextManager[aiomqtt.Client]:
    """Connect on entry, disconnect on exit; aiomqtt and socket errors become BrokerError.

    Cancellation at any point (handshake, inside the block, disconnect) propagates at once
    and leaves no connection open.
    """
    return _connected(settings)


def _bound(client: aiomqtt.Client, timeout_s: float | None) -> float | None:
    """The wait limit in seconds for `asyncio.timeout`: `timeout_s`, else the client's."""
    limit = client.timeout if timeout_s is None else timeout_s
    return None if math.isinf(limit) else limit


async def publish(client: aiomqtt.Client, message: Publication, *,
                  protocol: Protocol = "5", timeout_s: float | None = None) -> None:
    """Publish and, for QoS 1 and 2, wait for the broker's acknowledgement.

    `protocol` must be the one the client connected with: MQTT 5 properties are attached
    only under "5". The wait is bounded by `timeout_s` (default: the client's timeout).
    Errors, including the timeout, become BrokerError.
    """
    try:
        async with asyncio.timeout(_bound(client, timeout_s)):
            await client.publish(message.topic, message.payload, qos=message.qos,
                                 retain=message.retain,
                                 properties=properties_of(message, protocol), timeout=math.inf)
    except TimeoutError as exc:
        raise BrokerError(f"publish to {message.topic!r}: no acknowledgement in time") from exc
    except (aiomqtt.MqttError, OSError) as exc:
        raise BrokerError(f"publish to {message.topic!r} failed: {exc}") from exc


async def subscribe(client: aiomqtt.Client, topic: str | Sequence[tuple[str, int]],
                    qos: int = 1, *, timeout_s: float | None = None) -> None:
    """Subscribe to `topic` at `qos`, or to several (filter, qos) pairs in one SUBSCRIBE.

    Waits for the SUBACK, at most `timeout_s` (default: the client's timeout); errors,
    including the timeout, become BrokerError.
    """
    filters: str | list[tuple[str, int]] = topic if isinstance(topic, str) else list(topic)
    try:
        async with asyncio.timeout(_bound(client, timeout_s)):
            await client.subscribe(filters, qos=qos, timeout=math.inf)
    except TimeoutError as exc:
        raise BrokerError(f"subscribe to {filters!r}: no SUBACK in time") from exc
    except aiomqtt.MqttError as exc:
        raise BrokerError(f"subscribe to {filters!r} failed: {exc}") from exc


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
        raise BrokerError(f"lost the broker while reading messages: {exc}") from exc


def acknowledge(client: aiomqtt.Client, message: Received) -> None:
    """Send the PUBACK of a message received with `manual_ack` (nothing for QoS 0)."""
    ack(client, message.mid, message.qos)


async def negotiate_protocol(url: str, *, timeout_s: float = 5.0, username: str | None = None,
                             password: str | None = None,
                             ca_file: Path | None = None) -> Protocol:
    """"5" if the broker accepts an MQTT 5 CONNECT, else "3.1.1" if it accepts that.

    Raises BrokerError when neither works (broker down, refused, timed out).
    """
    errors: list[str] = []
    for protocol in ("5", "3.1.1"):
        probe = MqttSettings(url=url, client_id=f"alertsim-probe-{uuid.uuid4().hex[:12]}",
                             protocol=protocol, timeout_s=timeout_s, username=username,
                             password=password, ca_file=ca_file)
        try:
            async with connect(probe):
                return protocol
        except BrokerError as exc:
            errors.append(f"MQTT {protocol}: {exc}")
    raise BrokerError(f"MQTT broker {_redacted(url)} refused both protocols: "
                      + "; ".join(errors))


async def wait_for_protocol(url: str, wanted: str, *, username: str | None = None,
                            password: str | None = None,
                            ca_file: Path | None = None) -> Protocol:
    """The protocol to use; with "auto", ask the broker, waiting for it if it is away."""
    if wanted in ("5", "3.1.1"):
        return "5" if wanted == "5" else "3.1.1"

    async def attempt(up: Callable[[], None]) -> Protocol:
        return await negotiate_protocol(url, username=username, password=password,
                                        ca_file=ca_file)

    return await reconnecting(attempt, what="protocol negotiation", maximum=5.0,
                              url=_redacted(url))
