"""The service end to end against a real Mosquitto started on a free port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.domain.messages import Alert, PrefectureState
from alertsim.domain.prefectures import Atlas
from alertsim.drills.dry_run import service_config
from alertsim.drills.scenario import ActionEntry, load_scenario
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from tests.helpers import Observer

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
MARKER = "alertsim/v1/exercise/alerts/test-end-marker"

pytestmark = pytest.mark.mosquitto  # every test starts a Mosquitto of its own


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A Mosquitto of this test's own (these tests stop it, or read every exercise topic)."""
    with MosquittoBroker() as b:
        yield b


def cleared_after_shown(observer: Observer, code: str) -> bool:
    """True once the prefecture's state was shown and then cleared (an empty payload)."""
    states = [p for t, p, _ in observer.messages if t == topics.state("exercise", code)]
    return any(states) and states[-1] == b""


@pytest.fixture
async def running(atlas: Atlas, broker: MosquittoBroker,
                  tmp_path: Path) -> AsyncIterator[tuple[Service, Store]]:
    """The service (timers and broker link) running against the test's broker."""
    async with await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0)
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=broker.url, protocol="5",
                                              client_id="svc-test", connected=connected))]
        await asyncio.wait_for(connected.wait(), 10)
        yield service, store
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_2023_11_21_over_mosquitto(atlas: Atlas, broker: MosquittoBroker,
                                         tmp_path: Path) -> None:
    """Okinawa gets shelter, then one passed (lifting the call, the 2023 rule) referencing
    it; state set then cleared on close."""
    scenario = load_scenario(SCENARIOS / "2023-11-21-chollima-1.yaml")
    speed = 240.0
    async with await Store.open(tmp_path / "drill.db") as store, Observer(
            broker.url, ["alertsim/v1/exercise/#"], "observer") as observer:
        clock = ScaledClock(start=scenario.start, speed=speed)
        service = Service(atlas=atlas, store=store.record, clock=clock,
                          config=service_config(scenario))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=broker.url, protocol="5",
                                              client_id="svc-1121", connected=connected))]
        await asyncio.wait_for(connected.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", broker.port) as sensor:
            for entry in scenario.timeline:
                await asyncio.sleep(max(0.0, clock.seconds_until(scenario.time_of(entry))))
                if isinstance(entry, ActionEntry):
                    body = json.dumps({"action": entry.action, "event_id": entry.event_id})
                    await sensor.publish(topics.OPERATOR, body, qos=1)
                else:
                    await sensor.publish(topics.DETECTIONS,
                                         entry.detection.model_dump_json(), qos=1)
        await eventually(lambda: cleared_after_shown(observer, "47"), timeout=10,
                         what="Okinawa's state cleared after the event")
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    alerts = observer.alerts()
    assert {t for t, _ in alerts} == {topics.alerts("exercise", "47")}
    okinawa = [a for _, a in alerts]
    assert [(a.stage, a.msgType) for a in okinawa] == [("shelter", "Alert"), ("passed", "Update")]
    assert okinawa[1].referenced_identifiers() == (okinawa[0].identifier,)
    assert "避難の呼びかけを解除します" in okinawa[1].info[0].description
    states = [p for t, p, _ in observer.messages if t == topics.state("exercise", "47")]
    shown = [p for p in states if p]  # empty ones: cleared (on connect, every prefecture)
    assert PrefectureState.model_validate_json(shown[0]).sheltering
    assert states[-1] == b""
    assert {t for t, p, _ in observer.messages if "/state/" in t and p} == {
        topics.state("exercise", "47")}


async def test_bad_inputs_over_mqtt(broker: MosquittoBroker,
                                    running: tuple[Service, Store]) -> None:
    """Malformed JSON, a schema-invalid detection and a 70 KB payload each reach errors."""
    _, store = running
    async with Observer(broker.url, [topics.ERRORS, "alertsim/v1/exercise/alerts/#"],
                        "err-observer") as observer, \
            aiomqtt.Client("127.0.0.1", broker.port) as sensor:
        await sensor.publish(topics.DETECTIONS, b'{"event_id": ', qos=1)
        await sensor.publish(topics.DETECTIONS, b'{"event_id": "x", "sequence": -1}', qos=1)
        await sensor.publish(topics.DETECTIONS, b"[" + b"0," * 35_000 + b"0]", qos=1)
        good = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="after-bad")
        await sensor.publish(topics.DETECTIONS, good.model_dump_json(), qos=1)
        await eventually(lambda: len(observer.alerts()) >= 2
                         and sum(t == topics.ERRORS for t, _, _ in observer.messages) >= 3,
                         timeout=10, what="two alerts and three errors")
    errors = [json.loads(p)["reason"] for t, p, _ in observer.messages if t == topics.ERRORS]
    assert len(errors) == 3
    assert "Invalid JSON" in errors[0]
    assert "sequence: Input should be greater than or equal to 1" in errors[1]
    assert "payload too large" in errors[2]
    assert len(await store.views.rejected()) == 3
    assert [a.prefecture for _, a in observer.alerts()] == ["01", "02"]


async def test_outbox_with_broker_stopped(atlas: Atlas, broker: MosquittoBroker,
                                          tmp_path: Path) -> None:
    """Broker down: detections accepted and recorded; back up: delivered once each."""
    async with Observer(broker.url, ["alertsim/v1/exercise/alerts/#"], "dedup-rx",
                        clean=False):
        pass  # register a persistent session for the receiver, then go offline
    async with await Store.open(tmp_path / "outage.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0)
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)
        connected = asyncio.Event()
        link = asyncio.create_task(run_link(service, url=broker.url, protocol="5",
                                            client_id="svc-outage", connected=connected))
        await asyncio.wait_for(connected.wait(), 10)
        await eventually(service.drained, timeout=10, what="states restated on connect")
        broker.stop()
        await eventually(lambda: not connected.is_set(), timeout=10, what="link down")
        for i, event in enumerate(("down-1", "down-2")):
            d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id=event,
                               launch_time=DEFAULT_LAUNCH_TIME + timedelta(seconds=i))
            assert await service.accept_detection(d.model_dump_json().encode())
        assert len(await store.record.unpublished()) == 8  # 4 alerts and 4 retained states
        broker.start()
        await asyncio.wait_for(connected.wait(), 30)
        await eventually(service.drained, timeout=10, what="outbox drained")
        link.cancel()
        await asyncio.gather(link, return_exceptions=True)
    # Queued after everything the service sent: once it arrives, so has any duplicate.
    async with aiomqtt.Client("127.0.0.1", broker.port) as sensor:
        await sensor.publish(MARKER, b"end", qos=1)
    seen: dict[str, int] = {}
    async with Observer(broker.url, ["alertsim/v1/exercise/alerts/#"], "dedup-rx",
                        clean=False) as receiver:
        await eventually(lambda: any(t == MARKER for t, _, _ in receiver.messages),
                         what="the end marker, after every queued alert")
        for topic, payload, _ in receiver.messages:
            if topic != MARKER:
                alert = Alert.model_validate_json(payload)
                seen[alert.identifier] = seen.get(alert.identifier, 0) + 1
    assert len(seen) == 4
    assert set(seen.values()) == {1}


async def test_mqtt5_properties_on_alerts(broker: MosquittoBroker,
                                          running: tuple[Service, Store]) -> None:
    """Under MQTT 5 an alert carries expiry, content type and identifier/msgType/stage."""
    async with aiomqtt.Client("127.0.0.1", broker.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe("alertsim/v1/exercise/alerts/#", qos=1)
        d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="props-1")
        await client.publish(topics.DETECTIONS, d.model_dump_json(), qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
    assert isinstance(message.payload, bytes)
    alert = Alert.model_validate_json(message.payload)
    assert message.properties is not None
    # paho's Properties attributes are dynamic: read them by name.
    props = {name: getattr(message.properties, name)
             for name in ("ContentType", "MessageExpiryInterval", "UserProperty")}
    assert props["ContentType"] == "application/json"
    assert props["MessageExpiryInterval"] >= 60
    user = dict(props["UserProperty"])
    # `sent-at`: wall-clock ms since the epoch when the service published it (fleet latency)
    sent_at = int(user.pop("sent-at"))
    assert abs(sent_at / 1000 - time.time()) < 600
    assert user == {"kind": "alert", "identifier": alert.identifier,
                    "msgType": "Alert", "stage": "shelter"}
