"""`alertsim subscribe --format json`: one JSON object per message, parsed line by line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli.subscribe import json_line
from alertsim.clients.receiver import RawMessage
from alertsim.domain import texts
from alertsim.domain.messages import PlaceEvent, PrefectureState, build_alert
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually
from tests.helpers import restore_sigint

SCRIPT = Path(sys.executable).with_name("alertsim")
SENT = datetime(2023, 11, 21, 13, 46, 5, tzinfo=UTC)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text("utf-8").splitlines() if line]


@pytest.mark.mosquitto
async def test_subscribe_json_lines_parse(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """Retained state, an alert twice (MQTT 5 properties) and a non-JSON payload: every
    stdout line is one JSON object with topic, received_at, retained, user_properties and
    the parsed payload (payload_text for the non-JSON one); the banner goes to stderr."""
    tree = TopicTree(f"test/subjson/{uuid.uuid4().hex[:8]}")
    alert = build_alert(identifier=f"id-{uuid.uuid4().hex[:8]}", sender="alertsim.test",
                        status="Exercise", sent=SENT, msg_type="Alert", stage="shelter",
                        texts=texts.shelter(), event_id="ev", sequence=1,
                        object_kind="ballistic_missile", code="47", name_ja="沖縄県",
                        name_en="Okinawa")
    state = PrefectureState(code="47", status="Exercise", updated=SENT, events=(PlaceEvent(
        event_id="ev", stage="shelter", identifier=alert.identifier, sheltering=True),))
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    async with connect(MqttSettings(url=mosquitto.url, client_id=f"pub-{uuid.uuid4().hex}",
                                    protocol="5")) as pub:
        await publish(pub, Publication(tree.state("exercise", "47"),
                                       state.model_dump_json().encode(), retain=True))
        env = {**os.environ, "ALERTSIM_LOG_FORMAT": "json"}
        env.pop("ALERTSIM_LOG_LEVEL", None)
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = await asyncio.create_subprocess_exec(
                SCRIPT, "subscribe", "--prefecture", "47", "--broker", mosquitto.url,
                "--topic-root", tree.root, "--client-id", f"sub-{uuid.uuid4().hex[:8]}",
                "--format", "json", stdout=stdout, stderr=stderr, env=env,
                preexec_fn=restore_sigint)
            try:
                await eventually(lambda: _lines(out), timeout=20, what="the retained state")
                message = Publication(tree.alerts("exercise", "47"),
                                      alert.model_dump_json().encode(),
                                      user_properties=(("identifier", alert.identifier),
                                                       ("stage", "shelter")))
                await publish(pub, message, protocol="5")
                await publish(pub, message, protocol="5")
                await publish(pub, Publication(tree.alerts("exercise", "47"), b"not json"))
                await eventually(lambda: len(_lines(out)) >= 4, timeout=20,
                                 what="four JSON lines")
                proc.send_signal(signal.SIGINT)
                async with asyncio.timeout(20):
                    assert await proc.wait() == 130
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                await publish(pub, Publication(tree.state("exercise", "47"), b"", retain=True))
    lines = [json.loads(line) for line in _lines(out)]
    assert all(isinstance(line, dict) for line in lines)
    first, second, third, fourth = lines
    assert first["topic"] == tree.state("exercise", "47")
    assert first["retained"] is True
    assert first["payload"]["events"][0]["identifier"] == alert.identifier
    for copy in (second, third):
        assert copy["topic"] == tree.alerts("exercise", "47")
        assert copy["retained"] is False
        assert copy["payload"]["identifier"] == alert.identifier
        assert copy["user_properties"] == {"identifier": alert.identifier, "stage": "shelter"}
        assert datetime.fromisoformat(copy["received_at"]).tzinfo is not None
    assert fourth["payload_text"] == "not json"
    assert "payload" not in fourth
    assert "alertsim subscriber" in err.read_text("utf-8")


def test_json_line_binary_and_empty_payloads() -> None:
    """A payload that is neither JSON nor UTF-8 is base64; an empty one is null."""
    def line(payload: bytes) -> dict[str, object]:
        parsed = json.loads(json_line(RawMessage("t", payload, (), True, SENT)))
        assert isinstance(parsed, dict)
        return parsed

    assert line(b"\xff\x00")["payload_base64"] == "/wA="
    assert line(b"")["payload"] is None
    assert line(b'{"a": 1}')["payload"] == {"a": 1}
