"""`alertsim serve` and `alertsim detect` against a real Mosquitto."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.inputs import send_detection
from alertsim.adapters.sqlite.store import Store
from alertsim.bootstrap import ServeOptions, serve
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.domain.messages import Alert
from alertsim.service.config import ServiceConfig
from alertsim.testing import eventually, make_detection


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
            await send_detection(Path("d.json"), d, url=broker.url, out=io.StringIO())
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
