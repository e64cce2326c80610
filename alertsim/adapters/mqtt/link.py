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

A publish the broker refuses (MQTT 5 PUBACK reason code >= 0x80) is counted (`on_refused`,
the `alertsim_publish_refused_total` metric) and raised as `pump.Refused`: the pump keeps
the row and tries it again (`service.pump`). The input connection also answers pings on
the service's presence topics, so a second `serve` with the same client id learns that
this one is alive and refuses to start (`presence`); a connection taken over all the same
(MQTT 5 DISCONNECT 0x8E) is logged as an error naming the client id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from alertsim.adapters.mqtt.presence import Presence, pong_of
from alertsim.domain.cap import CapRenderer
from alertsim.domain.notices import ServiceStatus
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.errors import PublishRefused, SessionTakenOver
from alertsim.mqtt.messages import Received, acknowledge, publish, received, subscribe
from alertsim.mqtt.protocol import Protocol
from alertsim.mqtt.reconnect import reconnecting
from alertsim.mqtt.url import parse_broker_url
from alertsim.service.outgoing import CapPublisher
from alertsim.service.ports import Publisher
from alertsim.service.pump import Refused
from alertsim.service.service import Service
from alertsim.signing import SigningKey, needs_signature, sign_publication

__all__ = ["STATUS_OFFLINE", "STATUS_ONLINE", "ClientPublisher", "in_flight", "run_link"]

log = structlog.get_logger("alertsim.link")

STATUS_ONLINE = ServiceStatus(status="online").model_dump_json().encode()
STATUS_OFFLINE = ServiceStatus(status="offline").model_dump_json().encode()
MIN_SESSION_EXPIRY_S = 60
INPUT_BATCH = 500  # inputs handled before their acknowledgements go out
Answer = Callable[[bytes], Awaitable[None]]


@dataclass
class ClientPublisher:
    """The service's `Publisher` port bound to one connected aiomqtt client.

    With a `signer`, every `alert` and `state` message is signed (`signing`): MQTT 5 user
    properties, or the JSON envelope under 3.1.1. A refused publish is counted with
    `on_refused(reason)` and raised as `pump.Refused`.
    """

    client: Client
    protocol: Protocol
    signer: SigningKey | None = None
    on_refused: Callable[[str], None] | None = None

    async def publish(self, message: Publication) -> None:
        if self.signer is not None and needs_signature(message):
            message = sign_publication(message, self.signer, self.protocol)
        try:
            await publish(self.client, message, protocol=self.protocol)
        except PublishRefused as exc:
            if self.on_refused is not None:
                self.on_refused(exc.reason)
            raise Refused(str(exc), reason_code=exc.reason_code, reason=exc.reason) from exc


async def run_link(service: Service, *, url: str, protocol: Protocol, client_id: str,
                   connected: asyncio.Event | None = None, username: str | None = None,
                   password: str | None = None, ca_file: Path | None = None,
                   signer: SigningKey | None = None, cap: bool = False,
                   on_refused: Callable[[str], None] | None = None) -> None:
    """Connect, subscribe to inputs, pump the outbox; reconnect with jittered backoff.

    `username` / `password` (default: those in `url`) and `ca_file` (TLS) are passed to
    both connections. With `signer`, alerts and states are signed (`ClientPublisher`). With
    `cap`, every alert is followed by its CAP 1.2 XML on the cap topic (`CapPublisher`).
    `on_refused(reason)` is called for each publish the broker refuses (a metric).

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
                           will=will, username=username, password=password, ca_file=ca_file,
                           max_inflight_messages=in_flight(service.config.publish_window))

    publisher = _Publishing(signer, cap, on_refused)

    async def session(up: Callable[[], None]) -> None:
        try:
            await _session(service, inputs, outputs, up, connected, publisher)
        except* SessionTakenOver:
            _taken_over(client_id)
            raise
        finally:
            if connected is not None:
                connected.clear()

    await reconnecting(session, what="service link", url=parse_broker_url(url).redacted(),
                       client_id=client_id)


def _taken_over(client_id: str) -> None:
    """Another process connected with this client id: say so loudly, then carry on (a
    second `serve` is refused at start, `presence`; a client that is not one is not)."""
    log.error("service.taken_over", client_id=client_id,
              hint="another client connected with this client id; give each service its "
                   "own (--client-id or ALERTSIM_CLIENT_ID)")


@dataclass(frozen=True)
class _Publishing:
    """How the link's `ClientPublisher` publishes (see `run_link`)."""

    signer: SigningKey | None
    cap: bool
    on_refused: Callable[[str], None] | None


async def _session(service: Service, inputs: MqttSettings, outputs: MqttSettings,
                   up: Callable[[], None], connected: asyncio.Event | None,
                   how: _Publishing) -> None:
    """One broker session: until the broker goes away (BrokerError) or cancellation."""
    tree = service.config.topics
    presence = Presence.of(tree, inputs.client_id)
    async with connect(outputs) as out_client, connect(inputs) as in_client:
        publisher = ClientPublisher(out_client, outputs.protocol, how.signer, how.on_refused)
        for topic in (tree.detections, tree.operator, tree.receipts_all):
            await subscribe(in_client, topic)
        await subscribe(in_client, presence.ping, qos=0)  # never queued while away
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
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(service.pump(_outgoing(publisher, service, cap=how.cap)),
                                  name="outbox-pump")
                inputs_queue: asyncio.Queue[Received] = asyncio.Queue()
                group.create_task(_read(in_client, inputs_queue, presence.ping,
                                        pong_of(out_client, presence)), name="input-reader")
                group.create_task(_listen(service, in_client, inputs_queue),
                                  name="input-listener")
        except asyncio.CancelledError:
            await _say_offline(publisher, tree)
            raise


async def _say_offline(publisher: Publisher, tree: TopicTree) -> None:
    """A clean stop (cancellation): the retained status says offline, as the will says it
    after a crash, so `detect`, `cancel` and late joiners never wait on a service that is
    gone. At most 2 s; a broker already gone is no reason to hang the stop."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await publisher.publish(Publication(tree.service_status, STATUS_OFFLINE, qos=1,
                                                retain=True))


def in_flight(window: int) -> int:
    """How many QoS 1 publishes the output connection lets be in flight for the pump's
    `window` (`Service.pump`): the window, and never fewer than paho's default of 20
    (`MqttSettings.max_inflight_messages`; paho queues the rest, in order)."""
    return max(20, window)


def _outgoing(publisher: Publisher, service: Service, *, cap: bool) -> Publisher:
    """What the outbox pump publishes through: with `cap`, alerts get a CAP XML twin."""
    if not cap:
        return publisher
    config = service.config
    return CapPublisher(publisher, CapRenderer(service.engine.atlas), config.topics,
                        config.status)


async def _read(client: Client, queue: asyncio.Queue[Received], ping: str,
                answer: Answer) -> None:
    """Queue every incoming input, answer pings at once (BrokerError when the broker goes
    away)."""
    async for message in received(client):
        if message.topic == ping:
            await answer(message.payload)  # QoS 0: nothing to acknowledge
        else:
            queue.put_nowait(message)


async def _listen(service: Service, client: Client, queue: asyncio.Queue[Received]) -> None:
    """Hand inputs to the service, then acknowledge them: they are recorded by then.

    Takes what has arrived, up to INPUT_BATCH messages at a time: detections and operator
    actions one by one, each run of receipts parsed and recorded in one transaction, the
    retained states they touch written once (`Service.batch`); then the batch's
    acknowledgements, in arrival order (MQTT 4.6).
    """
    while True:
        batch = [await queue.get()]
        while len(batch) < INPUT_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        async with service.batch():  # retained states once per batch, not per input
            await _handle(service, batch)
        for message in batch:
            acknowledge(client, message)


async def _handle(service: Service, batch: list[Received]) -> None:
    """Detections and operator actions one by one, each run of receipts at once."""
    tree: TopicTree = service.config.topics
    receipts: list[tuple[bytes, str]] = []
    for message in batch:
        if tree.is_receipt(message.topic):
            receipts.append((message.payload, message.topic))
            continue
        if receipts:
            await service.accept_receipts(receipts)
            receipts = []
        if message.topic == tree.detections:
            await service.accept_detection(message.payload, source=message.topic)
        elif message.topic == tree.operator:
            await service.accept_operator(message.payload, source=message.topic)
    if receipts:
        await service.accept_receipts(receipts)
