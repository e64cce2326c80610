"""CAP over MQTT and on disk: `drill --cap` and `serve --cap` publish every alert's CAP 1.2
XML on its cap topic (real Mosquitto), `export-cap` writes one valid file per alert of a
real drill record, and the generated broker ACL lets services write and receivers read
the cap topics of their own status only."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
import structlog
from lxml import etree

from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.domain.cap import CapRenderer
from alertsim.domain.messages import Alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.url import parse_broker_url
from alertsim.service.outgoing import CapPublisher
from alertsim.testing import InMemoryPublisher, eventually, make_detection
from tests.cap_xsd import NS, cap_errors
from tests.helpers import restore_sigint
from tests.integration.test_broker_config import MOSQUITTO, Broker, _broker, _check_denied, _send

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")
SALVO = ROOT / "scenarios" / "salvo-three-launches.yaml"  # prefecture and national alerts


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@asynccontextmanager
async def watching(url: str, topic_filter: str) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Everything published on `topic_filter` while the block runs."""
    broker = parse_broker_url(url)
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"w-{uuid.uuid4().hex[:8]}",
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic_filter, qos=1)

        async def read() -> None:
            async for m in client.messages:
                if isinstance(m.payload, bytes):
                    seen.append((str(m.topic), m.payload))

        task = asyncio.create_task(read())
        try:
            yield seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def identifier_of(document: bytes) -> str:
    return etree.fromstring(document).findtext("cap:identifier", namespaces=NS) or ""


async def recorded_alerts(db: Path) -> list[Alert]:
    async with await Store.open(db) as store:
        return [Alert.model_validate_json(r.payload) for r in await store.views.outbox(kind="alert")]


@pytest.mark.mosquitto
@pytest.mark.usefixtures("_restore_logging")
async def test_drill_cap_publishes_every_alert_as_cap_and_export_writes_them(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """`drill --cap`: one valid CAP document per recorded alert on tree.cap(status, code);
    then `export-cap` on that record writes exactly one valid IDENTIFIER.xml per alert."""
    tree = TopicTree(f"test/cap/{uuid.uuid4().hex[:8]}")
    db = tmp_path / "drill.db"
    argv = ["drill", str(SALVO), "--broker", mosquitto.url, "--cap", "--speed", "600",
            "--topic-root", tree.root, "--reports", str(tmp_path), "--db", str(db)]
    async with watching(mosquitto.url, f"{tree.root}/+/cap/#") as seen:
        assert await asyncio.to_thread(main, argv) == 0
        alerts = await recorded_alerts(db)
        await eventually(lambda: len(seen) >= len(alerts), what="a CAP twin of each alert")
    assert {a.prefecture for a in alerts} >= {None, "01"}
    expected = {a.identifier: tree.cap("exercise", a.prefecture) for a in alerts}
    assert {identifier_of(p): t for t, p in seen} == expected
    assert all(cap_errors(p) == [] for _, p in seen)

    out = tmp_path / "cap"
    assert await asyncio.to_thread(main, ["export-cap", str(db), "--out", str(out)]) == 0
    files = sorted(out.iterdir())
    assert {f.name for f in files} == {f"{i}.xml" for i in expected}
    for file in files:
        document = file.read_bytes()
        assert cap_errors(document) == [], file.name
        assert identifier_of(document) == file.stem


@pytest.mark.mosquitto
async def test_serve_cap_publishes_cap_xml(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """`alertsim serve --cap` (the real command): a detection's alerts arrive as JSON and as
    CAP 1.2 XML on the cap topic of the same prefecture; Ctrl-C stops it."""
    tree = TopicTree(f"test/serve-cap/{uuid.uuid4().hex[:8]}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTSIM_")}
    broker = parse_broker_url(mosquitto.url)
    async with watching(mosquitto.url, f"{tree.root}/#") as seen:
        proc = await asyncio.create_subprocess_exec(
            SCRIPT, "serve", "--broker", mosquitto.url, "--db", str(tmp_path / "s.db"),
            "--topic-root", tree.root, "--status", "test", "--cap",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            preexec_fn=restore_sigint)
        try:
            await eventually(lambda: (tree.service_status, b'{"status":"online"}') in seen,
                             timeout=30, what="the service online")
            detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100,
                                       event_id="serve-cap", launch_time=datetime.now(UTC))
            async with aiomqtt.Client(broker.host, broker.port) as client:
                await client.publish(tree.detections, detection.model_dump_json(), qos=1)
            caps = [tree.cap("test", "01"), tree.cap("test", "02")]
            await eventually(lambda: all(t in [s for s, _ in seen] for t in caps),
                             timeout=20, what="CAP on test/cap/01 and 02")
        finally:
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                _, err = await proc.communicate()
    assert proc.returncode == 130
    alerts = {Alert.model_validate_json(p).identifier for t, p in seen if "/alerts/" in t}
    documents = [p for t, p in seen if t in caps]
    assert {identifier_of(p) for p in documents} == alerts
    assert all(cap_errors(p) == [] for p in documents)
    assert b"Traceback" not in err


async def test_cap_publisher_follows_each_alert_with_its_cap(atlas: Atlas) -> None:
    """Alerts get a CAP twin (same expiry, content type application/cap+xml, kind cap);
    states, errors and the status do not."""
    from tests.unit.test_cap import scenario_alerts

    alert = next(a for a in scenario_alerts(SALVO) if a.prefecture == "01")
    inner = InMemoryPublisher()
    tree = TopicTree()
    publisher = CapPublisher(inner, CapRenderer(atlas), tree, "exercise")
    props = (("kind", "alert"), ("identifier", alert.identifier), ("msgType", alert.msgType),
             ("stage", alert.stage))
    await publisher.publish(Publication(tree.alerts("exercise", "01"),
                                        alert.model_dump_json().encode(), expiry_s=300,
                                        user_properties=props))
    for kind, topic in (("state", tree.state("exercise", "01")), ("error", tree.errors)):
        await publisher.publish(Publication(topic, b"{}", user_properties=(("kind", kind),)))
    await publisher.publish(Publication(tree.service_status, b'{"status":"online"}'))
    assert inner.topics() == [tree.alerts("exercise", "01"), tree.cap("exercise", "01"),
                              tree.state("exercise", "01"), tree.errors, tree.service_status]
    twin = inner.messages[1]
    assert (twin.qos, twin.retain, twin.expiry_s) == (1, False, 300)
    assert twin.content_type == "application/cap+xml"
    assert twin.user_properties == (("kind", "cap"), *props[1:])
    assert identifier_of(twin.payload) == alert.identifier


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such SQLite record"),
    ("not sqlite", "file is not a database"),
])
def test_export_cap_refuses_bad_records(content: str | None, message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or non-SQLite record exits 2 naming the file and the problem."""
    db = tmp_path / "record.db"
    if content is not None:
        db.write_text(content)
    assert main(["export-cap", str(db), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"alertsim export-cap: invalid input in {db}:" in err
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.mosquitto
@pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")
async def test_acl_lets_services_write_and_receivers_read_their_cap_topics(
        tmp_path: Path) -> None:
    """service-exercise cannot write the test tree's CAP; its own arrives at
    receiver-exercise; a receiver cannot write CAP."""
    async with _broker(tmp_path / "broker") as broker:
        await _check_denied(broker, "service-exercise", [
            "alertsim/v1/test/cap/13", "alertsim/v1/test/cap/national",
        ], allowed="alertsim/v1/exercise/cap/13", client_id="svc-x")
        await _check_denied(broker, "receiver-exercise", [
            "alertsim/v1/exercise/cap/13",
        ], allowed="alertsim/v1/receipts/receiver-exercise",
                             client_id="receiver-exercise")
        await _receiver_reads_cap(broker)


async def _receiver_reads_cap(broker: Broker) -> None:
    from alertsim.mqtt.client import connect
    from alertsim.mqtt.messages import incoming, subscribe

    seen: list[tuple[str, bytes]] = []
    async with connect(broker.settings("receiver-exercise", "tv-9")) as reader:
        await subscribe(reader, "alertsim/v1/+/cap/#")

        async def read() -> None:
            async for message in incoming(reader):
                seen.append(message)

        task = asyncio.create_task(read())
        try:
            async with connect(broker.settings("service-exercise", "svc-y")) as service, \
                    connect(broker.settings("service-test", "svc-z")) as other:
                await _send(other, "alertsim/v1/test/cap/13", b"other status")
                await _send(service, "alertsim/v1/exercise/cap/national", b"<alert/>")
                await eventually(lambda: ("alertsim/v1/exercise/cap/national", b"<alert/>")
                                 in seen, what="receiver-exercise reading exercise/cap")
            assert [t for t, _ in seen] == ["alertsim/v1/exercise/cap/national"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
