"""Broker launchers: URL parsing, a real Mosquitto on a free port, and embedded amqtt."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiomqtt
import pytest

from alertsim.brokers import brokers
from alertsim.brokers.brokers import EmbeddedBroker, MosquittoBroker, free_port
from alertsim.brokers.output import OutputLog
from alertsim.domain.publication import Publication
from alertsim.errors import BrokerError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.protocol import Protocol
from tests.helpers import receive


def _client_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_module_exports() -> None:
    """`__all__` lists exactly the public launchers and helpers."""
    assert sorted(brokers.__all__) == sorted(
        ["DEFAULT_MQTT_PORT", "EmbeddedBroker", "MosquittoBroker", "free_port",
         "ready_lines"])


def test_free_port_can_be_bound() -> None:
    """free_port returns a loopback port that is not 1883 and can be bound right away."""
    port = free_port()
    assert port != 1883
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_lie_below_the_ephemeral_range() -> None:
    """Picked below the range the OS takes outgoing connections' local ports from, so a
    broker killed and restarted on its port never finds a client's connection there."""
    low, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(free_port() < low for _ in range(50))


def test_missing_mosquitto_binary_says_how_to_install(tmp_path: Path) -> None:
    """Without a mosquitto binary on the search path, start() raises BrokerError naming apt-get."""
    broker = MosquittoBroker(data_dir=tmp_path, search_path=str(tmp_path))
    with pytest.raises(BrokerError, match="apt-get install mosquitto"):
        broker.start()


def test_mosquitto_config_has_the_safe_settings(tmp_path: Path) -> None:
    """The generated config binds loopback on our port and raises the queue limits."""
    broker = MosquittoBroker(data_dir=tmp_path)
    text = broker.config_text()
    assert f"listener {broker.port} 127.0.0.1" in text
    for line in ("allow_anonymous true", "persistence true", "max_queued_messages 100000",
                 "max_inflight_messages 100", "per_listener_settings false"):
        assert line in text.splitlines()
    assert broker.url == f"mqtt://127.0.0.1:{broker.port}"


@pytest.mark.mosquitto
async def test_mosquitto_writes_its_log_and_database(tmp_path: Path) -> None:
    """Mosquitto can write its data directory (no silent drop to an unprivileged user)."""
    async with MosquittoBroker(data_dir=tmp_path) as broker:
        assert _accepts(broker.port)
        await asyncio.to_thread(broker.stop)
    assert "running" in (tmp_path / "mosquitto.log").read_text()
    assert (tmp_path / "mosquitto.db").exists()


@pytest.mark.mosquitto
def test_mosquitto_on_a_taken_port_raises_broker_error(tmp_path: Path) -> None:
    """If Mosquitto cannot listen (port taken), start() raises BrokerError with its output."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        broker = MosquittoBroker(port=holder.getsockname()[1], data_dir=tmp_path)
        try:
            with pytest.raises(BrokerError, match="exited with code"):
                broker.start()
            assert not broker.running
        finally:
            broker.close()


@pytest.mark.mosquitto
async def test_mosquitto_stop_then_start_keeps_the_port(tmp_path: Path) -> None:
    """stop() closes the port and start() listens on the same port again."""
    async with MosquittoBroker(data_dir=tmp_path) as broker:
        port = broker.port
        await asyncio.to_thread(broker.stop)
        assert not broker.running
        assert not _accepts(port)
        await asyncio.to_thread(broker.start)
        assert broker.port == port
        async with connect(MqttSettings(url=broker.url, client_id=_client_id("probe"))):
            pass


@pytest.mark.mosquitto
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_mosquitto_qos1_and_retained(
        mosquitto: MosquittoBroker, prefix: str, protocol: Protocol) -> None:
    """Mosquitto delivers a QoS 1 message live and a retained one to a later subscriber."""
    settings = MqttSettings(url=mosquitto.url, client_id=_client_id("pub"), protocol=protocol)
    async with connect(settings) as client:
        await publish(client, Publication(f"{prefix}/state", b"kept", retain=True),
                      protocol=protocol)
        await client.subscribe(f"{prefix}/#", qos=1)
        await publish(client, Publication(f"{prefix}/live", b"now"), protocol=protocol)
        received = await receive(client, 2)
    by_topic = {m.topic.value: m for m in received}
    assert by_topic[f"{prefix}/state"].payload == b"kept"
    assert by_topic[f"{prefix}/state"].retain
    assert by_topic[f"{prefix}/live"].payload == b"now"
    assert by_topic[f"{prefix}/live"].qos == 1


@pytest.mark.mosquitto
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_queued_message_survives_mosquitto_restart(
        tmp_path: Path, prefix: str, protocol: Protocol) -> None:
    """A QoS 1 message queued for an offline persistent session is delivered after restart()."""
    async with MosquittoBroker(data_dir=tmp_path) as broker:
        subscriber = MqttSettings(url=broker.url, client_id=_client_id("sub"),
                                  protocol=protocol, clean_start=False)
        async with connect(subscriber) as client:
            await client.subscribe(f"{prefix}/#", qos=1)
        publisher = MqttSettings(url=broker.url, client_id=_client_id("pub"), protocol=protocol)
        async with connect(publisher) as client:
            await publish(client, Publication(f"{prefix}/queued", b"while away"),
                          protocol=protocol)
            await publish(client, Publication(f"{prefix}/state", b"kept", retain=True),
                          protocol=protocol)
        port = broker.port
        await asyncio.to_thread(broker.restart)
        assert broker.port == port
        async with connect(subscriber) as client:
            # The retained message is also queued for the offline session, so two arrive.
            received = await receive(client, 2)
    assert {(m.topic.value, m.payload) for m in received} == {
        (f"{prefix}/queued", b"while away"), (f"{prefix}/state", b"kept")}


def test_mosquitto_config_without_persistence(tmp_path: Path) -> None:
    """persistence=False writes `persistence false` and keeps the other settings."""
    text = MosquittoBroker(data_dir=tmp_path, persistence=False).config_text().splitlines()
    assert "persistence false" in text
    assert "persistence true" not in text
    assert "max_queued_messages 100000" in text


async def _retain(url: str, topic: str) -> None:
    async with connect(MqttSettings(url=url, client_id=_client_id("pub"))) as client:
        await publish(client, Publication(topic, b"kept", retain=True))


async def _retained(url: str, topic: str) -> list[bytes]:
    """What a new subscriber to `topic` gets (a marker message ends the wait)."""
    async with connect(MqttSettings(url=url, client_id=_client_id("sub"))) as client:
        await client.subscribe([(topic, 1), (f"{topic}/end", 1)])
        await publish(client, Publication(f"{topic}/end", b""))
        received: list[aiomqtt.Message] = []
        async with asyncio.timeout(5):
            async for message in client.messages:
                if message.topic.value == f"{topic}/end":
                    break
                received.append(message)
    return [bytes(m.payload) for m in received if isinstance(m.payload, bytes)]


@pytest.mark.mosquitto
@pytest.mark.parametrize(("persistence", "how", "kept"), [
    (True, "restart", True), (False, "restart", False), (True, "kill", False)])
async def test_mosquitto_restart_keeps_retained_only_when_saved(
        tmp_path: Path, prefix: str, persistence: bool, how: str, kept: bool) -> None:
    """A retained message survives restart() with persistence; not without it, nor kill()."""
    async with MosquittoBroker(data_dir=tmp_path, persistence=persistence) as broker:
        await _retain(broker.url, f"{prefix}/state")
        if how == "kill":
            await asyncio.to_thread(broker.kill)
            assert not broker.running
            assert not _accepts(broker.port)
            await asyncio.to_thread(broker.start)
        else:
            await asyncio.to_thread(broker.restart)
        assert await _retained(broker.url, f"{prefix}/state") == ([b"kept"] if kept else [])


async def test_embedded_broker_qos1_and_retained(
        amqtt_broker: EmbeddedBroker, prefix: str) -> None:
    """amqtt in-process works with aiomqtt on MQTT 3.1.1 for QoS 1 and retained messages."""
    assert amqtt_broker.url == f"mqtt://127.0.0.1:{amqtt_broker.port}"
    settings = MqttSettings(url=amqtt_broker.url, client_id=_client_id("pub"), protocol="3.1.1")
    async with connect(settings) as client:
        await publish(client, Publication(f"{prefix}/state", b"kept", retain=True),
                      protocol="3.1.1")
    late = MqttSettings(url=amqtt_broker.url, client_id=_client_id("sub"), protocol="3.1.1")
    async with connect(late) as client:
        await client.subscribe(f"{prefix}/#", qos=1)
        retained = await receive(client, 1)
        await publish(client, Publication(f"{prefix}/live", b"now"), protocol="3.1.1")
        live = await receive(client, 1)
    assert (retained[0].topic.value, retained[0].payload, retained[0].retain) == (
        f"{prefix}/state", b"kept", True)
    assert (live[0].topic.value, live[0].payload, live[0].qos) == (f"{prefix}/live", b"now", 1)


async def test_embedded_broker_stops_listening() -> None:
    """Leaving the EmbeddedBroker context closes its port."""
    async with EmbeddedBroker() as broker:
        # An MQTT client, not a bare TCP probe: amqtt 0.12 leaks the server-side transport
        # of a connection that closes before sending CONNECT (ResourceWarning).
        settings = MqttSettings(url=broker.url, client_id=_client_id("probe"), protocol="3.1.1")
        async with connect(settings):
            pass
    assert not _accepts(broker.port)


def test_output_log_settles_when_the_output_ends(tmp_path: Path) -> None:
    """A process whose output ends before its ready line settles the wait at once (False),
    with what it said copied into the log file."""
    process = subprocess.Popen([sys.executable, "-c", "print('starting')"],
                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    output = OutputLog(process.stdout, tmp_path / "out.log", [re.compile(rb"running")],
                       name="test-output")
    assert output.wait(10.0) is False
    output.join()
    process.wait()
    assert (tmp_path / "out.log").read_text() == "starting\n"
