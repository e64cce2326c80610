"""One credential flooding a running service over a real Mosquitto: 100 one-megabyte inputs
grow the record by less than a megabyte (db + WAL, each measured after a checkpoint), and
the service goes on alerting."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.domain.prefectures import Atlas
from alertsim.domain.refusal import EXCERPT_BYTES
from alertsim.service.clock import SystemClock
from alertsim.service.config import ServiceConfig
from alertsim.service.observer import InputKind, NullObserver
from alertsim.service.service import Service
from alertsim.testing import eventually
from tests.e2e.test_fuzz_inputs import valid_detection

pytestmark = pytest.mark.mosquitto

FLOOD = 100
MEGABYTE = 1_000_000


class Refusals(NullObserver):
    """Counts refusals as the service makes them; `done` once `expected` are counted."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.done = asyncio.Event()

    def rejected(self, kind: InputKind) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A Mosquitto of this test's own (no size limit: the service's guard is under test)."""
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
async def running(atlas: Atlas, broker: MosquittoBroker,
                  tmp_path: Path) -> AsyncIterator[tuple[Service, Store, Refusals]]:
    """The service (timers and broker link, default guards) on the test's broker."""
    refusals = Refusals(FLOOD)
    async with await Store.open(tmp_path / "flood.db") as store:
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(),
                          clock=SystemClock(), observer=refusals)
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=broker.url, protocol="5",
                                              client_id="svc-flood", connected=connected))]
        await asyncio.wait_for(connected.wait(), 10)
        yield service, store, refusals
        assert not any(t.done() for t in tasks)  # nothing died on the way
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def record_bytes(path: Path) -> int:
    """The record's db file plus its WAL, after a checkpoint that empties the WAL."""
    with sqlite3.connect(path) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    assert busy == 0, "the checkpoint could not finish"
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def settled(service: Service, path: Path) -> int:
    """The record's size once everything written has been published (and marked)."""
    await eventually(service.drained, timeout=30, what="the outbox drained")
    return await asyncio.to_thread(record_bytes, path)


@pytest.mark.parametrize("topic", [topics.receipts("rx-flood"), topics.DETECTIONS,
                                   topics.OPERATOR], ids=["receipts", "detections", "operator"])
async def test_hundred_megabyte_inputs_grow_the_record_by_less_than_a_megabyte(
        broker: MosquittoBroker, running: tuple[Service, Store, Refusals], topic: str) -> None:
    """100 one-megabyte inputs from one client: refused, each one counted, a few kept as
    256-byte excerpts with their size; the record grows < 1 MB and alerting goes on."""
    service, store, refusals = running
    path = Path(store.path)
    before = await settled(service, path)
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="flooder") as client:
        for n in range(FLOOD):
            await client.publish(topic, b"%03d" % n + b"x" * (MEGABYTE - 3), qos=1)
        await asyncio.wait_for(refusals.done.wait(), 60)
        grown = await settled(service, path) - before
        await client.publish(topics.DETECTIONS, valid_detection("after-flood"), qos=1)
    print(f"\n{topic}: {FLOOD} x 1 MB refused, record grew {grown} bytes")
    assert grown < MEGABYTE
    rows = await store.views.rejected()
    counted = sum(c.count for c in await store.views.refusal_counts())
    assert len(rows) + counted == FLOOD  # every refusal is in the record, as a row or a count
    assert 0 < len(rows) < FLOOD
    assert {(len(r.raw), r.size) for r in rows} == {(EXCERPT_BYTES, MEGABYTE)}
    alerts = await eventually(lambda: store.views.outbox("after-flood", kind="alert"),
                              timeout=10, what="alerts for a detection after the flood")
    assert {a.prefecture for a in alerts} == {"01", "02"}
