"""Signed alerts against real brokers: receivers tell forgeries from the service's alerts.

Mosquitto (MQTT 5: signature in user properties) and the embedded amqtt (MQTT 3.1.1: the
JSON envelope), for the service link, the receiver, `alertsim subscribe --trust` and drills.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from alertsim.adapters.mqtt.link import ClientPublisher, run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import EmbeddedBroker, MosquittoBroker
from alertsim.cli.subscribe import UNVERIFIED_WARNING
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain import texts
from alertsim.domain.messages import Alert, PlaceEvent, PrefectureState, Receipt, build_alert
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import incoming, publish, subscribe
from alertsim.mqtt.protocol import Protocol
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.signing import (
    REASON_TAMPERED,
    REASON_UNSIGNED,
    SigningKey,
    TrustedKeys,
    generate,
    save_key_pair,
    sign_publication,
)
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from tests.helpers import restore_sigint, running

SCRIPT = Path(sys.executable).with_name("alertsim")
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "2023-11-21-chollima-1.yaml"
SENT = datetime(2023, 11, 21, 13, 46, 5, tzinfo=UTC)
FORGED_TEXT = "FORGED-ALERT-TEXT"


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _tree() -> TopicTree:
    return TopicTree(f"signed-test/{uuid.uuid4().hex[:8]}")


def _alert(code: str, identifier: str) -> Alert:
    return build_alert(identifier=identifier, sender="alertsim.test", status="Exercise",
                       sent=SENT, msg_type="Alert", stage="shelter", texts=texts.shelter(),
                       event_id="ev-signed", sequence=1, object_kind="ballistic_missile",
                       code=code, name_ja="沖縄県", name_en="Okinawa")


def _forged(alert: Alert) -> bytes:
    """The alert's JSON with its English headline replaced (an attacker's text)."""
    return alert.model_dump_json().replace("Missile launch: take shelter",
                                           FORGED_TEXT).encode()


def _kind(topic: str, payload: bytes, kind: str, *, retain: bool = False) -> Publication:
    return Publication(topic, payload, qos=1, retain=retain, user_properties=(("kind", kind),))


@asynccontextmanager
async def _client(url: str, protocol: Protocol) -> AsyncIterator[aiomqtt.Client]:
    async with connect(MqttSettings(url=url, client_id=_uid("pub"), protocol=protocol)) as c:
        yield c


@asynccontextmanager
async def _receipts(url: str, protocol: Protocol, tree: TopicTree) -> AsyncIterator[list[str]]:
    """The identifiers of every receipt sent under `tree`, as they arrive.

    Waiting for a receipt before stopping a receiver also keeps amqtt from being shut down
    while a receipt is in flight (it then leaks the connection's transport).
    """
    found: list[str] = []
    async with _client(url, protocol) as client:
        await subscribe(client, tree.receipts_all)

        async def read() -> None:
            async for _, payload in incoming(client):
                found.append(Receipt.model_validate_json(payload).identifier)

        reader = asyncio.create_task(read())
        try:
            yield found
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def _receiver(url: str, protocol: Protocol, tree: TopicTree, trust: TrustedKeys | None,
              code: str = "01") -> Receiver:
    return Receiver(ReceiverOptions(url=url, protocol=protocol, client_id=_uid("rx"), codes=[code],
                                    tree=tree, persistent=False, trust=trust))


@asynccontextmanager
async def _service(atlas: Atlas, tmp_path: Path, url: str, protocol: Protocol,
                   tree: TopicTree, signer: SigningKey) -> AsyncIterator[Store]:
    """The service's timers and broker link, signing with `signer`."""
    async with await Store.open(tmp_path / f"{_uid('svc')}.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0)
        service = Service(atlas=atlas, store=store.record, clock=clock,
                          config=ServiceConfig(topics=tree))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=url, protocol=protocol,
                                              client_id=_uid("svc"), connected=connected,
                                              signer=signer))]
        try:
            async with asyncio.timeout(10):
                await connected.wait()
            yield store
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def unsigned(receiver: Receiver) -> bool:
    """True once the receiver has rejected an unsigned message."""
    return any(reason == REASON_UNSIGNED for _, reason in receiver.rejected)


async def _service_link_signs(atlas: Atlas, tmp_path: Path, url: str,
                              protocol: Protocol) -> None:
    key, stranger = generate(), generate()
    tree = _tree()
    trusting = _receiver(url, protocol, tree, key.trusted())
    doubting = _receiver(url, protocol, tree, stranger.trusted())
    async with running(trusting), running(doubting), \
            _service(atlas, tmp_path, url, protocol, tree, key) as store, \
            _client(url, protocol) as sensor:
        detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100,
                                   event_id=_uid("ev"))
        await publish(sensor, Publication(tree.detections,
                                          detection.model_dump_json().encode()),
                      protocol=protocol)
        await eventually(lambda: trusting.deliveries and trusting.states.get("01"),
                         timeout=15, what="the signed alert and state at the trusting receiver")
        await eventually(lambda: len(doubting.rejected) >= 2, timeout=10,
                         what="the other receiver rejecting alert and state")
        forged = _alert("01", _uid("forged"))
        await publish(sensor, Publication(tree.alerts("exercise", "01"), _forged(forged)),
                      protocol=protocol)
        await eventually(lambda: unsigned(trusting) and unsigned(doubting),
                         what="the unsigned forgery rejected by both")
        receipts = await eventually(store.views.receipts, what="the trusting receiver's receipt")
    assert [d.prefecture for d in trusting.deliveries] == ["01"]
    assert trusting.rejected == [(tree.alerts("exercise", "01"), REASON_UNSIGNED)]
    assert doubting.deliveries == []
    assert doubting.states == {}
    # the service's alert and states (restated on connect too) by an unknown key, and the
    # forgery unsigned
    alert_topic = tree.alerts("exercise", "01")
    assert (alert_topic, f"unknown key {key.key_id}") in doubting.rejected
    assert (tree.state("exercise", "01"), f"unknown key {key.key_id}") in doubting.rejected
    assert {reason for _, reason in doubting.rejected} == {
        REASON_UNSIGNED, f"unknown key {key.key_id}"}
    assert {r.client_id for r in receipts} == {trusting.client_id}


async def test_service_link_signs_on_mosquitto(atlas: Atlas, tmp_path: Path,
                                               mosquitto: MosquittoBroker) -> None:
    """MQTT 5: a trusting receiver gets the service's alerts; another key's and a forgery not."""
    await _service_link_signs(atlas, tmp_path, mosquitto.url, "5")


async def test_service_link_signs_on_amqtt(atlas: Atlas, tmp_path: Path,
                                           amqtt_broker: EmbeddedBroker) -> None:
    """MQTT 3.1.1 envelope: the same, on the embedded amqtt broker."""
    await _service_link_signs(atlas, tmp_path, amqtt_broker.url, "3.1.1")


def _tampered(real: Publication, protocol: Protocol) -> Publication:
    """The real, signed publication with its payload's text changed in transit."""
    if protocol == "5":
        return Publication(real.topic, real.payload.replace(b"take shelter", b"stay calm"),
                           user_properties=real.user_properties)
    body = json.loads(real.payload)
    original = base64.b64decode(body["payload"]).replace(b"take shelter", b"stay calm")
    body["payload"] = base64.b64encode(original).decode()
    return Publication(real.topic, json.dumps(body).encode())


async def _forgery_first(url: str, protocol: Protocol) -> None:
    key, stranger = generate(), generate()
    tree = _tree()
    topic = tree.alerts("exercise", "01")
    identifier = _uid("alertsim.real")
    real = _alert("01", identifier)
    signed = sign_publication(_kind(topic, real.model_dump_json().encode(), "alert"), key,
                              protocol)
    receiver = _receiver(url, protocol, tree, key.trusted())
    async with _receipts(url, protocol, tree) as receipts, running(receiver), \
            _client(url, protocol) as attacker, _client(url, protocol) as link:
        forgeries = [Publication(topic, _forged(real)),  # same identifier, unsigned
                     sign_publication(_kind(topic, _forged(real), "alert"), stranger,
                                      protocol),
                     _tampered(signed, protocol)]
        for forgery in forgeries:
            await publish(attacker, forgery, protocol=protocol)
        await eventually(lambda: len(receiver.rejected) == 3, what="three forgeries rejected")
        publisher = ClientPublisher(link, protocol, key)
        await publisher.publish(_kind(topic, real.model_dump_json().encode(), "alert"))
        marker = _alert("01", _uid("alertsim.marker"))
        await publisher.publish(_kind(topic, marker.model_dump_json().encode(), "alert"))
        await eventually(lambda: len(receipts) >= 2, what="receipts of real alert and marker")
    assert receipts == [identifier, marker.identifier]  # none for the forgeries
    assert [reason for _, reason in receiver.rejected] == [
        REASON_UNSIGNED, f"unknown key {stranger.key_id}", REASON_TAMPERED]
    assert [(d.identifier, d.duplicate) for d in receiver.deliveries] == [
        (identifier, False), (marker.identifier, False)]
    assert receiver.deliveries[0].alert == real


async def test_forgery_first_does_not_suppress_the_real_alert_mosquitto(
        mosquitto: MosquittoBroker) -> None:
    """MQTT 5: forgeries under the real identifier are rejected; the real one arrives once."""
    await _forgery_first(mosquitto.url, "5")


async def test_forgery_first_does_not_suppress_the_real_alert_amqtt(
        amqtt_broker: EmbeddedBroker) -> None:
    """MQTT 3.1.1: the same through the envelope on the embedded amqtt broker."""
    await _forgery_first(amqtt_broker.url, "3.1.1")


async def test_untrusting_receiver_still_unwraps_envelopes(amqtt_broker: EmbeddedBroker) -> None:
    """Without `trust` a receiver opens the 3.1.1 envelope and delivers the alert inside."""
    tree = _tree()
    receiver = _receiver(amqtt_broker.url, "3.1.1", tree, None)
    real = _alert("01", _uid("alertsim.plain"))
    async with _receipts(amqtt_broker.url, "3.1.1", tree) as receipts, running(receiver), \
            _client(amqtt_broker.url, "3.1.1") as link:
        await ClientPublisher(link, "3.1.1", generate()).publish(
            _kind(tree.alerts("exercise", "01"), real.model_dump_json().encode(), "alert"))
        await eventually(lambda: receipts, what="the enveloped alert delivered, receipt sent")
    assert receiver.deliveries[0].alert == real
    assert receiver.rejected == []


# ---- `alertsim subscribe` as a subprocess ----------------------------------------------------


def _state(code: str) -> bytes:
    return PrefectureState(code=code, status="Exercise", updated=DEFAULT_LAUNCH_TIME,
                           events=(PlaceEvent(event_id="ev", stage="shelter",
                                              identifier="id", sheltering=True),)
                           ).model_dump_json().encode()


async def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    await eventually(predicate, timeout=20, interval=0.05, what=what)


async def _subscriber(url: str, tmp_path: Path, tree: TopicTree,
                      flags: list[str], then: Callable[[], Awaitable[None]]) -> tuple[str, str]:
    """Run `alertsim subscribe` until it shows the retained state, `await then()`, and
    until `then`'s condition holds; then Ctrl-C. Returns (stdout, stderr)."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {**os.environ, "ALERTSIM_LOG_FORMAT": "json"}
    env.pop("ALERTSIM_LOG_LEVEL", None)
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = await asyncio.create_subprocess_exec(
            SCRIPT, "subscribe", "--prefecture", "47", "--broker", url, "--lang", "en",
            "--topic-root", tree.root, "--client-id", _uid("sub"),
            "--state-file", str(tmp_path / "sub-state.json"), *flags,
            stdout=stdout, stderr=stderr, env=env, preexec_fn=restore_sigint)
        try:
            await _wait_for(lambda: "[47] EXERCISE state: SHELTERING" in out.read_text("utf-8"),
                            what="the subscriber showing the retained state")
            await then()
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(20):
                assert await proc.wait() == 130
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return out.read_text("utf-8"), err.read_text("utf-8")


@pytest.fixture(params=["5", "3.1.1"])
async def any_broker(request: pytest.FixtureRequest,
                     mosquitto: MosquittoBroker) -> AsyncIterator[tuple[str, Protocol]]:
    """Mosquitto under MQTT 5, or the embedded amqtt (MQTT 3.1.1, the signed envelope)."""
    if request.param == "5":
        yield mosquitto.url, "5"
        return
    async with EmbeddedBroker() as embedded:
        yield embedded.url, "3.1.1"


async def test_subscribe_trust_shows_only_signed_alerts(
        tmp_path: Path, any_broker: tuple[str, Protocol]) -> None:
    """`subscribe --trust`: a signed alert on stdout; an unsigned, a stranger-signed and a
    tampered forgery each as `rejected TOPIC: REASON` on stderr, their text nowhere."""
    url, protocol = any_broker
    key, stranger = generate(), generate()
    _, public = save_key_pair(key, tmp_path / "keys")
    tree = _tree()
    topic = tree.alerts("exercise", "47")
    real, forged = _alert("47", _uid("alertsim.real")), _alert("47", _uid("forged"))
    signed_forged = sign_publication(_kind(topic, _forged(forged), "alert"), stranger,
                                     protocol)
    tampered = _tampered(sign_publication(
        _kind(topic, forged.model_dump_json().encode(), "alert"), key, protocol), protocol)
    async with _client(url, protocol) as link:
        publisher = ClientPublisher(link, protocol, key)
        await publisher.publish(_kind(tree.state("exercise", "47"), _state("47"), "state",
                                      retain=True))

        async def send() -> None:
            for forgery in (Publication(topic, _forged(forged)), signed_forged, tampered):
                await publish(link, forgery, protocol=protocol)
            await publisher.publish(_kind(topic, real.model_dump_json().encode(), "alert"))
            await _wait_for(lambda: real.identifier in (tmp_path / "out.txt").read_text()
                            and (tmp_path / "err.txt").read_text().count("rejected ") >= 3,
                            what="the real alert shown and three forgeries rejected")

        out, err = await _subscriber(url, tmp_path, tree, ["--trust", str(public)], send)
    assert "Missile launch: take shelter" in out
    for reason in (REASON_UNSIGNED, f"unknown key {stranger.key_id}", REASON_TAMPERED):
        assert f"rejected {topic}: {reason}" in err
    assert FORGED_TEXT not in out + err
    assert "stay calm" not in out + err
    assert forged.identifier not in out + err
    assert UNVERIFIED_WARNING not in err
    assert "Traceback" not in err


async def test_subscribe_without_trust_warns_once(tmp_path: Path,
                                                  mosquitto: MosquittoBroker) -> None:
    """Without --trust the subscriber says once, on stderr, that it cannot verify."""
    tree = _tree()
    real = _alert("47", _uid("alertsim.plain"))
    async with _client(mosquitto.url, "5") as link:
        await publish(link, Publication(tree.state("exercise", "47"), _state("47"),
                                        retain=True), protocol="5")

        async def send() -> None:
            await publish(link, Publication(tree.alerts("exercise", "47"),
                                            real.model_dump_json().encode()), protocol="5")
            await _wait_for(lambda: real.identifier in (tmp_path / "out.txt").read_text(),
                            what="the unsigned alert shown")

        out, err = await _subscriber(mosquitto.url, tmp_path, tree, [], send)
    assert err.count(UNVERIFIED_WARNING) == 1
    assert UNVERIFIED_WARNING not in out
    assert "Traceback" not in err


# ---- drills ----------------------------------------------------------------------------------


def _drill_options(tmp_path: Path, broker_url: str | None, root: str | None) -> DrillOptions:
    return DrillOptions(scenario_path=SCENARIO, speed=600.0, broker_url=broker_url,
                        extra_receivers=2, reports_dir=tmp_path, out=io.StringIO(),
                        settle_timeout_s=10.0, quiet_s=0.5, topic_root=root)


async def test_drill_signs_on_amqtt(tmp_path: Path) -> None:
    """A drill on the embedded broker passes with signing on; no receiver rejected anything."""
    outcome = await run_drill(_drill_options(tmp_path, None, None))
    assert outcome.passed, outcome.report.failures
    assert outcome.key_id is not None
    assert outcome.rejected == ()
    assert outcome.verified > 0


async def test_drill_signs_on_mosquitto(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    """On Mosquitto too; every alert and state on the wire carries the drill key's signature."""
    tree = _tree()
    seen: list[tuple[str, dict[str, str]]] = []
    async with aiomqtt.Client("127.0.0.1", mosquitto.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as observer:
        await observer.subscribe(f"{tree.root}/exercise/#", qos=1)

        async def watch() -> None:
            async for m in observer.messages:
                props = getattr(m.properties, "UserProperty", None) or []
                seen.append((str(m.topic), dict(props)))

        watcher = asyncio.create_task(watch())
        try:
            outcome = await run_drill(_drill_options(tmp_path, mosquitto.url, tree.root))
            await eventually(lambda: any("/alerts/" in t for t, _ in seen),
                             what="the observer seeing the drill's alerts")
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    assert outcome.passed, outcome.report.failures
    assert outcome.rejected == ()
    assert outcome.verified > 0
    for _, props in seen:
        assert (props.get("sig-alg"), props.get("sig-key")) == ("ed25519", outcome.key_id)
