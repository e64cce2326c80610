"""`alertsim broker-config` against a real Mosquitto: passwords, ACL per role, TLS, serve.

Every "cannot publish" test is paired with a control message that the same client may
publish: the `monitor` observer (read-only on alertsim/v1/#) must see the control arrive
and must not see the forbidden messages, which were published before it on the same
connection (Mosquitto handles one connection's PUBLISHes in order), so no test can pass
because nothing arrived at all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from alertsim.bootstrap import ServeOptions, serve
from alertsim.brokers.broker_config import ROLES, acl_text, password_line, users
from alertsim.brokers.brokers import free_port, ready_lines
from alertsim.brokers.output import OutputLog, tail
from alertsim.cli import main
from alertsim.domain.publication import Publication
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.errors import BrokerError
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import incoming, publish, subscribe
from alertsim.service.config import ServiceConfig
from alertsim.testing import eventually, make_detection

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")
ROOT = "alertsim/v1"


SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Broker:
    """A running Mosquitto with a generated config; `url(user)` has that user's password."""

    directory: Path
    port: int
    credentials: dict[str, object]
    service_port: int = 0

    def url(self, user: str) -> str:
        users = self.credentials["users"]
        assert isinstance(users, dict)
        return str(users[user]["url"])

    @property
    def ca_file(self) -> Path | None:
        ca = self.credentials["ca_file"]
        return None if ca is None else Path(str(ca))

    def settings(self, user: str, client_id: str, *, ca: bool = True) -> MqttSettings:
        return MqttSettings(url=self.url(user), client_id=client_id, timeout_s=5.0,
                            ca_file=self.ca_file if ca else None)


def _start_mosquitto(conf: Path, port: int, out: Path) -> tuple[subprocess.Popen[bytes],
                                                                  OutputLog]:
    """Mosquitto on `conf`, its output (the generated config logs to stderr) copied to
    `out`; ready once its log says it listens on `port` and runs."""
    assert MOSQUITTO is not None
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    return process, OutputLog(process.stdout, out, ready_lines(port), name=f"mosquitto-{port}")


def _write_generated(directory: Path, *flags: str) -> tuple[int, int]:
    """`broker-config --out directory` on two free ports; (clients' port, services' port)."""
    port, service_port = free_port(), free_port()
    while service_port == port:
        service_port = free_port()
    assert main(["broker-config", "--out", str(directory), "--port", str(port),
                 "--service-port", str(service_port), *flags]) == 0
    conf = directory / "mosquitto.conf"
    if os.geteuid() == 0:  # else Mosquitto drops to user `mosquitto`: no access to 0600 files
        conf.write_text(conf.read_text(encoding="utf-8") + "user root\n", encoding="utf-8")
    return port, service_port


@asynccontextmanager
async def _broker(directory: Path, *flags: str) -> AsyncIterator[Broker]:
    port, service_port = _write_generated(directory, *flags)
    process, output = _start_mosquitto(directory / "mosquitto.conf", port,
                                       directory / "mosquitto.out")
    try:
        assert await asyncio.to_thread(output.wait, 10.0), tail(directory / "mosquitto.out")
        credentials = json.loads((directory / "credentials.json").read_text())
        yield Broker(directory, port, credentials, service_port)
    finally:
        process.kill()
        process.wait()
        output.join()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """A plain-TCP broker with the generated password file and ACL."""
    async with _broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """A TLS-only broker with the generated CA, server certificate, passwords and ACL."""
    async with _broker(tmp_path / "broker", "--tls") as running:
        yield running


@asynccontextmanager
async def _observer(broker: Broker) -> AsyncIterator[list[tuple[str, bytes]]]:
    """`monitor` subscribed to alertsim/v1/#; yields the list of what it has seen."""
    seen: list[tuple[str, bytes]] = []
    async with connect(broker.settings("monitor", "observer")) as client:
        await subscribe(client, f"{ROOT}/#")

        async def read() -> None:
            async for topic, payload in incoming(client):
                seen.append((topic, payload))

        reader = asyncio.create_task(read())
        try:
            yield seen
        finally:
            reader.cancel()


async def _send(client: Client, topic: str, payload: bytes) -> None:
    await publish(client, Publication(topic, payload, qos=1))


async def _send_forbidden(client: Client, topic: str) -> None:
    """Publish b"forbidden"; the broker may say so in its PUBACK (MQTT 5) or drop it."""
    try:
        await _send(client, topic, b"forbidden")
    except BrokerError as exc:  # PublishRefused: an MQTT 5 "not authorized" PUBACK
        if "refused" not in str(exc):
            raise


async def _check_denied(broker: Broker, user: str, forbidden: list[str],
                        allowed: str, client_id: str = "c1") -> list[tuple[str, bytes]]:
    """Publish each forbidden topic, then `allowed`; the observer sees only `allowed`."""
    async with _observer(broker) as seen, connect(broker.settings(user, client_id)) as client:
        for topic in forbidden:
            await _send_forbidden(client, topic)
        await _send(client, allowed, b"control")
        await eventually(lambda: (allowed, b"control") in seen, what=f"{user}'s control")
        assert [t for t, p in seen if p == b"forbidden"] == []
        return seen


def test_password_line_matches_mosquitto_format() -> None:
    """A password line is user:$7$101$base64(salt)$base64(PBKDF2-HMAC-SHA512)."""
    salt = bytes(range(12))
    line = password_line("alice", "pw", salt)
    user, rest = line.split(":", 1)
    _, kind, iterations, salt_b64, hash_b64 = rest.split("$")
    assert (user, kind, iterations) == ("alice", "7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(hash_b64) == hashlib.pbkdf2_hmac("sha512", b"pw", salt, 101)
    with pytest.raises(ValueError, match="user name"):
        password_line("a:b", "pw", salt)


def test_acl_has_every_user_and_the_receipt_pattern() -> None:
    """The ACL has a block per user and lets users write only their own receipt topic."""
    text = acl_text("x/y", users(3))
    for user in [*ROLES, "receiver-exercise-3", "receiver-test-2"]:
        assert f"user {user}\n" in text
    assert "user receiver-test-2\ntopic read x/y/test/alerts/#\n" in text
    receipts = [line for line in text.splitlines() if "/receipts/" in line]
    assert "topic write x/y/receipts/receiver-exercise-3" in receipts
    assert len(receipts) == 2 * 3 + 2  # each receiver its own; services read receipts/+
    assert "%c" not in text  # a client id is not an identity on the services listener
    assert "topic write x/y/test/alerts/#" not in text.split("user service-test")[0]


async def test_files_written_with_private_modes(broker: Broker) -> None:
    """credentials.json, passwd and keys are 0600; the config uses absolute paths only."""
    for name in ("credentials.json", "passwd", "passwd-services", "acl", "sensor.env"):
        assert stat.S_IMODE((broker.directory / name).stat().st_mode) == 0o600
    conf = (broker.directory / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    for line in conf.splitlines():
        if line.split(" ")[0] in ("password_file", "acl_file", "persistence_location"):
            assert Path(line.split(" ", 1)[1]).is_absolute(), line
    assert set(broker.credentials["users"]) == set(users())  # type: ignore[arg-type]
    assert conf.count("use_username_as_clientid true") == 1
    for needed in ("autosave_on_changes false", "autosave_interval 1",
                   "message_size_limit 65536"):
        assert needed in conf.splitlines(), needed


async def test_anonymous_refused(broker: Broker) -> None:
    """A client without credentials is refused."""
    with pytest.raises(BrokerError, match=r"[Nn]ot authori"):
        async with connect(MqttSettings(url=f"mqtt://127.0.0.1:{broker.port}",
                                        client_id="anon", timeout_s=5.0)):
            pass


async def test_wrong_password_refused(broker: Broker) -> None:
    """A known user with a wrong password is refused; the right one is accepted."""
    good = broker.url("sensor")
    bad = good.replace(good.split(":")[2].split("@")[0], "wrong-password")
    with pytest.raises(BrokerError, match=r"[Nn]ot authori") as caught:
        async with connect(MqttSettings(url=bad, client_id="s", timeout_s=5.0)):
            pass
    assert "wrong-password" not in str(caught.value)
    async with connect(MqttSettings(url=good, client_id="s", timeout_s=5.0)):
        pass


async def test_receiver_cannot_publish_alerts_state_detections_or_others_receipts(
        broker: Broker) -> None:
    """A receiver's alert, state, detection and another's receipt (even one named after the
    client id it asked for) never arrive; its own user's receipt does."""
    await _check_denied(broker, "receiver-exercise", [
        f"{ROOT}/exercise/alerts/13", f"{ROOT}/exercise/state/13", f"{ROOT}/detections",
        f"{ROOT}/receipts/someone-else", f"{ROOT}/receipts/phone-1", f"{ROOT}/operator",
        f"{ROOT}/service/status",
    ], allowed=f"{ROOT}/receipts/receiver-exercise", client_id="phone-1")


async def test_sensor_cannot_publish_alerts_or_operator_actions(broker: Broker) -> None:
    """A sensor's alert and operator action never arrive; its detection does."""
    await _check_denied(broker, "sensor", [
        f"{ROOT}/exercise/alerts/13", f"{ROOT}/test/alerts/national", f"{ROOT}/operator",
    ], allowed=f"{ROOT}/detections")


async def test_operator_cannot_publish_detections(broker: Broker) -> None:
    """An operator's detection and alert never arrive; its operator action does."""
    await _check_denied(broker, "operator", [
        f"{ROOT}/detections", f"{ROOT}/exercise/alerts/13",
    ], allowed=f"{ROOT}/operator")


async def test_exercise_service_cannot_write_the_test_tree(broker: Broker) -> None:
    """service-exercise's test alert and state never arrive; its exercise alert does."""
    await _check_denied(broker, "service-exercise", [
        f"{ROOT}/test/alerts/13", f"{ROOT}/test/state/13", f"{ROOT}/detections",
    ], allowed=f"{ROOT}/exercise/alerts/13")


async def test_receiver_reads_only_its_status(broker: Broker) -> None:
    """receiver-test gets the test alert but not the exercise one published before it."""
    async with connect(broker.settings("receiver-test", "tv-1")) as reader:
        await subscribe(reader, f"{ROOT}/#")
        seen: list[tuple[str, bytes]] = []

        async def read() -> None:
            async for message in incoming(reader):
                seen.append(message)

        task = asyncio.create_task(read())
        try:
            async with connect(broker.settings("service-exercise", "svc-x")) as ex, \
                    connect(broker.settings("service-test", "svc-t")) as te:
                await _send(ex, f"{ROOT}/exercise/alerts/13", b"exercise")
                await _send(te, f"{ROOT}/test/alerts/13", b"control")
                await eventually(lambda: (f"{ROOT}/test/alerts/13", b"control") in seen)
                assert [t for t, p in seen if p == b"exercise"] == []
        finally:
            task.cancel()


async def test_tls_with_generated_ca(tls_broker: Broker) -> None:
    """mqtts:// with the generated CA connects and publishes; default trust is refused."""
    url = tls_broker.url("sensor")
    assert url.startswith("mqtts://")
    async with _observer(tls_broker) as seen, \
            connect(tls_broker.settings("sensor", "s-tls")) as client:
        await _send(client, f"{ROOT}/detections", b"over-tls")
        await eventually(lambda: (f"{ROOT}/detections", b"over-tls") in seen)
    with pytest.raises(BrokerError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        async with connect(tls_broker.settings("sensor", "s-tls2", ca=False)):
            pass
    assert url.split(":")[2].split("@")[0] not in str(caught.value)
    assert stat.S_IMODE((tls_broker.directory / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tls_broker.directory / "ca.key").stat().st_mode) == 0o600


async def test_tls_plain_client_refused(tls_broker: Broker) -> None:
    """A plain mqtt:// client cannot talk to the TLS listener."""
    plain = tls_broker.url("sensor").replace("mqtts://", "mqtt://")
    with pytest.raises(BrokerError):
        async with connect(MqttSettings(url=plain, client_id="p", timeout_s=3.0)):
            pass


async def _serve_until_online(broker: Broker, options: ServeOptions) -> None:
    async with _observer(broker) as seen:
        task = asyncio.create_task(serve(options))
        try:
            await eventually(lambda: (f"{ROOT}/service/status", b'{"status":"online"}') in
                             [(t, p.replace(b" ", b"")) for t, p in seen] or task.done(),
                             timeout=20, what="service online")
            assert not task.done(), task.exception()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_serve_with_credentials_in_url(broker: Broker, tmp_path: Path) -> None:
    """`serve` as mqtt://service-exercise:PASSWORD@... publishes online."""
    options = ServeOptions(config=ServiceConfig(status="exercise"), db=tmp_path / "s.db",
                           broker_url=broker.url("service-exercise"), client_id="svc")
    await _serve_until_online(broker, options)


async def test_serve_with_credentials_in_options_over_tls(tls_broker: Broker,
                                                          tmp_path: Path) -> None:
    """`serve` with username/password/ca_file options (the env settings' path) over TLS."""
    users = tls_broker.credentials["users"]
    assert isinstance(users, dict)
    options = ServeOptions(config=ServiceConfig(status="exercise"), db=tmp_path / "s.db",
                           broker_url=f"mqtts://127.0.0.1:{tls_broker.service_port}",
                           client_id="svc", username="service-exercise",
                           password=users["service-exercise"]["password"],
                           ca_file=tls_broker.ca_file)
    await _serve_until_online(tls_broker, options)


async def test_signed_drill_passes_on_the_generated_config(broker: Broker,
                                                           tmp_path: Path) -> None:
    """A drill as the `drill` role on the access-controlled broker passes end to end, its
    alerts signed with the run's key and every one verified by its receivers."""
    out = io.StringIO()
    outcome = await run_drill(DrillOptions(
        scenario_path=SCENARIOS / "2017-08-29-hwasong-12.yaml", speed=240.0,
        broker_url=broker.url("drill"), reports_dir=tmp_path, quiet_s=0.3, out=out))
    assert outcome.passed, out.getvalue()
    assert outcome.key_id is not None
    assert outcome.rejected == ()
    assert outcome.verified > 0


async def test_detect_takes_credentials_from_the_environment(
        tls_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`alertsim detect` as the sensor, with ALERTSIM_MQTT_USERNAME / _PASSWORD /
    _CA_FILE and an mqtts:// URL without credentials: the detection arrives."""
    users = tls_broker.credentials["users"]
    assert isinstance(users, dict)
    monkeypatch.setenv("ALERTSIM_MQTT_USERNAME", "sensor")
    monkeypatch.setenv("ALERTSIM_MQTT_PASSWORD", str(users["sensor"]["password"]))
    monkeypatch.setenv("ALERTSIM_MQTT_CA_FILE", str(tls_broker.ca_file))
    path = tmp_path / "d.json"
    detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="env-creds")
    path.write_text(detection.model_dump_json(), "utf-8")
    async with _observer(tls_broker) as seen:
        code = await asyncio.to_thread(
            main, ["detect", str(path), "--broker", f"mqtts://127.0.0.1:{tls_broker.port}",
                   "--no-wait"])  # no service here: the credentials are what is tested
        assert code == 0
        await eventually(lambda: any(t == f"{ROOT}/detections" for t, _ in seen),
                         what="the detection at the monitor")


def _env_file(path: Path) -> dict[str, str]:
    """The NAME=value lines of a generated env file."""
    return dict(line.split("=", 1) for line in path.read_text("utf-8").splitlines())


async def test_env_file_alone_connects_with_real_paths(
        tls_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sensor.env names the real CA file and the sensor's listener: `detect` with nothing
    but its settings in the environment delivers a detection."""
    env = _env_file(tls_broker.directory / "sensor.env")
    assert env["ALERTSIM_MQTT_CA_FILE"] == str(tls_broker.directory / "ca.crt")
    assert (tls_broker.directory / "ca.crt").read_bytes().startswith(b"-----BEGIN")
    assert env["ALERTSIM_BROKER_URL"] == f"mqtts://127.0.0.1:{tls_broker.port}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "d.json"
    detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="env-file")
    path.write_text(detection.model_dump_json(), "utf-8")
    async with _observer(tls_broker) as seen:
        # No service here: `--no-wait`, the env file's settings are what is tested.
        assert await asyncio.to_thread(main, ["detect", str(path), "--no-wait"]) == 0
        await eventually(lambda: any(t == f"{ROOT}/detections" for t, _ in seen),
                         what="the detection at the monitor")


async def test_each_listener_knows_only_its_users(broker: Broker) -> None:
    """A receiver's password is refused on the services listener and a service's on the
    clients listener: only services and drills may choose their client ids."""
    receiver = broker.url("receiver-exercise").replace(f":{broker.port}",
                                                       f":{broker.service_port}")
    service = broker.url("service-exercise").replace(f":{broker.service_port}",
                                                     f":{broker.port}")
    for url in (receiver, service):
        with pytest.raises(BrokerError, match=r"[Nn]ot authori"):
            async with connect(MqttSettings(url=url, client_id="x", timeout_s=5.0)):
                pass
