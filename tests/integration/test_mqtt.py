"""The aiomqtt shell: properties per protocol, error mapping, negotiation, backoff, reconnect."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.properties import Properties

from alertsim.brokers.brokers import EmbeddedBroker, MosquittoBroker, free_port
from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.logs import captured_logs
from alertsim.mqtt import client as mqtt_client
from alertsim.mqtt import messages as mqtt_messages
from alertsim.mqtt import negotiation as mqtt_negotiation
from alertsim.mqtt import protocol as mqtt_protocol
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import incoming, publish
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.mqtt.reconnect import backoff_delays, reconnecting
from alertsim.testing import eventually
from tests.helpers import receive


def _client_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _props(props: Properties | None) -> dict[str, object]:
    """The MQTT 5 properties this module sets, by name (paho's attributes are dynamic)."""
    assert props is not None
    names = ("MessageExpiryInterval", "ContentType", "UserProperty")
    return {name: getattr(props, name) for name in names if hasattr(props, name)}


class _Highest(random.Random):
    """A Random whose uniform(a, b) is always b: exposes the backoff ceiling."""

    def random(self) -> float:
        return 1.0


class _Lowest(random.Random):
    """A Random whose uniform(a, b) is always a."""

    def random(self) -> float:
        return 0.0


def test_module_exports() -> None:
    """Each module of the transport's `__all__` lists exactly its public names."""
    assert sorted(mqtt_client.__all__) == [
        "Client", "DISCONNECT_TIMEOUT_S", "MqttSettings", "connect"]
    assert sorted(mqtt_messages.__all__) == [
        "Received", "acknowledge", "incoming", "publish", "received", "subscribe"]
    assert sorted(mqtt_negotiation.__all__) == ["negotiate_protocol", "wait_for_protocol"]
    assert sorted(mqtt_protocol.__all__) == [
        "Protocol", "VERSIONS", "new_properties", "properties_of"]


@pytest.mark.parametrize(("initial", "maximum", "factor", "ceilings"), [
    (0.2, 10.0, 2.0, [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]),
    (1.0, 5.0, 3.0, [1.0, 3.0, 5.0, 5.0]),
    (0.5, 0.5, 2.0, [0.5, 0.5, 0.5]),
    (0.3, 10.0, 1.0, [0.3, 0.3, 0.3]),
])
def test_backoff_ceilings(initial: float, maximum: float, factor: float,
                          ceilings: list[float]) -> None:
    """Attempt n waits at most min(maximum, initial * factor**n), and at least 0."""
    high = backoff_delays(rng=_Highest(), initial=initial, maximum=maximum, factor=factor)
    assert list(itertools.islice(high, len(ceilings))) == pytest.approx(ceilings)
    low = backoff_delays(rng=_Lowest(), initial=initial, maximum=maximum, factor=factor)
    assert list(itertools.islice(low, len(ceilings))) == [0.0] * len(ceilings)


def test_backoff_defaults_are_jittered_and_reproducible() -> None:
    """Default backoff stays within its ceilings, varies, and repeats for the same seed."""
    first = list(itertools.islice(backoff_delays(rng=random.Random(7)), 200))
    again = list(itertools.islice(backoff_delays(rng=random.Random(7)), 200))
    assert first == again
    assert all(0.0 <= d <= min(10.0, 0.2 * 2.0**n) for n, d in enumerate(first))
    assert len(set(first[10:])) > 100
    assert max(first) > 5.0


@pytest.mark.parametrize(("initial", "maximum", "factor"), [
    (0.0, 10.0, 2.0), (-1.0, 10.0, 2.0), (2.0, 1.0, 2.0), (0.2, 10.0, 0.5),
])
def test_backoff_rejects_bad_parameters(initial: float, maximum: float, factor: float) -> None:
    """Non-positive initial, maximum below initial, or factor below 1 raise ValueError."""
    with pytest.raises(ValueError, match="initial"):
        next(backoff_delays(rng=random.Random(0), initial=initial, maximum=maximum,
                            factor=factor))


def test_properties_only_under_mqtt5() -> None:
    """MQTT 5 properties are built for protocol "5" and never for "3.1.1" or plain messages."""
    message = Publication("t", b"x", expiry_s=60, content_type="application/json",
                              user_properties=(("event", "e1"), ("stage", "shelter")))
    assert mqtt_protocol.properties_of(message, "3.1.1") is None
    assert mqtt_protocol.properties_of(Publication("t", b"x"), "5") is None
    assert _props(mqtt_protocol.properties_of(message, "5")) == {
        "MessageExpiryInterval": 60,
        "ContentType": "application/json",
        "UserProperty": [("event", "e1"), ("stage", "shelter")],
    }


@pytest.mark.mosquitto
async def test_negotiate_protocol_mosquitto_speaks_5(mosquitto: MosquittoBroker) -> None:
    """Mosquitto accepts an MQTT 5 CONNECT, so negotiation gives "5"."""
    assert await negotiate_protocol(mosquitto.url) == "5"


async def test_negotiate_protocol_amqtt_falls_back(amqtt_broker: EmbeddedBroker) -> None:
    """amqtt refuses MQTT 5, so negotiation falls back to "3.1.1"."""
    assert await negotiate_protocol(amqtt_broker.url) == "3.1.1"


async def test_negotiate_protocol_no_broker() -> None:
    """With nothing listening, negotiation raises BrokerError."""
    with pytest.raises(BrokerError, match="refused both"):
        await negotiate_protocol(f"mqtt://127.0.0.1:{free_port()}", timeout_s=2.0)


async def test_connect_no_broker_raises_broker_error() -> None:
    """Connecting to a closed port raises BrokerError caused by aiomqtt's error."""
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{free_port()}", client_id=_client_id("c"))
    with pytest.raises(BrokerError) as info:
        async with connect(settings):
            pass
    assert isinstance(info.value.__cause__, aiomqtt.MqttError)


async def test_connect_mqtt5_to_amqtt_raises_broker_error(amqtt_broker: EmbeddedBroker) -> None:
    """An MQTT 5 CONNECT refused by a 3.1.1-only broker surfaces as BrokerError."""
    settings = MqttSettings(url=amqtt_broker.url, client_id=_client_id("c"), protocol="5")
    with pytest.raises(BrokerError):
        async with connect(settings):
            pass


@pytest.mark.mosquitto
async def test_mqtt5_properties_reach_subscriber(mosquitto: MosquittoBroker, prefix: str) -> None:
    """Expiry, content type and user properties published under MQTT 5 reach a v5 subscriber."""
    settings = MqttSettings(url=mosquitto.url, client_id=_client_id("c"))
    message = Publication(f"{prefix}/alert", b"{}", expiry_s=600,
                              content_type="application/json",
                              user_properties=(("event", "e1"),))
    async with connect(settings) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        await publish(client, message)
        [received] = await receive(client, 1)
    assert received.payload == b"{}"
    props = _props(received.properties)
    assert props["ContentType"] == "application/json"
    assert props["UserProperty"] == [("event", "e1")]
    # Mosquitto forwards the remaining lifetime, which can only have shrunk.
    assert props["MessageExpiryInterval"] in range(1, 601)


async def test_mqtt311_publish_drops_properties(amqtt_broker: EmbeddedBroker,
                                                prefix: str) -> None:
    """Under 3.1.1 a message with MQTT 5 fields still publishes (QoS 1), without them."""
    settings = MqttSettings(url=amqtt_broker.url, client_id=_client_id("c"), protocol="3.1.1")
    message = Publication(f"{prefix}/alert", b"{}", expiry_s=600,
                              content_type="application/json", user_properties=(("k", "v"),))
    async with connect(settings) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        await publish(client, message, protocol="3.1.1")
        [received] = await receive(client, 1)
    assert (received.payload, received.qos) == (b"{}", 1)


@pytest.mark.mosquitto
async def test_publish_after_broker_stopped_raises_broker_error(tmp_path: Path,
                                                                prefix: str) -> None:
    """Publishing once the broker has gone raises BrokerError, not an aiomqtt error."""
    async with MosquittoBroker(data_dir=tmp_path) as broker:
        settings = MqttSettings(url=broker.url, client_id=_client_id("c"))
        async with connect(settings) as client:
            await asyncio.to_thread(broker.stop)
            with pytest.raises(BrokerError, match="lost the broker"):
                async with asyncio.timeout(5):
                    await anext(incoming(client))  # returns once the client saw the loss
            with pytest.raises(BrokerError) as info:
                await publish(client, Publication(f"{prefix}/x", b"x"), timeout_s=2.0)
    assert isinstance(info.value.__cause__, aiomqtt.MqttError)


@pytest.mark.mosquitto
async def test_will_is_published_when_connection_is_taken_over(
        mosquitto: MosquittoBroker, prefix: str) -> None:
    """The last will (retained "offline") is published when the connection drops uncleanly."""
    status = f"{prefix}/service/status"
    will = Publication(status, b"offline", retain=True)
    client_id = _client_id("service")
    service = MqttSettings(url=mosquitto.url, client_id=client_id, will=will)
    async with connect(service) as client:
        await publish(client, Publication(status, b"online", retain=True))
        # A second connection with the same client id takes the session over; the broker
        # drops the first connection without DISCONNECT, which triggers its will.
        async with connect(MqttSettings(url=mosquitto.url, client_id=client_id)):
            pass
    watcher = MqttSettings(url=mosquitto.url, client_id=_client_id("watcher"))
    async with connect(watcher) as client:
        await client.subscribe(status, qos=1)
        [received] = await receive(client, 1)
    assert (received.payload, received.retain) == (b"offline", True)


def _failing(outcomes: list[BaseException | str], calls: list[bool], *,
             up_on: frozenset[int] = frozenset(),
             ) -> Callable[[Callable[[], None]], Coroutine[Any, Any, str]]:
    """A session that raises (or returns) the next outcome; calls `up()` on the given attempts."""

    async def session(up: Callable[[], None]) -> str:
        attempt = len(calls)
        calls.append(True)
        if attempt in up_on:
            up()
        outcome = outcomes[attempt]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return session


async def test_reconnecting_retries_broker_errors_then_returns() -> None:
    """BrokerError, alone or in a TaskGroup's group, is retried; the session's value returns."""
    calls: list[bool] = []
    outcomes: list[BaseException | str] = [
        BrokerError("refused"), ExceptionGroup("tg", [BrokerError("lost")]), "done"]
    with captured_logs() as logs:
        result = await reconnecting(_failing(outcomes, calls), what="probe", rng=_Lowest(),
                                    url="mqtt://x")
    assert (result, len(calls)) == ("done", 3)
    assert [(e["event"], e["what"], e["error"], e["retry_in_s"], e["url"]) for e in logs] == [
        ("broker.unreachable", "probe", "refused", 0.0, "mqtt://x"),
        ("broker.unreachable", "probe", "lost", 0.0, "mqtt://x")]


async def test_reconnecting_backoff_starts_again_after_up() -> None:
    """Delays grow while attempts fail; after a session that called up() they start again."""
    calls: list[bool] = []
    outcomes: list[BaseException | str] = [BrokerError("a"), BrokerError("b"),
                                           BrokerError("c"), "done"]
    with captured_logs() as logs:
        await reconnecting(_failing(outcomes, calls, up_on=frozenset({2})), what="link",
                           rng=_Highest(), initial=0.01, maximum=0.04)
    assert [(e["event"], e["retry_in_s"]) for e in logs] == [
        ("broker.unreachable", 0.01), ("broker.unreachable", 0.02),
        ("broker.disconnected", 0.01)]


async def test_reconnecting_lets_other_errors_through() -> None:
    """An error that is not a BrokerError ends the loop at once."""
    calls: list[bool] = []
    with pytest.raises(ValueError, match="bug"):
        await reconnecting(_failing([ValueError("bug")], calls), what="x", rng=_Lowest())
    assert len(calls) == 1


async def test_reconnecting_cancelled_during_backoff() -> None:
    """Cancelling during a (long) backoff sleep ends the loop at once."""
    calls: list[bool] = []
    with captured_logs() as logs:
        task = asyncio.create_task(reconnecting(
            _failing([BrokerError("down")] * 2, calls), what="x", rng=_Highest(),
            initial=60.0, maximum=60.0))
        await eventually(lambda: logs, what="the first retry logged")
        task.cancel()
        async with asyncio.timeout(1):
            with pytest.raises(asyncio.CancelledError):
                await task
    assert len(calls) == 1


async def test_reconnecting_does_not_retry_a_lost_cancellation() -> None:
    """A session that turns its cancellation into a BrokerError is not run again."""
    calls: list[bool] = []
    started = asyncio.Event()

    async def session(up: Callable[[], None]) -> None:
        calls.append(True)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # What a TaskGroup does when a child failed as its parent was cancelled.
            raise BrokerError("lost while cancelled") from None

    task = asyncio.create_task(reconnecting(session, what="x", rng=_Lowest()))
    await started.wait()
    task.cancel()
    async with asyncio.timeout(1):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(calls) == 1
