"""docs/asyncapi.yaml: valid AsyncAPI 3.0, exactly the topics in code, and true on the wire.

- validated with jsonschema against the AsyncAPI 3.0.0 JSON Schema vendored from the npm
  package @asyncapi/specs (tests/data/asyncapi/, see SOURCE.md there);
- its channel addresses are exactly the topics `TopicTree` builds (found by introspecting
  the class, so a topic added there and not here fails this test);
- on a real Mosquitto (MQTT 5), every message of a run with every kind of traffic lands on
  a documented channel with valid parameters, its payload satisfies the schema the channel
  names (CAP XML: the OASIS XSD), and its MQTT 5 user properties are declared headers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, get_args

import aiomqtt
import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from alertsim import __version__
from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli.decide import SchemaName
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain.prefectures import Atlas
from alertsim.domain.topics import DEFAULT_ROOT, TopicTree
from alertsim.domain.vocabulary import PREFECTURE_CODES, STATUSES
from alertsim.mqtt.url import parse_broker_url
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.signing import generate
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from tests.cap_xsd import cap_errors
from tests.helpers import running

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEC = Path(__file__).resolve().parents[1] / "data" / "asyncapi" / "asyncapi-3.0.0.schema.json"
# A value for each parameter name a TopicTree method takes; a new name must be added here
# and to the document's parameters.
PLACEHOLDERS = {"status": "{status}", "code": "{code}", "client_id": "{client_id}"}
BROKEN_INPUT = b'{"event_id": '  # sent on purpose: the service must report it on errors


@cache
def document() -> dict[str, Any]:
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text("utf-8"))
    assert isinstance(doc, dict)
    return doc


def resolve(ref: dict[str, Any]) -> dict[str, Any]:
    """A local `#/...` reference of the document, followed (once)."""
    target: Any = document()
    for part in ref["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict)
    return target


def _topic_builders() -> Iterator[tuple[str, list[str], bool]]:
    """(name, parameter names, takes None) of each public TopicTree method building a topic."""
    for name, member in vars(TopicTree).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        params = list(inspect.signature(member).parameters.values())[1:]
        if any(p.name == "topic" for p in params):
            continue  # a reader of topics (is_receipt, client_of_receipt), not a builder
        unknown = [p.name for p in params if p.name not in PLACEHOLDERS]
        assert not unknown, f"TopicTree.{name}: give this test a placeholder for {unknown}"
        yield name, [p.name for p in params], any("None" in str(p.annotation) for p in params)


def topics_in_code(tree: TopicTree) -> tuple[set[str], set[str]]:
    """(topic templates, subscription filters) of every TopicTree property and method."""
    found: set[str] = set()
    for name, member in vars(TopicTree).items():
        if isinstance(member, property):
            found.add(getattr(tree, name))
    for name, params, takes_none in _topic_builders():
        build = getattr(tree, name)
        found.add(build(*(PLACEHOLDERS[p] for p in params)))
        if takes_none:  # e.g. alerts(status, None): the national topic
            found.add(build(*(PLACEHOLDERS[p] if p != "code" else None for p in params)))
    filters = {t for t in found if "+" in t or "#" in t}
    return found - filters, filters


def test_document_is_valid_asyncapi_3() -> None:
    """The document satisfies the AsyncAPI 3.0.0 JSON Schema, bindings included."""
    spec = json.loads(SPEC.read_text("utf-8"))
    validator = Draft7Validator(spec)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in
              validator.iter_errors(document())]
    assert errors == []
    assert document()["asyncapi"] == "3.0.0"
    broken = {**document(), "operations": {"x": {"action": "publish",
                                                 "channel": {"$ref": "#/channels/errors"}}}}
    assert list(validator.iter_errors(broken)) != []  # the vendored schema does check


def test_channels_are_exactly_the_topics_in_code() -> None:
    """Channel addresses == the topics TopicTree builds; its filters match a channel."""
    addresses = {c["address"] for c in document()["channels"].values()}
    templates, filters = topics_in_code(TopicTree(DEFAULT_ROOT))
    assert addresses == templates
    as_filters = {re.sub(r"\{[a-z_]+\}", "+", a) for a in addresses}
    assert filters <= as_filters


def test_parameters_and_version_match_the_code() -> None:
    """{status} and {code} enumerate exactly the statuses and codes; the version is ours."""
    params = document()["components"]["parameters"]
    assert params["status"]["enum"] == list(STATUSES)
    assert params["code"]["enum"] == list(PREFECTURE_CODES)
    for channel in document()["channels"].values():
        named = set(re.findall(r"\{([a-z_]+)\}", channel["address"]))
        assert named == set(channel.get("parameters", {})), channel["address"]
    assert document()["info"]["version"] == __version__


def test_every_channel_has_its_operations_and_schema_files() -> None:
    """Each channel the service uses has an operation; the payloads refer to the schema
    files of every published contract."""
    operations = document()["operations"].values()
    used = {op["channel"]["$ref"].rsplit("/", 1)[1] for op in operations}
    assert set(document()["channels"]) - used == {"conformanceControl"}
    refs = {m["payload"]["$ref"] for m in document()["components"]["messages"].values()
            if "$ref" in m["payload"]}
    assert all((DOCS / ref).is_file() for ref in refs), refs
    on_the_wire = set(get_args(SchemaName)) - {"decision"}  # a decision is never published
    assert refs == {f"./schema/{name}.schema.json" for name in on_the_wire}


# -- on the wire ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Channel:
    name: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]

    def parameters_ok(self, match: re.Match[str]) -> bool:
        for name, value in match.groupdict().items():
            enum = resolve(self.spec["parameters"][name]).get("enum")
            if enum is not None and value not in enum:
                return False
        return True


def channels(root: str) -> list[Channel]:
    found = []
    for name, spec in document()["channels"].items():
        address = re.escape(spec["address"].replace(DEFAULT_ROOT, root, 1))
        pattern = re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>[^/]+)", address)
        found.append(Channel(name, re.compile(f"^{pattern}$"), spec))
    return found


def channel_of(topic: str, root: str) -> Channel:
    hits = [c for c in channels(root)
            if (m := c.pattern.match(topic)) is not None and c.parameters_ok(m)]
    assert len(hits) == 1, f"{topic}: {[c.name for c in hits]}"
    return hits[0]


def declared_headers(message: dict[str, Any]) -> set[str]:
    def names(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            schema = resolve(schema)
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found |= names(part)
        return found

    return names(message["headers"]) if "headers" in message else set()


def payload_problems(message: dict[str, Any], payload: bytes) -> list[str]:
    if message["contentType"] == "application/cap+xml":
        return cap_errors(payload)
    if not payload:  # a cleared retained state
        return [] if message["name"] == "state" else ["empty payload"]
    schema = json.loads((DOCS / message["payload"]["$ref"]).read_text("utf-8"))
    return [e.message for e in Draft202012Validator(schema).iter_errors(json.loads(payload))]


@asynccontextmanager
async def observer(url: str, root: str) -> AsyncIterator[list[Seen]]:
    """An MQTT 5 client recording everything under `root`, with user properties."""
    broker = parse_broker_url(url)
    seen: list[Seen] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"obs-{uuid.uuid4().hex[:8]}",
                              protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(f"{root}/#", qos=1)

        async def read() -> None:
            async for m in client.messages:
                props = getattr(m.properties, "UserProperty", None) or []
                payload = m.payload if isinstance(m.payload, bytes) else b""
                seen.append(Seen(str(m.topic), payload, tuple(props)))

        task = asyncio.create_task(read())
        try:
            yield seen
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def service_on(url: str, tree: TopicTree, atlas: Atlas,
                     tmp_path: Path) -> AsyncIterator[Service]:
    """The service (signed, --cap) on the broker under `tree`, until the block ends."""
    async with await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2), speed=1.0)
        service = Service(atlas=atlas, store=store.record, clock=clock,
                          config=ServiceConfig(topics=tree, national_info=True))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=url, protocol="5",
                                              client_id=f"svc-{uuid.uuid4().hex[:8]}",
                                              connected=connected, signer=generate(),
                                              cap=True))]
        try:
            await asyncio.wait_for(connected.wait(), 30)
            yield service
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _send_inputs(url: str, tree: TopicTree) -> None:
    """A warning detection, a national one, a broken one and an operator cancel."""
    warning = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id="ev-warn")
    national = make_detection((39.0, 125.5), (40.0, 133.0), 10, 10, event_id="ev-national")
    broker = parse_broker_url(url)
    async with aiomqtt.Client(broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        for payload in (warning.model_dump_json().encode(),
                        national.model_dump_json().encode(), BROKEN_INPUT):
            await client.publish(tree.detections, payload, qos=1)
        await client.publish(tree.operator, b'{"action": "cancel", "event_id": "ev-warn"}',
                             qos=1)


@pytest.mark.mosquitto
async def test_every_message_on_the_wire_matches_its_channel(
        mosquitto: MosquittoBroker, atlas: Atlas, tmp_path: Path) -> None:
    """Inputs, receipts, alerts, states, CAP, errors, status: each on a documented channel
    with valid parameters, its payload valid, its user properties declared."""
    tree = TopicTree(f"test/asyncapi/{uuid.uuid4().hex[:8]}")
    needed = {"detections", "operator", "receipts", "alerts", "alertsNational", "state",
              "cap", "capNational", "errors", "serviceStatus"}
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5",
                                        client_id=f"rx-{uuid.uuid4().hex[:8]}", codes=["01", "02"],
                                        tree=tree, persistent=False))
    async with observer(mosquitto.url, tree.root) as seen, \
            service_on(mosquitto.url, tree, atlas, tmp_path), running(receiver):
        await _send_inputs(mosquitto.url, tree)
        await eventually(lambda: needed <= {channel_of(s.topic, tree.root).name for s in seen},
                         timeout=20, what=f"a message on each of {sorted(needed)}")
    for message in seen:
        channel = channel_of(message.topic, tree.root)
        if message.payload == BROKEN_INPUT:
            continue
        (spec,) = (resolve(m) for m in channel.spec["messages"].values())
        assert payload_problems(spec, message.payload) == [], message.topic
        undeclared = {k for k, _ in message.properties} - declared_headers(spec)
        assert undeclared == set(), (message.topic, undeclared)
