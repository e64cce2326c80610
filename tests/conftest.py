"""Shared fixtures: the prefecture atlas (parsed once) and brokers started per session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from alertsim.adapters.mqtt.brokers import EmbeddedBroker, MosquittoBroker
from alertsim.data import load_atlas
from alertsim.domain.prefectures import Atlas


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


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix no other test uses."""
    return f"test/{request.node.name}/{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def amqtt_broker() -> AsyncIterator[EmbeddedBroker]:
    """An amqtt broker (embedded, MQTT 3.1.1) in the test's event loop."""
    async with EmbeddedBroker() as broker:
        yield broker
