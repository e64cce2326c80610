"""Shared fixtures (the prefecture atlas parsed once, brokers started per session) and the
marks each test gets from its folder and the servers its fixtures start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from alertsim.brokers.brokers import EmbeddedBroker, MosquittoBroker
from alertsim.brokers.nats import NatsCluster
from alertsim.data import load_atlas
from alertsim.domain.prefectures import Atlas

TESTS = Path(__file__).resolve().parent
LEVELS = ("unit", "integration", "e2e")
# a test that uses one of these fixtures starts that server: it gets the mark
FIXTURE_MARKS = {"mosquitto": "mosquitto", "nats_cluster": "nats"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its level (the folder it is in: unit, integration or e2e), with
    the server its fixtures start (`mosquitto`, `nats`), and the slow ones with one xdist
    group."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(
            TESTS) else ""
        if folder in LEVELS:
            item.add_marker(folder)
        for fixture in getattr(item, "fixturenames", ()):
            if (mark := FIXTURE_MARKS.get(fixture)) and item.get_closest_marker(mark) is None:
                item.add_marker(mark)
        if item.get_closest_marker("slow") is not None:
            # The slow sweeps (fuzz, kills, broker faults, browser) are the CPU-heavy ones:
            # with `-n 2 --dist loadgroup` they run one after another on one worker, never
            # two at once, beside the other worker's drills.
            item.add_marker(pytest.mark.xdist_group("slow"))


@pytest.fixture(scope="session")
def atlas() -> Atlas:
    """The 47 prefectures from package data."""
    return load_atlas()


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoBroker]:
    """One real Mosquitto (Debian package) on a free port for the session, generated config."""
    broker = MosquittoBroker()
    broker.start()
    yield broker
    broker.close()


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[NatsCluster]:
    """Three nats-server nodes routed into one cluster, MQTT on each, ready to carry QoS 1;
    one for the session (its tests use topic roots and client ids of their own)."""
    nats = NatsCluster(nodes=3)
    asyncio.run(nats.start())
    yield nats
    nats.close()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses."""
    return f"test/{request.node.name}/{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def amqtt_broker() -> AsyncIterator[EmbeddedBroker]:
    """An amqtt broker (embedded, MQTT 3.1.1) in the test's event loop."""
    async with EmbeddedBroker() as broker:
        yield broker
