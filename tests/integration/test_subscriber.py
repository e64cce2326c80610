"""The receiver against a real Mosquitto: routing, de-duplication, receipts, state, sessions."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli.render import render_alert, render_state
from alertsim.cli.subscribe import run_subscriber
from alertsim.clients.receiver import Delivery, Receiver, ReceiverOptions
from alertsim.domain import texts, topics
from alertsim.domain.messages import (
    Alert,
    PlaceEvent,
    PrefectureState,
    Receipt,
    build_alert,
)
from alertsim.domain.publication import Publication
from alertsim.domain.vocabulary import AlertStatus, Status
from alertsim.errors import InputError
from alertsim.logs import captured_logs
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.protocol import Protocol
from alertsim.testing import eventually
from tests.helpers import running

SENT = datetime(2023, 11, 21, 13, 46, 5, tzinfo=UTC)  # 22:46:05 JST


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _alert(code: str | None, *, event_id: str | None = None, identifier: str | None = None,
           status: AlertStatus = "Exercise") -> Alert:
    event_id = event_id or _uid("ev")
    return build_alert(identifier=identifier or _uid("id"), sender="alertsim.test",
                       status=status, sent=SENT, msg_type="Alert",
                       stage="shelter" if code else "national", texts=texts.shelter(),
                       event_id=event_id, sequence=1, object_kind="ballistic_missile",
                       code=code, name_ja="沖縄県", name_en="Okinawa")


@asynccontextmanager
async def _publisher(url: str) -> AsyncIterator[aiomqtt.Client]:
    async with connect(MqttSettings(url=url, client_id=_uid("pub"))) as client:
        yield client


async def _send(client: aiomqtt.Client, topic: str, payload: bytes, *,
                retain: bool = False) -> None:
    await publish(client, Publication(topic=topic, payload=payload, retain=retain))


async def _send_alert(client: aiomqtt.Client, alert: Alert,
                      status: Status = "exercise") -> None:
    await _send(client, topics.alerts(status, alert.prefecture),
                alert.model_dump_json().encode())


async def test_receives_own_prefecture_and_national_only(mosquitto: MosquittoBroker) -> None:
    """A receiver gets alerts for its prefecture and national, not another prefecture's."""
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5", client_id=_uid("rx"),
                                        codes=["47"], persistent=False))
    other, national, mine = _alert("01"), _alert(None), _alert("47")
    async with running(receiver), _publisher(mosquitto.url) as pub:
        for alert in (other, national, mine):
            await _send_alert(pub, alert)
        await eventually(lambda: len(receiver.deliveries) >= 2, what="two deliveries")
    assert [d.identifier for d in receiver.deliveries] == [national.identifier, mine.identifier]
    delivery = receiver.deliveries[1]
    assert (delivery.prefecture, delivery.stage, delivery.msg_type, delivery.duplicate) == (
        "47", "shelter", "Alert", False)
    assert delivery.alert == mine
    assert delivery.received_at.tzinfo is not None
    assert delivery.received_at.utcoffset() is not None
    assert not delivery.received_at.utcoffset()


async def test_duplicate_is_shown_once_and_both_acknowledged(mosquitto: MosquittoBroker) -> None:
    """The same identifier twice reaches on_delivery once; both copies get a Receipt."""
    shown: list[Delivery] = []
    client_id = _uid("rx")
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5", client_id=client_id,
                                        codes=["40"], persistent=False),
                        on_delivery=shown.append)
    alert = _alert("40")
    receipts: list[Receipt] = []
    async with _publisher(mosquitto.url) as watcher:
        await watcher.subscribe(topics.RECEIPTS_ALL, qos=1)
        async with running(receiver), _publisher(mosquitto.url) as pub:
            await _send_alert(pub, alert)
            await _send_alert(pub, alert)
            async with asyncio.timeout(5):
                async for message in watcher.messages:
                    if topics.client_of_receipt(message.topic.value) != client_id:
                        continue
                    assert isinstance(message.payload, bytes)
                    receipts.append(Receipt.model_validate_json(message.payload))
                    if len(receipts) == 2:
                        break
    assert [d.identifier for d in shown] == [alert.identifier]
    assert [d.duplicate for d in receiver.deliveries] == [False, True]
    assert [(r.client_id, r.identifier, r.prefecture, r.stage, r.duplicate) for r in receipts] == [
        (client_id, alert.identifier, "40", "shelter", False),
        (client_id, alert.identifier, "40", "shelter", True),
    ]


async def test_async_on_delivery_is_awaited(mosquitto: MosquittoBroker) -> None:
    """A coroutine on_delivery callback is awaited before the next message is handled."""
    seen: list[str] = []

    async def on_delivery(delivery: Delivery) -> None:
        await asyncio.sleep(0)
        seen.append(delivery.identifier)

    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="3.1.1", client_id=_uid("rx"),
                                        codes=["39"], persistent=False),
                        on_delivery=on_delivery)
    alert = _alert("39")
    async with running(receiver), _publisher(mosquitto.url) as pub:
        await _send_alert(pub, alert)
        await eventually(lambda: seen, what="the async callback ran")
    assert seen == [alert.identifier]


async def test_malformed_payload_is_skipped(mosquitto: MosquittoBroker) -> None:
    """Bad JSON and an invalid alert are logged as receiver.rejected; the next alert arrives."""
    receiver = Receiver(ReceiverOptions(url=mosquitto.url, protocol="5", client_id=_uid("rx"),
                                        codes=["38"], persistent=False))
    good = _alert("38")
    actual = good.model_dump_json().replace('"Exercise"', '"Actual"').encode()
    with captured_logs() as logs:
        async with running(receiver), _publisher(mosquitto.url) as pub:
            topic = topics.alerts("exercise", "38")
            for payload in (b"not json", b'{"identifier": "x"}', actual):
                await _send(pub, topic, payload)
            await _send_alert(pub, good)
            await eventually(lambda: receiver.deliveries, what="the good alert")
    assert [d.identifier for d in receiver.deliveries] == [good.identifier]
    rejected = [e for e in logs if e["event"] == "receiver.rejected"]
    assert len(rejected) == 3
    assert all(e["log_level"] == "warning" and e["topic"] == topic for e in rejected)
    assert any("Actual" in line for line in rejected[2]["problems"])


async def test_subscriber_prints_retained_state_then_alerts(mosquitto: MosquittoBroker) -> None:
    """run_subscriber prints the retained state on connect, then new alerts, then a clear."""
    event_id = _uid("ev")
    state = PrefectureState(code="13", status="Test", updated=SENT, events=(
        PlaceEvent(event_id=event_id, stage="shelter", identifier=_uid("id"), sheltering=True),))
    state_topic = topics.state("test", "13")
    alert = _alert("13", status="Test")
    out = io.StringIO()
    async with _publisher(mosquitto.url) as pub:
        await _send(pub, state_topic, state.model_dump_json().encode(), retain=True)
        task = asyncio.create_task(run_subscriber(
            url=mosquitto.url, codes=["13"], lang="en", status="test",
            client_id=_uid("sub"), protocol="5", out=out), name="test:subscriber")
        try:
            await eventually(lambda: event_id in out.getvalue(), what="retained state printed")
            await _send_alert(pub, alert, status="test")
            await eventually(lambda: alert.identifier in out.getvalue(), what="alert printed")
            await _send(pub, state_topic, b"", retain=True)  # clears the retained state
            await eventually(lambda: "[13] no active alert" in out.getvalue(),
                             what="cleared state printed")
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    text = out.getvalue()
    assert "[13] TEST state: SHELTERING" in text
    assert f"event {event_id}: shelter" in text
    assert "*** TEST — 試験 / not a real alert ***" in text
    assert "Missile launch: take shelter" in text
    assert text.index(event_id) < text.index(alert.identifier)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_persistent_session_gets_alert_sent_while_offline(
        mosquitto: MosquittoBroker, protocol: Protocol) -> None:
    """A persistent receiver that was offline gets the QoS 1 alert published meanwhile."""
    client_id = _uid("rx")

    def receiver() -> Receiver:
        return Receiver(ReceiverOptions(url=mosquitto.url, protocol=protocol, client_id=client_id,
                                        codes=["46"], national=False))

    async with running(receiver()):
        pass  # first connection: the broker records the session and its subscriptions
    alert = _alert("46")
    async with _publisher(mosquitto.url) as pub:
        await _send_alert(pub, alert)
    async with running(receiver()) as again:
        await eventually(lambda: again.deliveries, what="the queued alert")
    assert [d.identifier for d in again.deliveries] == [alert.identifier]


@pytest.mark.mosquitto
async def test_reconnects_after_broker_restart(tmp_path: Path) -> None:
    """When the broker goes away and comes back, the receiver reconnects and keeps receiving."""
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker:
        receiver = Receiver(ReceiverOptions(url=broker.url, protocol="5", client_id=_uid("rx"),
                                            codes=["45"]))
        first, second = _alert("45"), _alert("45")
        async with running(receiver):
            async with _publisher(broker.url) as pub:
                await _send_alert(pub, first)
            await eventually(lambda: len(receiver.deliveries) == 1, what="first alert")
            await asyncio.to_thread(broker.restart)
            async with _publisher(broker.url) as pub:
                await _send_alert(pub, second)  # queued in the restored session if not back yet
            await eventually(lambda: len(receiver.deliveries) == 2, timeout=10,
                             what="second alert, after the restart")
    assert [d.identifier for d in receiver.deliveries] == [first.identifier, second.identifier]


def test_render_alert_japanese() -> None:
    """The Japanese rendering has the EXERCISE banner, headline, area, JST date and time
    sent and of expiry, and footer."""
    alert = _alert("47", identifier="alertsim-ev1-47-1")
    text = render_alert(alert, "ja")
    lines = text.splitlines()
    assert lines[0] == "*** EXERCISE — 訓練 / not a real alert ***"
    assert lines[1] == "ミサイル発射"
    assert texts.shelter().ja.description in lines
    assert "対象地域: 沖縄県" in lines
    assert "発表時刻: 2023-11-21 22:46:05 JST" in lines
    assert any(line.startswith("有効期限: 2023-11-") for line in lines)
    assert lines[-1] == "-- Alert alertsim-ev1-47-1"


def test_render_alert_english_test_status() -> None:
    """The English rendering of a Test alert has the TEST banner and the English texts."""
    text = render_alert(_alert(None, status="Test"), "en")
    assert text.startswith("*** TEST — 試験 / not a real alert ***\nMissile launch: take shelter\n")
    assert "Area: All of Japan" in text
    assert "Sent: 2023-11-21 22:46:05 JST" in text


def test_render_state_cleared() -> None:
    """A cleared (or empty) state renders as no active alert."""
    assert render_state(None, "47") == "[47] no active alert"
    empty = PrefectureState(code="47", status="Exercise", updated=SENT, events=())
    assert render_state(empty, "47") == "[47] no active alert"


def test_receiver_refuses_bad_codes_and_client_id() -> None:
    """A code outside 01..47 or a client id the Receipt model would refuse is an InputError."""
    with pytest.raises(InputError, match="'48'") as err:
        ReceiverOptions(url="mqtt://127.0.0.1:1", protocol="5", client_id="bad id", codes=["48"])
    assert len(err.value.problems) == 2
