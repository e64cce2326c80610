"""Each patch in `alertsim.mqtt.paho_compat` against a real Mosquitto, and proof it is needed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiomqtt
import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.paho_compat import PatchedClient, ack, enable_manual_ack, force_close
from alertsim.mqtt.url import parse_broker_url
from tests.helpers import receive

pytestmark = pytest.mark.mosquitto


def _name(what: str) -> str:
    return f"compat-{what}-{uuid.uuid4().hex[:8]}"


@contextmanager
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler while the block runs."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


@asynccontextmanager
async def hanging_up() -> AsyncIterator[int]:
    """A TCP port whose server accepts a connection and closes it without a CONNACK."""
    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _opened(client: aiomqtt.Client) -> aiomqtt.Client:
    """`client` connected, with no context manager left to send a DISCONNECT."""
    return await client.__aenter__()


async def test_patched_client_fails_at_once_when_dropped_before_connack() -> None:
    """A connection the server closes before its CONNACK fails the handshake at once."""
    async with hanging_up() as port:
        client = PatchedClient("127.0.0.1", port, identifier=_name("drop"), timeout=30)
        started = time.monotonic()
        with pytest.raises(aiomqtt.MqttError, match="before CONNACK"):
            await client.__aenter__()
        assert time.monotonic() - started < 5


async def test_plain_aiomqtt_still_waits_out_its_timeout_when_dropped() -> None:
    """aiomqtt 2.5.1 alone waits for the timeout (when this fails, drop the patch)."""
    async with hanging_up() as port:
        client = aiomqtt.Client("127.0.0.1", port, identifier=_name("plain-drop"), timeout=1)
        started = time.monotonic()
        with loop_errors(), pytest.raises(aiomqtt.MqttError, match="timed out"):
            await client.__aenter__()
        assert time.monotonic() - started >= 0.9


async def _publish_then_close(client: aiomqtt.Client, topic: str) -> None:
    """Queue a QoS 1 PUBLISH (paho asks for the socket writer), close the socket at once,
    then let the loop run the writer registration that aiomqtt scheduled."""
    await _opened(client)
    client._client.publish(topic, b"x", qos=1)
    force_close(client)
    for _ in range(3):
        await asyncio.sleep(0)


async def test_patched_client_skips_the_writer_of_a_closed_socket(
        mosquitto: MosquittoBroker) -> None:
    """A socket closed before its writer is registered is not watched: no loop error."""
    url = parse_broker_url(mosquitto.url)
    client = PatchedClient(url.host, url.port, identifier=_name("writer"))
    with loop_errors() as seen:
        await _publish_then_close(client, f"test/compat/{uuid.uuid4().hex[:8]}")
    assert seen == []


async def test_plain_aiomqtt_still_registers_the_writer_of_a_closed_socket(
        mosquitto: MosquittoBroker) -> None:
    """aiomqtt 2.5.1 alone watches a closed socket (when this fails, drop the patch)."""
    url = parse_broker_url(mosquitto.url)
    client = aiomqtt.Client(url.host, url.port, identifier=_name("plain-writer"))
    with loop_errors() as seen:
        await _publish_then_close(client, f"test/compat/{uuid.uuid4().hex[:8]}")
    assert seen, "aiomqtt registered no writer for the closed socket"


async def test_force_close_publishes_the_will(mosquitto: MosquittoBroker) -> None:
    """force_close drops the connection without DISCONNECT, so the broker sends the will."""
    url = parse_broker_url(mosquitto.url)
    topic = f"test/compat/will/{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(url.host, url.port, identifier=_name("watch")) as watcher:
        await watcher.subscribe(topic, qos=1)
        client = PatchedClient(url.host, url.port, identifier=_name("willer"),
                               will=aiomqtt.Will(topic, b"gone", qos=1))
        await _opened(client)
        force_close(client)
        force_close(client)  # a second call is a no-op
        [will] = await receive(watcher, 1)
    assert will.payload == b"gone"


async def test_manual_ack_holds_the_message_until_acked(mosquitto: MosquittoBroker) -> None:
    """With manual acks a QoS 1 message comes back to the session until `ack` is sent."""
    topic = f"test/compat/ack/{uuid.uuid4().hex[:8]}"
    settings = MqttSettings(url=mosquitto.url, client_id=_name("acker"), clean_start=False,
                            manual_ack=True)
    url = parse_broker_url(mosquitto.url)

    async def first_message() -> aiomqtt.Message:
        async with connect(settings) as client:
            await client.subscribe(topic, qos=1)
            async with aiomqtt.Client(url.host, url.port, identifier=_name("pub")) as pub:
                await pub.publish(topic, b"marker", qos=1)
            [message] = await receive(client, 1)
            return message

    async with connect(settings) as client:
        await client.subscribe(topic, qos=1)
        async with aiomqtt.Client(url.host, url.port, identifier=_name("pub")) as pub:
            await pub.publish(topic, b"kept", qos=1)
        [unacked] = await receive(client, 1)
    assert unacked.payload == b"kept"

    async with connect(settings) as client:
        [again] = await receive(client, 1)
        assert again.payload == b"kept"  # redelivered: never acknowledged
        ack(client, again.mid, again.qos)
    assert (await first_message()).payload == b"marker"  # acknowledged: not sent again


async def test_enable_manual_ack_switches_paho_to_manual(mosquitto: MosquittoBroker) -> None:
    """enable_manual_ack turns paho's manual acknowledgement on for the client."""
    url = parse_broker_url(mosquitto.url)
    client = aiomqtt.Client(url.host, url.port, identifier=_name("switch"))
    assert not client._client._manual_ack
    enable_manual_ack(client)
    assert client._client._manual_ack


async def test_max_inflight_messages_reaches_paho(mosquitto: MosquittoBroker) -> None:
    """MqttSettings.max_inflight_messages goes to paho through aiomqtt's public argument."""
    settings = MqttSettings(url=mosquitto.url, client_id=_name("window"),
                            max_inflight_messages=64)
    async with connect(settings) as client:
        assert client._client.max_inflight_messages == 64
        assert client.pending_calls_threshold >= 128
