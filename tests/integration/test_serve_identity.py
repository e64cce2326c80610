"""One client id, one `serve`: a second one on the same identity is refused at start,
a restart after a crash is not, redundant services (other ids) are not; a takeover that
the broker reports (MQTT 5 DISCONNECT 0x8E) is told apart. Real Mosquitto, `alertsim serve` as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from alertsim.bootstrap import default_client_id
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain.notices import ServiceStatus
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.errors import BrokerError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.errors import SessionTakenOver, broker_error
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually
from tests.helpers import restore_sigint

pytestmark = [pytest.mark.timeout(90)]

ONLINE = ServiceStatus(status="online").model_dump_json().encode()


class Serve:
    """One `alertsim serve` subprocess with JSON logs in a file."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.log = tmp / f"{name}.log"
        self.db = tmp / f"{name}.db"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, url: str, root: str, client_id: str, *extra: str) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "alertsim", "serve", "--broker", url,
                "--db", str(self.db), "--topic-root", root, "--status", "test", *extra,
                env={**os.environ, "ALERTSIM_CLIENT_ID": client_id,
                     "ALERTSIM_LOG_FORMAT": "json"},
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=restore_sigint)

    def events(self) -> list[str]:
        """The `event` of every JSON log line so far."""
        found = []
        for line in self.log.read_text("utf-8", "replace").splitlines():
            try:
                found.append(str(json.loads(line)["event"]))
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def connected(self) -> bool:
        assert self.process is not None
        assert self.process.returncode is None, self.log.read_text("utf-8", "replace")
        return "broker.connected" in self.events()

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 20)


@asynccontextmanager
async def serving(tmp: Path, name: str, url: str, root: str,
                  client_id: str) -> AsyncIterator[Serve]:
    """A `serve` that has connected (said online); stopped on exit."""
    serve = Serve(tmp, name)
    await serve.start(url, root, client_id)
    try:
        await eventually(serve.connected, timeout=30, what=f"{name} connected")
        yield serve
    finally:
        await serve.stop()


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"identity/{tag}", f"svc-{tag}"


async def test_a_second_serve_on_the_same_identity_exits_with_a_clear_error(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """A second `serve` with a running one's client id exits 2 naming the id and how to
    pick another; the first is never disconnected and keeps serving."""
    root, client_id = _ids()
    await second_serve_is_refused(tmp_path, mosquitto.url, root, client_id)


async def second_serve_is_refused(tmp: Path, url: str, root: str, client_id: str) -> None:
    """Beside a running `serve`, a second one with its client id exits 2 naming the id and
    `--client-id`, never connects, and the first is never disconnected."""
    async with serving(tmp, "first", url, root, client_id) as first:
        second = Serve(tmp, "second")
        await second.start(url, root, client_id)
        assert second.process is not None
        code = await asyncio.wait_for(second.process.wait(), 30)
        told = second.log.read_text("utf-8")
        assert code == 2, told
        assert client_id in told
        assert "--client-id" in told
        assert not {"broker.connected", "service.identity_unchecked"} & set(second.events())
        assert first.connected()  # still running
        assert not {"broker.disconnected", "service.taken_over"} & set(first.events())


async def test_a_stale_online_status_does_not_block_a_restart(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """A retained `online` left by a crashed service (nobody answers the ping) does not
    stop a new `serve` with that client id from starting."""
    root, client_id = _ids()
    settings = MqttSettings(url=mosquitto.url, client_id=f"stale-{client_id}")
    async with connect(settings) as client:
        await publish(client, Publication(TopicTree(root).service_status, ONLINE,
                                          retain=True))
    async with serving(tmp_path, "restarted", mosquitto.url, root, client_id) as serve:
        assert "service.identity_unchecked" not in serve.events()


async def test_services_with_their_own_ids_both_run(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """Redundant services (one topic tree, the shared status online, different client ids)
    both start and stay connected."""
    root, client_id = _ids()
    async with serving(tmp_path, "a", mosquitto.url, root, f"{client_id}-a") as a, \
            serving(tmp_path, "b", mosquitto.url, root, f"{client_id}-b") as b:
        assert a.connected()
        assert b.connected()
        assert "service.taken_over" not in a.events() + b.events()


def test_a_disconnect_for_a_takeover_is_told_apart() -> None:
    """A lost connection whose cause is the broker's DISCONNECT 0x8E (session taken over)
    becomes SessionTakenOver, which the link logs as `service.taken_over`; any other
    reason stays a plain BrokerError. (Mosquitto 2.0.11 closes the old socket without
    sending that DISCONNECT, so this is checked on the mapping, not on the wire.)"""
    def lost(code: int) -> aiomqtt.MqttError:
        cause = aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=code))
        try:
            raise aiomqtt.MqttError("Disconnected during message iteration") from cause
        except aiomqtt.MqttError as exc:
            return exc

    assert isinstance(broker_error("lost", lost(0x8E)), SessionTakenOver)
    assert type(broker_error("lost", lost(0x80))) is BrokerError


def test_the_default_client_id_is_stable_per_host_and_record(tmp_path: Path) -> None:
    """The default id is the same for the same host and record (a persistent session), and
    differs for another record or host; it looks like alertsim-service-<8 hex>."""
    one = default_client_id(tmp_path / "a.db", "host-1")
    assert one == default_client_id(tmp_path / "a.db", "host-1")
    assert one != default_client_id(tmp_path / "b.db", "host-1")
    assert one != default_client_id(tmp_path / "a.db", "host-2")
    assert one.startswith("alertsim-service-")
    assert len(one) == len("alertsim-service-") + 8


async def test_a_clean_stop_leaves_the_status_offline(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """After Ctrl-C the retained status says offline (not the `online` a will only
    replaces after a crash), so a client that waits for the service is told at once."""
    root, client_id = _ids()
    async with serving(tmp_path, "first", mosquitto.url, root, client_id):
        pass  # connected (online published), then stopped with SIGINT
    status_topic = TopicTree(root).service_status
    seen: list[bytes] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port,
                              identifier=f"status-{uuid.uuid4().hex[:6]}") as client:
        await client.subscribe(status_topic, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen.append(message.payload)
                break
    assert json.loads(seen[0])["status"] == "offline"
