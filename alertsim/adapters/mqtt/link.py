"""The service's broker link: inputs from MQTT into `Service.accept_*`, the outbox out.

Nothing acknowledged is lost: inputs are read with manual acknowledgements, and an input's
PUBACK goes to the broker only once the service has recorded it (and acted on it). A crash
before that leaves the message with the broker, which delivers it again to the persistent
session; the service takes an identical copy as a duplicate. The input session expires
after the service's stale limit, so a broker never replays older inputs than that. On
every (re)connect the service publishes its status and every prefecture's retained state
again (a broker that lost them, or holds a forged one, is set right).

Two connections: `{client_id}` reads inputs (persistent session, so detections sent while
the service is away are kept) and `{client_id}-out` publishes. On one socket the PUBACKs
for a flood of incoming receipts held the next alert back by Nagle's algorithm and the
broker's delayed ACK (~40 ms stalls measured in drills); apart, alerts go out on a socket
that only publishes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from alertsim.adapters.mqtt.client import (
    Client,
    MqttSettings,
    Protocol,
    acknowledge,
    connect,
    publish,
    received,
    subscribe,
)
from alertsim.adapters.mqtt.reconnect import reconnecting
from alertsim.adapters.mqtt.signing import SigningKey, needs_signature, sign_publication
from alertsim.adapters.mqtt.url import parse_broker_url
from alertsim.domain.topics import TopicTree
from alertsim.service.ports import Publication
from alertsim.service.service import Service

__all__ = ["STATUS_OFFLINE", "STATUS_ONLINE", "ClientPublisher", "run_link"]

log = structlog.get_logger("alertsim.link")

STATUS_ONLINE = b'{"status":"online"}'
STATUS_OFFLINE = b'{"status":"offline"}'
MIN_SESSION_EXPIRY_S = 60


@dataclass
class ClientPublisher:
    """The service's `Publisher` port bound to one connected aiomqtt client.

    With a `signer`, every `alert` and `state` message is signed (`signing`): MQTT 5 user
    properties, or the JSON envelope under 3.1.1.
    """

    client: Client
    protocol: Protocol
    signer: SigningKey | None = None

    async def publish(self, message: Publication) -> None:
        if self.signer is not None and needs_signature(message):
            message = sign_publication(message, self.signer, self.protocol)
        await publish(self.client, message, protocol=self.protocol)


async def run_link(service: Service, *, url: str, protocol: Protocol, client_id: str,
                   connected: asyncio.Event | None = None, username: str | None = None,
                   password: str | None = None, ca_file: Path | None = None,
                   signer: SigningKey | None = None) -> None:
    """Connect, subscribe to inputs, pump the outbox; reconnect with jittered backoff.

    `username` / `password` (default: those in `url`) and `ca_file` (TLS) are passed to
    both connections. With `signer`, alerts and states are signed (`ClientPublisher`).

    `connected` is set while a session is up (subscribed, "online" published) and cleared
    when it ends. Runs until cancelled; cancellation leaves no connection open.
    """
    tree = service.config.topics
    will = Publication(tree.service_status, STATUS_OFFLINE, qos=1, retain=True)
    stale_s = int(service.config.limits.stale_after.total_seconds())
    inputs = MqttSettings(url=url, client_id=client_id, protocol=protocol, clean_start=False,
                          session_expiry_s=max(MIN_SESSION_EXPIRY_S, stale_s),
                          manual_ack=True, username=username, password=password,
                          ca_file=ca_file)
    outputs = MqttSettings(url=url, client_id=f"{client_id}-out", protocol=protocol,
                           will=will, username=username, password=password, ca_file=ca_file)

    async def session(up: Callable[[], None]) -> None:
        try:
            await _session(service, inputs, outputs, up, connected, signer=signer)
        finally:
            if connected is not None:
                connected.clear()

    await reconnecting(session, what="service link", url=parse_broker_url(url).redacted(),
                       client_id=client_id)


async def _session(service: Service, inputs: MqttSettings, outputs: MqttSettings,
                   up: Callable[[], None], connected: asyncio.Event | None, *,
                   signer: SigningKey | None = None) -> None:
    """One broker session: until the broker goes away (BrokerError) or cancellation."""
    tree = service.config.topics
    async with connect(outputs) as out_client, connect(inputs) as in_client:
        publisher = ClientPublisher(out_client, outputs.protocol, signer)
        for topic in (tree.detections, tree.operator, tree.receipts_all):
            await subscribe(in_client, topic)
        await service.restate()
        # Online only once subscribed: a client that waits for "online" and then
        # sends a detection must find the service listening.
        await publisher.publish(Publication(tree.service_status, STATUS_ONLINE,
                                            qos=1, retain=True))
        log.info("broker.connected", url=parse_broker_url(outputs.url).redacted(),
                 protocol=outputs.protocol)
        up()
        if connected is not None:
            connected.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(service.pump(publisher), name="outbox-pump")
            group.create_task(_listen(service, in_client), name="input-listener")


async def _listen(service: Service, client: Client) -> None:
    """Hand each input to the service, then acknowledge it: it is recorded by then."""
    tree: TopicTree = service.config.topics
    async for message in received(client):
        if message.topic == tree.detections:
            await service.accept_detection(message.payload, source=message.topic)
        elif message.topic == tree.operator:
            await service.accept_operator(message.payload, source=message.topic)
        elif tree.is_receipt(message.topic):
            await service.accept_receipt(message.payload, source=message.topic)
        acknowledge(client, message)
