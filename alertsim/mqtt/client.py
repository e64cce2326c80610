"""The connection: settings, the client factory, and `connect`, a thin typed shell over aiomqtt.

aiomqtt and socket errors are re-raised as `alertsim.errors.BrokerError` here and in
`messages`, so callers above the transport handle one family. Session expiry and the will's
properties are sent only under MQTT 5 (`protocol`).

Cancellation is safe everywhere in the transport. aiomqtt waits for CONNACK, SUBACK, PUBACK
and its own DISCONNECT with `asyncio.wait_for`, which in Python 3.11 returns the result, and
drops the CancelledError, when the awaited future completes in the same loop iteration as
the cancel (receivers stopped just as a restarted broker answered never returned). So
alertsim asks aiomqtt to wait without a timeout (a plain `await`, which never loses a
cancellation) and bounds every wait itself with `asyncio.timeout`; the connection
handshake runs in a task of its own that is never cancelled, and a connection whose caller
went away is closed.

What aiomqtt offers no public call for (the two races it leaves open, manual
acknowledgements, closing a socket at once) is done in `paho_compat`, and only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes

from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.errors import broker_error
from alertsim.mqtt.paho_compat import PatchedClient, enable_manual_ack, force_close
from alertsim.mqtt.protocol import VERSIONS, Protocol, new_properties, properties_of
from alertsim.mqtt.url import client_auth, parse_broker_url
from alertsim.mqtt.url import redacted as _redacted

log = structlog.get_logger("alertsim.mqtt")

__all__ = [
    "DISCONNECT_TIMEOUT_S",
    "Client",
    "MqttSettings",
    "connect",
]

Client = aiomqtt.Client

# How long leaving `connect()` waits for the DISCONNECT to go out before closing the socket.
DISCONNECT_TIMEOUT_S = 1.0


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
            connect_props = new_properties(PacketTypes.CONNECT)
            connect_props.SessionExpiryInterval = settings.session_expiry_s
        return PatchedClient(
            host, port, identifier=settings.client_id, protocol=VERSIONS["5"], will=will,
            clean_start=settings.clean_start, properties=connect_props,
            keepalive=settings.keepalive, timeout=settings.timeout_s,
            max_inflight_messages=settings.max_inflight_messages, **auth,
        )
    return PatchedClient(
        host, port, identifier=settings.client_id, protocol=VERSIONS["3.1.1"], will=will,
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
        raise broker_error(f"MQTT broker {_redacted(settings.url)} "
                           f"({settings.client_id})", exc) from exc
    finally:
        await _close(client)


def connect(settings: MqttSettings) -> AbstractAsyncContextManager[aiomqtt.Client]:
    """Connect on entry, disconnect on exit; aiomqtt and socket errors become BrokerError.

    Cancellation at any point (handshake, inside the block, disconnect) propagates at once
    and leaves no connection open.
    """
    return _connected(settings)

