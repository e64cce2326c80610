"""`alertsim serve` and `alertsim detect` against a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt import inputs
from alertsim.adapters.sqlite.store import Store
from alertsim.bootstrap import ServeOptions, serve
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.clients.detection import send_detection, shifted_to
from alertsim.domain.detection import Detection
from alertsim.domain.messages import Alert, PrefectureState, Receipt
from alertsim.domain.notices import error_report
from alertsim.domain.topics import TopicTree
from alertsim.service.config import ServiceConfig
from alertsim.testing import eventually, make_detection

README_DETECTION = """{"event_id": "2023-11-21-sohae", "sequence": 1,
 "observed_at": "2023-11-21T22:45:00+09:00", "object": "space_launch_vehicle",
 "launch": {"lat": 39.660, "lon": 124.705, "time": "2023-11-21T22:43:00+09:00"},
 "predicted": {"impact": {"lat": 13.64, "lon": 127.88},
               "impact_time": "2023-11-21T22:57:00+09:00"},
 "uncertainty": {"cross_track_km": 100, "along_track_km": 100}}"""


@pytest.mark.mosquitto
async def test_serve_then_detect_publishes_alerts(tmp_path: Path) -> None:
    """A detection sent with `detect` reaches the running service; its alerts are published."""
    with MosquittoBroker() as broker:
        db = tmp_path / "serve.db"
        options = ServeOptions(config=ServiceConfig(status="test"), db=db,
                               broker_url=broker.url, client_id="serve-test")
        service = asyncio.create_task(serve(options))
        seen: list[Alert] = []
        online = asyncio.Event()
        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            await client.subscribe("alertsim/v1/test/alerts/#", qos=1)
            await client.subscribe("alertsim/v1/service/status", qos=1)

            async def read() -> None:
                async for m in client.messages:
                    if not isinstance(m.payload, bytes):
                        continue
                    if "/alerts/" in str(m.topic):
                        seen.append(Alert.model_validate_json(m.payload))
                    elif json.loads(m.payload) == {"status": "online"}:
                        online.set()  # sent once the service has subscribed to its inputs

            reader = asyncio.create_task(read())
            await asyncio.wait_for(online.wait(), 10)
            d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="serve-1",
                               launch_time=datetime.now(UTC))
            await inputs.send_detection(Path("d.json"), d, url=broker.url, out=io.StringIO())
            await eventually(lambda: len(seen) >= 2, what="two alerts published")
            reader.cancel()
            service.cancel()
            await asyncio.gather(reader, service, return_exceptions=True)
        assert [(a.prefecture, a.stage, a.status) for a in seen] == [
            ("01", "shelter", "Test"), ("02", "shelter", "Test")]
        async with await Store.open(db) as store:
            assert len(await store.views.detections()) == 1


def test_detect_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim detect` validates before publishing: bad input exits 2 naming the field."""
    bad = tmp_path / "bad.json"
    doc = json.loads(make_detection((40.6, 126.4), (34.33, 178.57), 30, 100).model_dump_json())
    doc["launch"]["lon"] = 200
    bad.write_text(json.dumps(doc), "utf-8")
    assert main(["detect", str(bad), "--broker", "mqtt://127.0.0.1:1"]) == 2
    assert "launch.lon: Input should be less than or equal to 180" in capsys.readouterr().err


def test_serve_refuses_actual(capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim serve --status actual` exits 2 before connecting to anything."""
    assert main(["serve", "--status", "actual", "--broker", "mqtt://127.0.0.1:1"]) == 2
    assert "Actual is refused" in capsys.readouterr().err


async def test_serve_prints_the_dashboard_url_on_its_own_line(mosquitto: MosquittoBroker,
                                                              prefix: str,
                                                              tmp_path: Path) -> None:
    """`serve --dashboard` prints `dashboard: URL` as a plain line of its own on stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alertsim", "serve", "--broker", mosquitto.url, "--status", "test",
        "--db", str(tmp_path / "s.db"), "--topic-root", prefix, "--dashboard",
        "--client-id", f"url-{uuid.uuid4().hex[:8]}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            while not (line := (await process.stdout.readline()).decode()).startswith(
                    "dashboard: "):
                assert line, "serve ended without printing its dashboard URL"
    finally:
        process.terminate()
        await process.wait()
    assert re.fullmatch(r"dashboard: http://127\.0\.0\.1:\d+/\n", line), line


@contextlib.asynccontextmanager
async def serving(broker: MosquittoBroker, root: str, db: Path) -> AsyncIterator[None]:
    """`serve` in this process under `root` on `db` while the block runs (the default
    client id of the record: a restart finds its input session)."""
    options = ServeOptions(config=ServiceConfig(status="test", topics=TopicTree(root)), db=db,
                           broker_url=broker.url)
    task = asyncio.create_task(serve(options), name="serve")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_serve_clears_only_the_states_its_record_set(mosquitto: MosquittoBroker,
                                                          prefix: str, tmp_path: Path) -> None:
    """A fresh record publishes no empty states; after an event closes, a restart clears
    only the prefectures that event had set; state times carry +09:00."""
    tree, db = TopicTree(prefix), tmp_path / "s.db"
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.subscribe(f"{prefix}/test/state/+", qos=1)

        async def read() -> None:
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                seen.append((str(m.topic).rsplit("/", 1)[1], m.payload))

        reader = asyncio.create_task(read())
        async with serving(mosquitto, prefix, db):
            first = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="st-1",
                                   launch_time=datetime.now(UTC) - timedelta(minutes=1))
            assert (await send_detection(first, url=mosquitto.url, tree=tree)).answer == \
                "accepted"
            await eventually(lambda: {c for c, p in seen if p} >= {"01", "02"}, what="states")
            assert {c for c, _ in seen} == {"01", "02"}  # no empty state for the other 45
            assert json.loads(seen[0][1])["updated"].endswith("+09:00")
            await client.publish(tree.operator, json.dumps(
                {"action": "close", "event_id": "st-1"}), qos=1)
            await eventually(lambda: [c for c, p in seen if not p] == ["01", "02"],
                             what="01 and 02 cleared on close")
        seen.clear()
        async with serving(mosquitto, prefix, db):
            okinawa = shifted_to(Detection.model_validate_json(README_DETECTION),
                                 datetime.now(UTC))
            assert (await send_detection(okinawa, url=mosquitto.url, tree=tree)).answer == \
                "accepted"
            await eventually(lambda: any(c == "47" and p for c, p in seen), what="47 set")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert sorted((c, bool(p)) for c, p in seen) == [("01", False), ("02", False),
                                                     ("47", True)]


def test_payload_times_carry_jst() -> None:
    """Error reports, states and receipts write their times with +09:00, never Z."""
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = error_report(b"{}", reason="r", source="s", received_at=now)
    state = PrefectureState(code="01", status="Test", updated=now, events=())
    receipt = Receipt(client_id="c", identifier="i", received_at=now)
    for payload, field in ((report, "received_at"), (state, "updated"),
                           (receipt, "received_at")):
        assert json.loads(payload.model_dump_json())[field] == "2024-01-02T12:04:05+09:00"
