"""`kill -9` of the generated broker mid-burst: every detection it acknowledged is recorded.

The broker runs the config `alertsim broker-config` writes (passwords, ACL, two listeners,
autosave on changes). The service runs in-process as `service-exercise` with its persistent
input session; a `sensor` publishes a 200-detection burst (`alertsim.testing.bursts`) at
QoS 1: the first half, then, once the broker has logged a save, the second half; on the
KILL_AFTER-th PUBACK the broker gets SIGKILL, right after an acknowledgement, where
Mosquitto (which acknowledges before it saves) is most exposed. The broker restarts on the
same files; the service reconnects to its session and must record every detection the
broker acknowledged before a save, those still queued for it in the broker included. What
it acknowledged after its last save (autosave every second) may be lost: the test prints
that count, docs/security.md documents the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.output import OutputLog, tail
from alertsim.domain import topics
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually
from alertsim.testing.bursts import burst
from tests.integration.test_broker_config import MOSQUITTO, _start_mosquitto, _write_generated

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto, pytest.mark.timeout(180),
              pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")]
COUNT = 200
KILL_AFTER = 150  # PUBACKs: mid second half, the service still has a queue in the broker
SENSOR_WINDOW = 20  # the sensor's QoS 1 publishes in flight
OBSERVED_AFTER = timedelta(minutes=2)


@dataclass
class GeneratedBroker:
    """Mosquitto on the generated files; `kill()` is SIGKILL, `start()` reuses the files."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    output: OutputLog | None = None

    def start(self) -> None:
        self.process, self.output = _start_mosquitto(
            self.directory / "mosquitto.conf", self.port, self.directory / "mosquitto.out")
        assert self.output.wait(10.0), tail(self.directory / "mosquitto.out")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no shutdown, no final save

    def reap(self) -> None:
        if self.process is not None:
            self.kill()
            self.process.wait()
        if self.output is not None:
            self.output.join()


@dataclass
class Sensor:
    """The burst's publisher: which detections the broker acknowledged, in order."""

    acked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    saved: int = 0  # how many of `acked` the broker had acknowledged before a logged save


def _saves(broker: GeneratedBroker) -> int:
    """How many times Mosquitto has logged a save of its database so far."""
    text = (broker.directory / "mosquitto.out").read_text("utf-8", errors="replace")
    return text.count("Saving in-memory database")


async def _publish(client: Client, payloads: list[tuple[str, bytes]], sensor: Sensor,
                   kill: Callable[[], None] | None = None) -> None:
    """QoS 1, all at once; `kill` on the KILL_AFTER-th PUBACK. A PUBACK read after the
    kill still counts: the broker sent it."""

    async def one(event_id: str, payload: bytes) -> None:
        try:
            await publish(client, Publication(topics.DETECTIONS, payload, qos=1))
        except BrokerError:
            sensor.refused.append(event_id)
            return
        sensor.acked.append(event_id)
        if kill is not None and len(sensor.acked) == KILL_AFTER:
            kill()

    await asyncio.gather(*(one(e, p) for e, p in payloads))


async def _publish_burst(url: str, broker: GeneratedBroker, sensor: Sensor) -> None:
    """The first half of the burst, then (once the broker has logged a save after it) the
    second half, with SIGKILL to the broker on the KILL_AFTER-th PUBACK."""
    payloads = [(d.event_id, d.model_dump_json().encode())
                for d in burst(COUNT, observed_after=OBSERVED_AFTER)]
    async with connect(MqttSettings(url=url, client_id="sensor", timeout_s=10.0,
                                    max_inflight_messages=SENSOR_WINDOW)) as client:
        await _publish(client, payloads[:COUNT // 2], sensor)
        before = _saves(broker)
        await eventually(lambda: _saves(broker) > before, timeout=5, what="a save")
        sensor.saved = len(sensor.acked)
        await _publish(client, payloads[COUNT // 2:], sensor, kill=broker.kill)


@asynccontextmanager
async def _service(atlas: Atlas, store: Store, url: str,
                   connected: asyncio.Event) -> AsyncIterator[None]:
    """The service as `service-exercise` with its persistent input session, online."""
    clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + OBSERVED_AFTER)
    service = Service(atlas=atlas, store=store.record, clock=clock,
                      config=ServiceConfig(status="exercise"))
    tasks = [asyncio.create_task(service.run_timers(), name="crash:timers"),
             asyncio.create_task(run_link(service, url=url, protocol="5",
                                          client_id="crash-svc", connected=connected),
                                 name="crash:link")]
    try:
        await asyncio.wait_for(connected.wait(), 10)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _recorded(store: Store, event_ids: list[str]) -> list[str]:
    return [e for e in event_ids if await store.record.detection(e, 1) is not None]


async def test_broker_kill_mid_burst_loses_nothing_acknowledged_before_its_last_save(
        atlas: Atlas, tmp_path: Path) -> None:
    """SIGKILL of the generated broker during a 200-detection burst, then a restart: every
    detection the sensor got a PUBACK for before the broker's last logged save is in the
    service's record. What it acknowledged after that save (up to a second: Mosquitto
    acknowledges before it saves) may be lost; the test prints how many were."""
    port, _ = _write_generated(tmp_path / "broker")
    credentials = (tmp_path / "broker" / "credentials.json").read_text("utf-8")
    users = __import__("json").loads(credentials)["users"]
    broker, sensor, connected = GeneratedBroker(tmp_path / "broker", port), Sensor(), \
        asyncio.Event()
    await asyncio.to_thread(broker.start)
    try:
        async with await Store.open(tmp_path / "svc.db") as store, \
                _service(atlas, store, users["service-exercise"]["url"], connected):
            await _publish_burst(users["sensor"]["url"], broker, sensor)
            at_kill = len(await _recorded(store, sensor.acked))
            await asyncio.to_thread(broker.reap)
            await eventually(lambda: not connected.is_set(), timeout=10, what="link down")
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(connected.wait(), 30)
            acked = list(sensor.acked)

            async def all_recorded() -> bool:
                return len(await _recorded(store, acked)) == len(acked)

            with contextlib.suppress(AssertionError):  # the bound is asserted below
                await eventually(all_recorded, timeout=30, what="every acknowledged detection")
            missing = set(acked) - set(await _recorded(store, acked))
            print(f"acked={len(acked)} recorded_at_kill={at_kill} "
                  f"unacked={len(sensor.refused)} lost={len(missing)} {sorted(missing)}")
    finally:
        await asyncio.to_thread(broker.reap)
    assert len(acked) >= KILL_AFTER
    assert at_kill < len(acked), "precondition: the broker held queued detections at the kill"
    # The documented window (docs/security.md): what the broker acknowledged after its last
    # save can be lost; everything acknowledged before a save it logged is recorded.
    assert sensor.saved >= COUNT // 2
    assert missing.isdisjoint(acked[:sensor.saved]), sorted(missing)
