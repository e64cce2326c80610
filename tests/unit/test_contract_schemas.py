"""The committed JSON Schemas (docs/schema/NAME.schema.json) match the models, and the
payloads alertsim really produces satisfy them (jsonschema, draft 2020-12).

Every kind on a real broker (receipts from a real receiver included) is checked against
its AsyncAPI channel's schema in tests/integration/test_asyncapi.py."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from jsonschema import Draft202012Validator

from alertsim.adapters.mqtt.link import STATUS_OFFLINE, STATUS_ONLINE
from alertsim.adapters.sqlite.store import Store
from alertsim.cli import main
from alertsim.cli.decide import SCHEMAS, SchemaName, schema_of
from alertsim.domain.prefectures import Atlas
from alertsim.drills.runner import _entry_payload
from alertsim.drills.scenario import ActionEntry, DetectionEntry, load_scenario
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, InMemoryPublisher, eventually, make_detection

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
NAMES: tuple[SchemaName, ...] = get_args(SchemaName)
CHOLLIMA = ROOT / "scenarios" / "2023-11-21-chollima-1.yaml"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, payload: bytes | str) -> list[str]:
    """Why the payload does not satisfy docs/schema/NAME.schema.json ([] when it does)."""
    return [f"{list(e.absolute_path)}: {e.message}"
            for e in validator(name).iter_errors(json.loads(payload))]


@pytest.mark.parametrize("name", NAMES)
def test_committed_schema_is_current(name: SchemaName) -> None:
    """docs/schema/NAME.schema.json equals what `alertsim schema NAME` prints now."""
    committed = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))
    assert committed == schema_of(name), \
        f"run: alertsim schema {name} > docs/schema/{name}.schema.json"


def test_schema_folder_holds_exactly_the_contracts() -> None:
    """One file per contract, nothing stale (the old docs/*.schema.json moved here)."""
    assert set(SCHEMAS) == set(NAMES)
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == {f"{n}.schema.json" for n in NAMES}
    assert list((ROOT / "docs").glob("*.schema.json")) == []


@pytest.mark.parametrize("name", ["alert", "state", "receipt", "error", "operator", "status"])
def test_schema_command_prints_each_contract(name: SchemaName,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim schema NAME` exits 0 and prints the committed schema."""
    assert main(["schema", name]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8"))


def test_unknown_schema_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown name exits 2 and lists the names there are."""
    assert main(["schema", "alerts"]) == 2
    err = capsys.readouterr().err
    assert "'alerts' is not one of" in err
    assert all(f"'{n}'" in err for n in NAMES)


def test_detection_schema_names_the_contract_fields() -> None:
    """The detection schema requires the v1 fields and offers both prediction forms."""
    schema = schema_of("detection")
    assert set(schema["required"]) == {  # type: ignore[arg-type]
        "event_id", "sequence", "observed_at", "object", "launch", "predicted", "uncertainty"}
    text = json.dumps(schema)
    assert "PredictedImpact" in text
    assert "PredictedBearing" in text


def test_scenario_inputs_and_decision_satisfy_their_schemas(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A drill's detection and operator payloads (as its timeline publishes them) and the
    decision `alertsim decide` prints for that detection."""
    scenario = load_scenario(CHOLLIMA)
    tree = ServiceConfig().topics
    entries = [_entry_payload(e, tree) for e in scenario.timeline]
    kinds = {DetectionEntry: "detection", ActionEntry: "operator"}
    for entry, (_, payload, _) in zip(scenario.timeline, entries, strict=True):
        assert problems(kinds[type(entry)], payload) == []
    detection = tmp_path / "detection.json"
    detection.write_bytes(entries[0][1])
    assert main(["decide", str(detection)]) == 0
    assert problems("decision", capsys.readouterr().out) == []
    assert {type(e) for e in scenario.timeline} == set(kinds)


async def test_service_payloads_satisfy_their_schemas(atlas: Atlas, tmp_path: Path) -> None:
    """Alerts, retained states and error reports as the service publishes them, and the
    service status it announces."""
    async with await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2), speed=1.0)
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)
        publisher = InMemoryPublisher()
        detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="ev-1")
        assert await service.accept_detection(detection.model_dump_json().encode())
        assert not await service.accept_detection(b'{"event_id": "x", ')
        assert await service.accept_operator(b'{"action": "cancel", "event_id": "ev-1"}')
        pump = asyncio.create_task(service.pump(publisher))
        await eventually(service.drained, what="outbox drained")
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    kinds = {dict(m.user_properties)["kind"]: m for m in publisher.messages if m.payload}
    assert set(kinds) == {"alert", "state", "error"}
    for message in publisher.messages:
        if message.payload:  # an empty state clears the retained one: no JSON to check
            kind = dict(message.user_properties)["kind"]
            assert problems(kind, message.payload) == [], message.topic
    for status in (STATUS_ONLINE, STATUS_OFFLINE):
        assert problems("status", status) == []


@pytest.mark.parametrize(("name", "payload"), [
    ("alert", b'{"identifier": "x"}'),
    ("state", b'{"code": "48", "status": "Exercise", "updated": "2023-01-01T00:00:00Z", "events": []}'),
    ("error", b'{"source": "s", "reason": "r", "received_at": "t", "size": -1, "excerpt": ""}'),
    ("operator", b'{"action": "delete", "event_id": "e"}'),
    ("status", b'{"status": "maybe"}'),
    ("receipt", b'{"client_id": "a b", "identifier": "x", "received_at": "t"}'),
])
def test_schemas_reject_wrong_payloads(name: str, payload: bytes) -> None:
    """Each schema refuses a payload that breaks it (so the checks above can fail)."""
    assert problems(name, payload) != []
