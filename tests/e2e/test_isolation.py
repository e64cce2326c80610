"""Drills are isolated from a running service; a persistent session replays nothing stale.

A real Mosquitto; the service runs in-process on its default tree (`alertsim/v1`), as
`alertsim serve` does.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.domain.prefectures import Atlas
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.service.clock import SystemClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import eventually, make_detection

pytestmark = pytest.mark.mosquitto
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2017-08-29-hwasong-12.yaml"


async def collect(client: aiomqtt.Client, into: list[tuple[str, bytes]]) -> None:
    """Append (topic, payload) of every message the client receives."""
    async for message in client.messages:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        into.append((str(message.topic), payload))


class Serving:
    """The service on the default tree, with its own record, until cancelled."""

    def __init__(self, atlas: Atlas, store: Store, broker: MosquittoBroker) -> None:
        self.service = Service(atlas=atlas, store=store.record, config=ServiceConfig(),
                               clock=SystemClock())
        self.broker = broker
        self.connected = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(self.service.run_timers(), run_link(
            self.service, url=self.broker.url, protocol="5", client_id="iso-serve",
            connected=self.connected))


@pytest.fixture
async def served(atlas: Atlas, tmp_path: Path) -> AsyncIterator[tuple[MosquittoBroker, Store,
                                                                     Serving]]:
    """A broker of the test's own and the service running against it."""
    with MosquittoBroker() as broker:
        async with await Store.open(tmp_path / "serve.db") as store:
            serving = Serving(atlas, store, broker)
            task = asyncio.create_task(serving.run())
            await asyncio.wait_for(serving.connected.wait(), 10)
            try:
                yield broker, store, serving
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def test_a_drill_beside_serve_makes_serve_publish_nothing(
        served: tuple[MosquittoBroker, Store, Serving], tmp_path: Path) -> None:
    """A drill on the broker a `serve` uses passes; the service sees none of its inputs."""
    broker, store, serving = served
    await eventually(serving.service.drained, what="the states restated on connect sent")
    before = await store.views.outbox()
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="iso-watch") as watcher:
        await watcher.subscribe("alertsim/v1/exercise/#", qos=1)
        await watcher.subscribe(topics.ERRORS, qos=1)
        reader = asyncio.create_task(collect(watcher, seen))
        out = io.StringIO()
        outcome = await run_drill(DrillOptions(scenario_path=SCENARIO, speed=120.0,
                                               broker_url=broker.url, reports_dir=tmp_path,
                                               quiet_s=0.5, out=out))
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert outcome.passed, out.getvalue()
    assert "topics under alertsim/v1/drills/2017-08-29-hwasong-12-" in out.getvalue()
    assert seen == []  # nothing on the service's tree, no errors
    assert await store.views.detections() == []
    assert await store.views.rejected() == []
    assert await store.views.outbox() == before  # nothing since it connected


async def test_an_input_queued_while_serve_was_down_is_refused_when_stale(
        atlas: Atlas, tmp_path: Path) -> None:
    """A detection that waited in the persistent session past the stale limit is refused
    with a reason when the service comes back, and nothing is alerted."""
    old = datetime.now(UTC) - timedelta(minutes=30)
    detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="queued",
                               launch_time=old)
    with MosquittoBroker() as broker:
        async with await Store.open(tmp_path / "serve.db") as store:
            await start_and_stop(Serving(atlas, store, broker))  # the session now exists
            async with aiomqtt.Client("127.0.0.1", broker.port) as sensor:
                await sensor.publish(topics.DETECTIONS, detection.model_dump_json().encode(),
                                     qos=1)
            back = asyncio.create_task(Serving(atlas, store, broker).run())
            try:
                rejected = await eventually(store.views.rejected, timeout=10,
                                            what="the queued detection refused")
            finally:
                back.cancel()
                await asyncio.gather(back, return_exceptions=True)
            assert "is stale: more than 600 s behind the service clock" in rejected[0].reason
            errors = [json.loads(r.payload) for r in await store.views.outbox(kind="error")]
            assert [e["source"] for e in errors] == [topics.DETECTIONS]
            assert await store.views.outbox(kind="alert") == []


async def start_and_stop(serving: Serving) -> None:
    """Run the service until it is connected and subscribed, then stop it."""
    task = asyncio.create_task(serving.run())
    try:
        await asyncio.wait_for(serving.connected.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
