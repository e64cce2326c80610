"""The windowed pump on a real Mosquitto: a burst keeps its order per topic, and a broker
stopped or killed while a window of publishes is in flight loses nothing.

The service runs in-process with its broker link; 40 detections of distinct events are
recorded before the pump starts, so it meets a burst of ~550 rows. The pump publishes
through the service's own `ClientPublisher`; at the 150th acknowledgement the broker is
stopped (or killed) from inside that publisher, so the failure lands with the window
full, and the pump's session is then ended as the link ends it. Whatever the service had not seen
acknowledged by then must reach a subscriber after the broker is back, in outbox order on
each topic; with a clean stop (the broker saves its sessions) a persistent subscriber must
end up with every alert.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.link import ClientPublisher, in_flight, run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain.messages import Alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually
from alertsim.testing.bursts import burst
from tests.helpers import Observer

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

ALERTS = "alertsim/v1/exercise/alerts/#"
FAIL_AT = 100


class Subscriber(Observer):
    """A persistent-session client noting every alert: (topic, identifier) in order."""

    def __init__(self, port: int) -> None:
        super().__init__(f"mqtt://127.0.0.1:{port}", [ALERTS], "burst-subscriber",
                         clean=False)
        self.noted: list[tuple[str, str]] = []

    def seen(self, topic: str, payload: bytes, retain: bool) -> None:
        super().seen(topic, payload, retain)
        self.noted.append((topic, Alert.model_validate_json(payload).identifier))


@dataclass
class Breaking:
    """The service's publisher, calling `breaker` (synchronously) at the FAIL_AT-th PUBACK."""

    inner: ClientPublisher
    breaker: Callable[[], None] | None = None
    acknowledged: int = 0
    broken: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, message: Publication) -> None:
        await self.inner.publish(message)
        self.acknowledged += 1
        if self.breaker is not None and self.acknowledged == FAIL_AT:
            self.breaker()  # blocks the loop: nothing more goes out meanwhile
            self.broken.set()


@asynccontextmanager
async def pumping(service: Service, url: str,
                  breaker: Callable[[], None] | None = None) -> AsyncIterator[Breaking]:
    """The service's pump on a connection of its own (as the link runs it), until exit."""
    window = in_flight(service.config.publish_window)
    async with connect(MqttSettings(url=url, client_id="burst-svc-out",
                                    max_inflight_messages=window)) as client:
        publisher = Breaking(ClientPublisher(client, "5"), breaker)
        task = asyncio.create_task(service.pump(publisher))
        try:
            yield publisher
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def linked(service: Service, url: str) -> AsyncIterator[asyncio.Event]:
    connected = asyncio.Event()
    task = asyncio.create_task(run_link(service, url=url, protocol="5",
                                        client_id="burst-svc", connected=connected))
    try:
        yield connected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def first_seen_by_topic(seen: list[tuple[str, str]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = defaultdict(list)
    for topic, identifier in seen:
        if identifier not in order[topic]:
            order[topic].append(identifier)
    return order


def in_outbox_order(seen: list[tuple[str, str]], seq: dict[str, int]) -> bool:
    return all(ids == sorted(ids, key=seq.__getitem__)
               for ids in first_seen_by_topic(seen).values())


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "SIGKILL"])
async def test_broker_lost_mid_window_loses_nothing(atlas: Atlas, tmp_path: Path,
                                                    kill: bool) -> None:
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(),
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2)))
        for detection in burst(40):
            assert await service.accept_detection(detection.model_dump_json().encode())
        alerts = {r.message_id: r.seq for r in await store.views.outbox(kind="alert")}
        async with Subscriber(broker.port) as before, \
                pumping(service, broker.url, broker.kill if kill else broker.stop) as first:
            await asyncio.wait_for(first.broken.wait(), 30)
            with pytest.raises(aiomqtt.MqttError):
                await before.client.publish("test/probe", b"", qos=1, timeout=5)
        unacknowledged = {r.message_id for r in await store.record.unpublished() if r.kind == "alert"}
        assert len(unacknowledged) > 100, "precondition: the broker went away mid-burst"
        broker.start()
        async with Subscriber(broker.port) as after, pumping(service, broker.url):
            await eventually(service.drained, timeout=30, what="outbox drained")
            await eventually(lambda: unacknowledged <= {i for _, i in after.noted}, timeout=10,
                             what="every unacknowledged alert after the restart")
    assert in_outbox_order(after.noted, alerts)
    assert in_outbox_order(before.noted, alerts)
    if not kill:  # the stopped broker kept the session: together they hold every alert
        assert {i for _, i in before.noted + after.noted} == set(alerts)
    print(f"\n{len(alerts)} alerts; {len(before.noted)} before, {len(after.noted)} after; "
          f"{len(unacknowledged)} unacknowledged when the broker went away")


async def test_burst_arrives_whole_and_in_order(atlas: Atlas, tmp_path: Path) -> None:
    """100 detections at once: every alert arrives, in outbox order on each topic."""
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(),
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2)))
        async with Subscriber(broker.port) as subscriber, linked(service, broker.url) as up:
            await asyncio.wait_for(up.wait(), 10)
            for detection in burst(100, seed=11):
                assert await service.accept_detection(detection.model_dump_json().encode())
            alerts = {r.message_id: r.seq for r in await store.views.outbox(kind="alert")}
            await eventually(lambda: len(subscriber.noted) >= len(alerts), timeout=30,
                             what="every alert")
            await eventually(service.drained, what="outbox drained")
    assert [i for _, i in subscriber.noted] == sorted(alerts, key=alerts.__getitem__)
    assert len(alerts) > 500
