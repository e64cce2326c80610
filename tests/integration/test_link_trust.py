"""The service link's trust edges: a publish the broker refuses is never counted as
published, /metrics listens on loopback unless told otherwise, a private key others can
read is refused. Real Mosquitto with the config `alertsim broker-config` generates."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alertsim.adapters.sqlite.store import Store
from alertsim.bootstrap import metrics
from alertsim.brokers.brokers import MosquittoBroker, free_port, ready_lines
from alertsim.brokers.output import OutputLog, tail
from alertsim.cli import main
from alertsim.domain import topics
from alertsim.domain.publication import Publication
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.url import parse_broker_url
from alertsim.signing import generate, load_signing_key
from alertsim.testing import eventually, make_detection
from tests.helpers import restore_sigint

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
pytestmark = [pytest.mark.timeout(120)]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Generated:
    """A Mosquitto running the generated config (ACL per role); `url(user)` has the
    password; `reload()` makes it read its ACL file again (SIGHUP)."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    users: dict[str, dict[str, str]]

    def url(self, user: str) -> str:
        return self.users[user]["url"]

    def allow(self, user: str, rule: str) -> None:
        acl = self.directory / "acl"
        acl.write_text(acl.read_text("utf-8").replace(f"user {user}\n",
                                                      f"user {user}\ntopic {rule}\n", 1))
        self.process.send_signal(signal.SIGHUP)


@asynccontextmanager
async def generated_broker(directory: Path) -> AsyncIterator[Generated]:
    """`alertsim broker-config` in `directory`, and Mosquitto on it until the block ends."""
    if MOSQUITTO is None:
        pytest.skip("needs the mosquitto binary")
    port = free_port()
    assert main(["broker-config", "--out", str(directory), "--port", str(port)]) == 0
    conf = directory / "mosquitto.conf"
    if os.geteuid() == 0:  # else Mosquitto drops to user `mosquitto`: no access to 0600 files
        conf.write_text(conf.read_text("utf-8") + "user root\n", "utf-8")
    process = subprocess.Popen([MOSQUITTO, "-c", str(conf)],  # noqa: ASYNC220 - returns at once
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    assert process.stdout is not None
    out = directory / "mosquitto.out"
    output = OutputLog(process.stdout, out, ready_lines(port), name=f"mosquitto-{port}")
    try:
        assert await asyncio.to_thread(output.wait, 10.0), tail(out)
        users = json.loads((directory / "credentials.json").read_text("utf-8"))["users"]
        yield Generated(directory, port, process, users)
    finally:
        process.kill()
        process.wait()
        output.join()


@contextmanager
def serve_process(log: Path, *args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`alertsim serve ARGS` with JSON logs in `log`; SIGINT and waited for on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "alertsim", "serve", *args], stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "ALERTSIM_LOG_FORMAT": "json", **env},
            preexec_fn=restore_sigint)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


def logged(log: Path, event: str) -> list[dict[str, object]]:
    """Every JSON log line of `event` in `log`."""
    found = []
    for line in log.read_text("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            found.append(entry)
    return found


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.mosquitto
async def test_a_refused_publish_is_not_marked_published_and_is_retried(
        tmp_path: Path) -> None:
    """Under MQTT 5, alerts the broker's ACL refuses (PUBACK 0x87) stay pending (outbox
    depth, record), are logged with the reason code and counted, are tried again with
    backoff, and go out and are marked once the ACL allows them."""
    async with generated_broker(tmp_path / "broker") as broker:
        log, db = tmp_path / "serve.log", tmp_path / "serve.db"
        # service-exercise may not write the test tree: every alert and state is refused.
        env = {"ALERTSIM_MQTT_USERNAME": "service-exercise", "ALERTSIM_CLIENT_ID": "svc-acl",
               "ALERTSIM_MQTT_PASSWORD": broker.users["service-exercise"]["password"]}
        service_url = parse_broker_url(broker.url("service-exercise")).without_credentials()
        with serve_process(log, "--broker", service_url, "--db", str(db), "--status", "test", "--protocol", "5",
                           "--metrics-port", "0", env=env):
            await eventually(lambda: logged(log, "broker.connected"), timeout=30,
                             what="serve connected")
            url = str(logged(log, "metrics.listening")[0]["url"])
            detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100,
                                       event_id="refused-1", launch_time=datetime.now(UTC))
            # (the generated config may require client id = user name for clients)
            sensor = MqttSettings(url=broker.url("sensor"), client_id="sensor")
            async with connect(sensor) as client:
                await publish(client, Publication(topics.DETECTIONS,
                                                  detection.model_dump_json().encode()))

            def retried() -> bool:
                return any(e["kind"] == "alert" and e["attempt"] == 2
                           for e in logged(log, "outbox.publish_refused"))

            await eventually(retried, timeout=30, what="an alert refused a second time")
            refusal = next(e for e in logged(log, "outbox.publish_refused")
                           if e["kind"] == "alert")
            assert (refusal["reason_code"], refusal["reason"]) == ("0x87", "Not authorized")
            samples = await asyncio.to_thread(scrape, url)
            assert value(samples, "alertsim_published_total", kind="alert") == 0
            assert value(samples, "alertsim_publish_refused_total",
                         reason="Not authorized") >= 4  # two alerts, twice
            assert value(samples, "alertsim_outbox_depth") >= 2

            broker.allow("service-exercise", "write alertsim/v1/test/#")

            def drained() -> Samples | None:
                got = scrape(url)
                done = value(got, "alertsim_published_total", kind="alert") == 2 and \
                    value(got, "alertsim_outbox_depth") == 0
                return got if done else None

            await eventually(lambda: asyncio.to_thread(drained), timeout=60,
                             what="the refused alerts published once allowed")
    async with await Store.open(db) as store:
        assert await store.record.unpublished() == []
        alerts = await store.views.outbox(kind="alert")
    assert len(alerts) == 2


async def test_metrics_listen_on_loopback_by_default() -> None:
    """`metrics()` binds 127.0.0.1 and says so: another loopback address (127.0.0.2) is
    refused, which a wildcard bind would accept."""
    async with metrics(0) as endpoint:
        assert endpoint is not None
        assert endpoint.url.startswith("http://127.0.0.1:")
        port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
        assert await asyncio.to_thread(scrape, endpoint.url) is not None
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(scrape, f"http://127.0.0.2:{port}/metrics")


@pytest.mark.mosquitto
@pytest.mark.parametrize("how", ["flag", "env"])
async def test_metrics_host_is_honoured_and_logged(how: str, mosquitto: MosquittoBroker,
                                                   tmp_path: Path) -> None:
    """`serve --metrics-host 0.0.0.0` (or ALERTSIM_METRICS_HOST) binds every interface and
    its log line says so: 127.0.0.2 reaches it too."""
    log = tmp_path / "serve.log"
    flag = ["--metrics-host", "0.0.0.0"] if how == "flag" else []
    env = {"ALERTSIM_CLIENT_ID": f"metrics-host-{how}"}
    if how == "env":
        env["ALERTSIM_METRICS_HOST"] = "0.0.0.0"
    with serve_process(log, "--broker", mosquitto.url, "--db", str(tmp_path / "m.db"),
                       "--status", "test", "--metrics-port", "0", *flag, env=env):
        found = await eventually(lambda: logged(log, "metrics.listening"), timeout=30,
                                 what="the metrics.listening line")
    line = found[0]
    assert (line["host"], line["all_interfaces"]) == ("0.0.0.0", True)
    assert str(line["url"]).startswith("http://0.0.0.0:")


async def test_metrics_on_every_interface_answer_on_any_loopback() -> None:
    """With host 0.0.0.0, /metrics answers on 127.0.0.2 too (the control for the default)."""
    async with metrics(0, "0.0.0.0") as endpoint:
        assert endpoint is not None
        port = int(endpoint.url.rsplit(":", 1)[1].split("/")[0])
        samples = await asyncio.to_thread(scrape, f"http://127.0.0.2:{port}/metrics")
    assert ("alertsim_outbox_depth", ()) in samples


def test_a_signing_key_others_can_read_is_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --signing-key` with a 0644 key exits 2 naming the file and `chmod 600`,
    before connecting to anything; the same file at 0600 loads."""
    key = tmp_path / "signing.key"
    signer = generate()
    key.write_bytes(signer.private_pem())
    key.chmod(0o644)
    args = ["serve", "--signing-key", str(key), "--broker", "mqtt://127.0.0.1:1",
            "--db", str(tmp_path / "k.db")]
    assert main(args) == 2
    told = capsys.readouterr().err
    assert str(key) in told
    assert f"chmod 600 {key}" in told
    assert "0644" in told
    key.chmod(0o600)
    assert load_signing_key(key).key_id == signer.key_id
