"""The alert service: inputs in, lifecycle transitions, everything out through the outbox.

    detections / operator actions / receipts (bytes)
        -> validate (size, JSON, schema)      bad: rejected row + message on errors topic
        -> record, decide, transition (pure core, one at a time under a lock)
        -> outbox rows in SQLite (alerts, retained states) written before any publish
    pump: outbox -> publisher -> marked published on PUBACK (re-sent after a restart)
    timers: sleep until the next window end / automatic close, then tick

The service owns no connection: `ServiceLink` (below) connects to the broker, feeds
inputs to `Service.accept_*`, and runs the pump with a publisher bound to the client.
Tests drive `Service` directly with an in-memory publisher and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from alertsim.adapters.mqtt import topics
from alertsim.adapters.mqtt.client import (
    Client,
    MqttSettings,
    OutgoingMessage,
    backoff_delays,
    connect,
    incoming,
    publish,
    subscribe,
)
from alertsim.adapters.mqtt.client import Protocol as MqttProtocol
from alertsim.adapters.sqlite.store import OutboxRow, Outgoing, Store
from alertsim.domain.detection import Detection
from alertsim.domain.lifecycle import EventState, Transition
from alertsim.domain.messages import (
    Alert,
    AlertStatus,
    PlaceEvent,
    PrefectureState,
    Receipt,
)
from alertsim.domain.model import Frozen
from alertsim.domain.prefectures import Atlas
from alertsim.domain.timeline import Engine, OperatorAction
from alertsim.domain.warnings import PolicyName
from alertsim.errors import BrokerError, describe_validation_error
from alertsim.service.clock import Clock, real_now

log = structlog.get_logger("alertsim.service")
InputModel = TypeVar("InputModel", bound=BaseModel)
WATCH_BACKLOG = 10_000


class Publisher(Protocol):
    async def publish(self, message: OutgoingMessage) -> None:
        """Publish and return once the broker has acknowledged (QoS 1); BrokerError if not."""
        ...


class OperatorCommand(Frozen):
    action: Literal["cancel", "close"]
    event_id: str


@dataclass(frozen=True)
class ServiceConfig:
    status: Literal["exercise", "test"] = "exercise"
    policy: PolicyName = "prefecture"
    sender: str = "alertsim@simulator.invalid"
    max_payload_bytes: int = 65_536
    close_after: timedelta = timedelta(minutes=10)

    @property
    def alert_status(self) -> AlertStatus:
        return topics.alert_status(self.status)

    def engine(self, atlas: Atlas) -> Engine:
        """The pure decision and lifecycle engine this configuration runs."""
        return Engine(atlas=atlas, policy=self.policy, status=self.alert_status,
                      sender=self.sender, close_after=self.close_after, events={})


class Service:
    def __init__(self, *, atlas: Atlas, store: Store, config: ServiceConfig,
                 clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.engine = config.engine(atlas)
        self._lock = asyncio.Lock()
        self.outbox_changed = asyncio.Event()
        self._timeline_changed = asyncio.Event()
        self._watchers: set[asyncio.Queue[Outgoing]] = set()
        self.published = 0

    # -- observation -----------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Outgoing]:
        """Every outbox row as it is written (alerts, states, errors): for live views.

        A watcher that falls WATCH_BACKLOG rows behind is dropped rather than slowing the
        service down; nothing else depends on watchers.
        """
        queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=WATCH_BACKLOG)
        self._watchers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)

    def _notify(self, rows: Iterable[Outgoing]) -> None:
        for queue in list(self._watchers):
            try:
                for row in rows:
                    queue.put_nowait(row)
            except asyncio.QueueFull:
                self._watchers.discard(queue)
                log.warning("watcher.dropped", backlog=WATCH_BACKLOG)

    # -- start-up --------------------------------------------------------------------

    async def resume(self) -> int:
        """Reload open events from the record; their timers resume. Returns how many."""
        rows = await self.store.open_events()
        for row in rows:
            state = EventState.model_validate_json(row.state_json)
            self.engine.events[state.event_id] = state
        self._timeline_changed.set()
        self.outbox_changed.set()
        return len(rows)

    # -- inputs ----------------------------------------------------------------------

    async def accept_detection(self, raw: bytes, *, source: str = topics.DETECTIONS) -> bool:
        """Validate, record and act on one detection payload. False when rejected."""
        detection = await self._parse(Detection, raw, source)
        if detection is None:
            return False
        async with self._lock:
            await self.store.record_detection(
                raw=raw, parsed_json=detection.model_dump_json(), event_id=detection.event_id,
                sequence=detection.sequence, source=source, received_at=real_now())
            known = self.engine.events.get(detection.event_id)
            nonce = known.nonce if known else uuid.uuid4().hex[:8]
            transition = self.engine.detection(detection, now=self.clock.now(), nonce=nonce)
            if transition.state.decision is not None and transition.state != known:
                await self.store.record_decision(
                    event_id=detection.event_id, sequence=detection.sequence,
                    decision_json=transition.state.decision.model_dump_json(),
                    decided_at=real_now())
            await self._commit([transition])
        log.info("detection.accepted", event_id=detection.event_id,
                 sequence=detection.sequence, alerts=len(transition.alerts))
        return True

    async def accept_operator(self, raw: bytes, *, source: str = topics.OPERATOR) -> bool:
        command = await self._parse(OperatorCommand, raw, source)
        if command is None:
            return False
        async with self._lock:
            transition = self.engine.action(OperatorAction(command.action, command.event_id),
                                            now=self.clock.now())
            if transition is None:
                await self.reject(raw, f"event_id: no event {command.event_id!r} is known",
                                  source)
                return False
            await self._commit([transition])
        log.info("operator.applied", action=command.action, event_id=command.event_id)
        return True

    async def accept_receipt(self, raw: bytes, *, source: str) -> bool:
        receipt = await self._parse(Receipt, raw, source)
        if receipt is None:
            return False
        await self.store.record_receipt(client_id=receipt.client_id,
                                        message_id=receipt.identifier,
                                        received_at=receipt.received_at, recorded_at=real_now())
        return True

    async def _parse(self, model: type[InputModel], raw: bytes, source: str) -> InputModel | None:
        """The payload as `model`, or None once it has been rejected (size, JSON, schema)."""
        if len(raw) > self.config.max_payload_bytes:
            await self.reject(raw, f"payload too large: {len(raw)} bytes, the limit is "
                                   f"{self.config.max_payload_bytes}", source)
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            await self.reject(raw, "; ".join(describe_validation_error(exc)), source)
            return None

    async def reject(self, raw: bytes, reason: str, source: str) -> None:
        """Keep the bad input and tell the errors topic why; the service carries on."""
        now = real_now()
        await self.store.record_rejected(raw=raw, reason=reason, source=source,
                                         received_at=now)
        body = {"source": source, "reason": reason, "received_at": now.isoformat(),
                "size": len(raw), "excerpt": raw[:200].decode("utf-8", "replace")}
        row = Outgoing(
            message_id=f"error.{uuid.uuid4().hex}", event_id=None, kind="error",
            prefecture=None, stage=None, topic=topics.ERRORS,
            payload=json.dumps(body, ensure_ascii=False).encode(), qos=1, retain=False,
            sim_time=None, created_at=now)
        await self.store.enqueue([row])
        self.outbox_changed.set()
        self._notify([row])
        log.warning("input.rejected", source=source, reason=reason, size=len(raw))

    # -- time ------------------------------------------------------------------------

    async def tick(self) -> int:
        async with self._lock:
            transitions = self.engine.tick(now=self.clock.now())
            await self._commit(transitions)
        return sum(len(t.alerts) for t in transitions)

    async def run_timers(self) -> None:
        """Tick at every deadline (window ends, automatic closes), forever."""
        while True:
            deadline = self.engine.next_deadline()
            wait = None if deadline is None else max(0.0, self.clock.seconds_until(deadline))
            self._timeline_changed.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._timeline_changed.wait()
            except TimeoutError:
                await self.tick()

    def open_events(self) -> list[str]:
        return sorted(e for e, s in self.engine.events.items() if not s.closed)

    # -- outbox ----------------------------------------------------------------------

    async def _commit(self, transitions: Iterable[Transition]) -> None:
        rows: list[Outgoing] = []
        touched: set[str] = set()
        now = real_now()
        for transition in transitions:
            state = transition.state
            await self.store.save_event(state.event_id, state.model_dump_json(),
                                        closed=state.closed, updated_at=now)
            for alert in transition.alerts:
                rows.append(self._alert_row(alert, now))
                if alert.prefecture is not None:
                    touched.add(alert.prefecture)
            if state.closed:  # closing changes every place's state without an alert
                touched |= set(state.places)
        rows += [self._state_row(code, now) for code in sorted(touched)]
        if rows:
            await self.store.enqueue(rows)
            self.outbox_changed.set()
            self._notify(rows)
        self._timeline_changed.set()

    def _alert_row(self, alert: Alert, now: datetime) -> Outgoing:
        return Outgoing(message_id=alert.identifier, event_id=alert.alertsim.event_id,
                        kind="alert", prefecture=alert.prefecture, stage=alert.stage,
                        topic=topics.alerts(self.config.status, alert.prefecture),
                        payload=alert.model_dump_json().encode(), qos=1, retain=False,
                        sim_time=alert.sent, created_at=now)

    def _state_row(self, code: str, now: datetime) -> Outgoing:
        """The retained state of one prefecture over all open events (empty = cleared)."""
        events = []
        for event_id, state in sorted(self.engine.events.items()):
            place = state.places.get(code)
            if place is None or state.closed or not place.references:
                continue
            identifier = place.references[-1].split(",")[1]
            events.append(PlaceEvent(event_id=event_id, stage=place.stages[-1],
                                     identifier=identifier,
                                     sheltering=place.status == "sheltering"))
        payload = b""
        if events:
            payload = PrefectureState(code=code, status=self.config.alert_status,
                                      updated=self.clock.now(),
                                      events=tuple(events)).model_dump_json().encode()
        return Outgoing(message_id=f"state.{code}.{uuid.uuid4().hex}", event_id=None,
                        kind="state", prefecture=code, stage=None,
                        topic=topics.state(self.config.status, code), payload=payload, qos=1,
                        retain=True, sim_time=self.clock.now(), created_at=now)

    def outgoing_message(self, row: OutboxRow) -> OutgoingMessage:
        """MQTT message for an outbox row, with MQTT 5 expiry and user properties."""
        expiry: int | None = None
        props: tuple[tuple[str, str], ...] = (("kind", row.kind),)
        if row.kind == "alert":
            alert = json.loads(row.payload)
            expires = datetime.fromisoformat(alert["info"][0]["expires"])
            expiry = max(60, int(self.clock.seconds_until(expires)))
            props += (("identifier", row.message_id), ("msgType", alert["msgType"]),
                      ("stage", row.stage or ""))
        return OutgoingMessage(topic=row.topic, payload=row.payload, qos=row.qos,
                               retain=row.retain, expiry_s=expiry,
                               content_type="application/json" if row.payload else None,
                               user_properties=props)

    async def pump(self, publisher: Publisher) -> None:
        """Publish every unpublished outbox row in order, forever; BrokerError ends it."""
        while True:
            self.outbox_changed.clear()
            for row in await self.store.unpublished():
                await publisher.publish(self.outgoing_message(row))
                await self.store.mark_published(row.message_id, real_now())
                self.published += 1
                if row.kind == "alert":
                    log.info("alert.published", event_id=row.event_id,
                             prefecture=row.prefecture or "national", stage=row.stage,
                             topic=row.topic, identifier=row.message_id)
            await self.outbox_changed.wait()

    async def drained(self) -> bool:
        return not await self.store.unpublished()


@dataclass
class ClientPublisher:
    """Publisher bound to one connected aiomqtt client."""

    client: Client
    protocol: MqttProtocol

    async def publish(self, message: OutgoingMessage) -> None:
        await publish(self.client, message, protocol=self.protocol)


STATUS_ONLINE = b'{"status":"online"}'
STATUS_OFFLINE = b'{"status":"offline"}'


async def run_link(service: Service, *, url: str, protocol: MqttProtocol, client_id: str,
                   connected: asyncio.Event | None = None) -> None:
    """Connect, subscribe to inputs, pump the outbox; reconnect with jittered backoff.

    Two connections: `{client_id}` reads inputs (persistent session, so detections sent
    while the service is away are kept) and `{client_id}-out` publishes. On one socket the
    PUBACKs for a flood of incoming receipts held the next alert back by Nagle's algorithm
    and the broker's delayed ACK (~40 ms stalls measured in drills); apart, alerts go out
    on a socket that only publishes.
    """
    will = OutgoingMessage(topics.SERVICE_STATUS, STATUS_OFFLINE, qos=1, retain=True)
    inputs = MqttSettings(url=url, client_id=client_id, protocol=protocol, clean_start=False)
    outputs = MqttSettings(url=url, client_id=f"{client_id}-out", protocol=protocol,
                           will=will)
    delays = backoff_delays(rng=random.Random())
    while True:
        try:
            async with connect(outputs) as out_client, connect(inputs) as in_client:
                publisher = ClientPublisher(out_client, protocol)
                await publisher.publish(OutgoingMessage(topics.SERVICE_STATUS, STATUS_ONLINE,
                                                        qos=1, retain=True))
                for topic in (topics.DETECTIONS, topics.OPERATOR, topics.RECEIPTS_ALL):
                    await subscribe(in_client, topic)
                log.info("broker.connected", url=url, protocol=protocol)
                delays = backoff_delays(rng=random.Random())
                if connected is not None:
                    connected.set()
                async with asyncio.TaskGroup() as group:
                    group.create_task(service.pump(publisher), name="outbox-pump")
                    group.create_task(_listen(service, in_client), name="input-listener")
        except* BrokerError as group:
            if connected is not None:
                connected.clear()
            delay = next(delays)
            log.warning("broker.disconnected", url=url, error=str(group.exceptions[0]),
                        retry_in_s=round(delay, 2))
            await asyncio.sleep(delay)


async def _listen(service: Service, client: Client) -> None:
    async for topic, raw in incoming(client):
        if topic == topics.DETECTIONS:
            await service.accept_detection(raw, source=topic)
        elif topic == topics.OPERATOR:
            await service.accept_operator(raw, source=topic)
        elif topic.startswith(topics.ROOT + "/receipts/"):
            await service.accept_receipt(raw, source=topic)
