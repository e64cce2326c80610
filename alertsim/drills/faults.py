"""Fault injection for drills (`alertsim drill --fault KIND --fault-seed N`).

A relay stands between the service and the drill's reference receivers, as a bad network
would: the service publishes on the drill's tree `{root}` exactly as always (its record,
outbox and timings stay honest); the relay republishes every alert and state to
`{root}/relay`, where the receivers listen, with the faults applied; the receivers'
receipts go back from `{root}/relay/receipts/+` to `{root}/receipts/+` untouched, on a
connection of their own. Payloads and MQTT 5 user properties are passed on byte for byte,
so the receivers still verify every signature.

    duplicate        the first alert, then each with probability 1/2, is sent twice
    delay            every alert waits a random 50-400 ms before it is relayed (jitter;
                     the order is kept, so the delays add up when alerts come in a burst)
    reorder          the first Alert, then each with probability 1/2, of a prefecture is
                     held until the next alert on its topic (an Update or Cancel referring
                     to it) has gone: an Update before its Alert
    drop-connection  one or two receivers of the expected prefectures (persistent sessions)
                     lose their connection right after handling their first Alert
    late-join        one more receiver per expected prefecture (`rx-TOKEN-late-CODE`) starts
                     only once that prefecture's state names an alert, so it must learn
                     it from the retained state

This module is the relay and the three network faults; the receiver-side ones need the
receivers, and act on the drill's in-process `Receiver`s (`alertsim.drills.receiver_faults`,
told by the relay what it has just relayed). Every fault applied is recorded
(`FaultApplied`) and listed in the drill report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.domain.vocabulary import Status
from alertsim.drills.receiver_faults import ReceiverFaults, late_join_plan
from alertsim.drills.report.model import FaultApplied
from alertsim.logs import get_logger
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import Received, publish, received, subscribe
from alertsim.mqtt.protocol import Protocol
from alertsim.signing import MalformedEnvelope, TrustedKeys, unwrap

__all__ = ["FAULT_KINDS", "FaultKind", "FaultRelay", "fault_kind", "late_join_plan"]

log = get_logger(__name__)

FaultKind = Literal["duplicate", "delay", "reorder", "drop-connection", "late-join"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
DELAY_S = (0.05, 0.4)
REORDER_HOLD_S = 30.0  # an Alert nothing follows is relayed in order after this long
IDLE_S = 2 * DELAY_S[1]  # the relay has caught up when it has had nothing for this long


def fault_kind(text: str) -> FaultKind:
    """`text` as a fault kind; ValueError naming the kinds otherwise."""
    for kind in FAULT_KINDS:
        if text == kind:
            return kind
    raise ValueError(f"unknown fault {text!r}: one of {', '.join(FAULT_KINDS)}")


@dataclass(frozen=True)
class _Alert:
    """What the relay reads of an alert: enough to choose and describe faults."""

    identifier: str
    msg_type: str
    stage: str
    prefecture: str | None

    @classmethod
    def read(cls, message: Received) -> _Alert | None:
        try:
            body = json.loads(unwrap(message.payload, message.user_properties)[0])
            ext = body["alertsim"]
            return cls(str(body["identifier"]), str(body["msgType"]), str(ext["stage"]),
                       ext.get("prefecture"))
        except (MalformedEnvelope, ValueError, KeyError, TypeError):
            return None

    def __str__(self) -> str:
        return f"{self.stage} {self.identifier}"


@dataclass
class _Held:
    message: Received
    alert: _Alert
    timer: asyncio.Task[None] | None = None


@dataclass
class FaultRelay:
    """The relay and the receiver-side faults of one drill; `applied` lists every fault."""

    kinds: frozenset[FaultKind]
    seed: int
    url: str
    protocol: Protocol
    source: TopicTree
    status: Status
    late_plan: Mapping[str, Sequence[str]] = field(default_factory=dict)
    trust: TrustedKeys | None = None
    ca_file: Path | None = None
    applied: list[FaultApplied] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.target = TopicTree(f"{self.source.root}/relay")
        self.rng = random.Random(self.seed)
        self._lock = asyncio.Lock()
        self._held: dict[str, _Held] = {}  # alert topic -> the Alert held back
        self._reordered: set[str] = set()
        self._duplicated = 0
        self.receiver_faults = ReceiverFaults(self.kinds, self.rng, self.record, [
            ReceiverOptions(url=self.url, protocol=self.protocol, client_id=cid, codes=[code],
                            status=self.status, tree=self.target, persistent=False,
                            trust=self.trust, ca_file=self.ca_file, signed_tree=self.source)
            for cid, codes in self.late_plan.items() for code in codes[:1]])
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Client | None = None
        self._stopped = False
        self._last = 0.0  # loop time the relay last finished a message
        self._relayed = asyncio.Event()  # set after each message relayed

    def record(self, kind: FaultKind, target: str, detail: str) -> None:
        self.applied.append(FaultApplied(kind=kind, target=target, detail=detail))
        log.debug("fault.applied", kind=kind, target=target, detail=detail)

    def prepare(self, receivers: Mapping[str, Receiver], codes: Iterable[str]) -> None:
        """Choose the receivers to drop, before they start (`ReceiverFaults.prepare`)."""
        self.receiver_faults.prepare(receivers, codes)

    async def start(self) -> None:
        """Connect both directions and subscribe; returns once the relay is listening."""
        ready = [asyncio.Event(), asyncio.Event()]
        self._tasks = [
            asyncio.create_task(self._forward_receipts(ready[0]), name="fault-relay-receipts"),
            asyncio.create_task(self._relay(ready[1]), name="fault-relay")]
        async with asyncio.timeout(15):
            for event in ready:
                await event.wait()

    def _connection(self, name: str) -> contextlib.AbstractAsyncContextManager[Client]:
        return connect(MqttSettings(url=self.url, protocol=self.protocol, ca_file=self.ca_file,
                                    client_id=f"alertsim-relay-{name}-{uuid.uuid4().hex[:8]}"))

    async def _forward_receipts(self, ready: asyncio.Event) -> None:
        async with self._connection("rc") as client:
            await subscribe(client, self.target.receipts_all)
            ready.set()
            async for message in received(client):
                topic = self.source.receipts(self.target.client_of_receipt(message.topic))
                await publish(client, Publication(topic, message.payload, qos=1),
                              protocol=self.protocol)

    async def _relay(self, ready: asyncio.Event) -> None:
        async with self._connection("rx") as client:
            await subscribe(client, [(self.source.alerts(self.status, "+"), 1),
                                     (self.source.state(self.status, "+"), 1)])
            self._client = client
            ready.set()
            async for message in received(client):
                async with self._lock:
                    await self._on_message(client, message)
                self._last = asyncio.get_running_loop().time()
                self._relayed.set()

    def _to_target(self, topic: str) -> str:
        return self.target.root + topic.removeprefix(self.source.root)

    async def _on_message(self, client: Client, message: Received) -> None:
        if message.topic.startswith(self.source.state(self.status, "")):
            code = message.topic.rsplit("/", 1)[1]
            await self._send(client, message, what=f"state {code}")
            if message.payload:
                await self.receiver_faults.state_named_alert(code)
            return
        alert = _Alert.read(message)
        if alert is None:
            await self._send(client, message, what=message.topic)
            return
        if self._reorder_now(message.topic, alert):
            self._hold(client, message, alert)
            return
        await self._send_alert(client, message, alert)
        held = self._held.pop(message.topic, None)
        if held is not None:
            if held.timer is not None:
                held.timer.cancel()
            await self._send_alert(client, held.message, held.alert)
            self.record("reorder", held.alert.identifier,
                        f"{held.alert} on {held.alert.prefecture} relayed after {alert}, "
                        "which refers to it")

    async def _send(self, client: Client, message: Received, *, what: str,
                    times: int = 1, delay: bool = False) -> None:
        if delay and "delay" in self.kinds:
            wait = self.rng.uniform(*DELAY_S)
            await asyncio.sleep(wait)
            self.record("delay", what, f"held {wait * 1000:.0f} ms")
        retain = message.topic.startswith(self.source.state(self.status, ""))
        for _ in range(times):
            await publish(client, Publication(self._to_target(message.topic), message.payload,
                                              qos=1, retain=retain,
                                              user_properties=message.user_properties),
                          protocol=self.protocol)

    async def _send_alert(self, client: Client, message: Received, alert: _Alert) -> None:
        twice = "duplicate" in self.kinds and (self._duplicated == 0 or self.rng.random() < 0.5)
        await self._send(client, message, what=alert.identifier, times=2 if twice else 1,
                         delay=True)
        if twice:
            self._duplicated += 1
            self.record("duplicate", alert.identifier, f"{alert} delivered twice")
        if alert.msg_type == "Alert":
            await self.receiver_faults.alert_relayed(alert.identifier, alert.prefecture,
                                                     str(alert))

    def _reorder_now(self, topic: str, alert: _Alert) -> bool:
        if ("reorder" not in self.kinds or alert.msg_type != "Alert" or alert.prefecture is None
                or topic in self._held):
            return False
        first = topic not in self._reordered
        self._reordered.add(topic)
        return first or self.rng.random() < 0.5

    def _hold(self, client: Client, message: Received, alert: _Alert) -> None:
        held = _Held(message, alert)
        self._held[message.topic] = held
        held.timer = asyncio.create_task(self._release_later(client, message.topic))

    async def _release_later(self, client: Client, topic: str) -> None:
        await asyncio.sleep(REORDER_HOLD_S)
        async with self._lock:
            await self._release(client, topic, "nothing followed it")

    async def _release(self, client: Client, topic: str, why: str) -> None:
        held = self._held.pop(topic, None)
        if held is not None:
            await self._send_alert(client, held.message, held.alert)
            self.record("reorder", held.alert.identifier,
                        f"{held.alert} held, then relayed in order: {why}")

    async def flush(self, drained: Callable[[], Awaitable[bool]]) -> None:
        """Once the service has sent everything (`await drained()`) and the relay has caught
        up, relay what is still held (nothing more will come to overtake it) and wait for
        the relay to be idle again. Bounded by REORDER_HOLD_S."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REORDER_HOLD_S):
                while True:
                    await self._caught_up(drained)
                    if not self._held:
                        return
                    await self._release_all()

    async def _caught_up(self, drained: Callable[[], Awaitable[bool]]) -> None:
        """Until the service has sent everything and the relay has relayed nothing for
        IDLE_S; woken by each message relayed (never a fixed poll)."""
        loop = asyncio.get_running_loop()
        while True:
            quiet_for = loop.time() - self._last
            if quiet_for >= IDLE_S and await drained():
                return
            self._relayed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, IDLE_S - quiet_for) or IDLE_S):
                    await self._relayed.wait()

    async def _release_all(self) -> None:
        async with self._lock:
            for topic in list(self._held):
                timer = self._held[topic].timer
                if timer is not None:
                    timer.cancel()
                if self._client is not None:
                    await self._release(self._client, topic,
                                        "the service had nothing more to send")
            self._last = asyncio.get_running_loop().time()

    async def stop(self) -> None:
        """Stop the relay, then the receiver-side faults (`ReceiverFaults.stop`). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for held in self._held.values():
            if held.timer is not None:
                held.timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.receiver_faults.stop()
