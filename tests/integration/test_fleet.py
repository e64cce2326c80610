"""The reference fleet: its plan, readiness, and 47+3 receivers on a real Mosquitto."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from alertsim.brokers.brokers import MosquittoBroker, free_port
from alertsim.domain import texts, topics
from alertsim.domain.messages import build_alert
from alertsim.domain.publication import Publication
from alertsim.domain.vocabulary import PREFECTURE_CODES
from alertsim.drills.fleet import plan_receivers
from alertsim.drills.reference_fleet import ReferenceFleet
from alertsim.errors import BrokerError
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually


def test_plan_has_one_receiver_per_prefecture_plus_extras() -> None:
    """rx-01..rx-47 each on their prefecture, then the extras on seeded random prefectures."""
    plan = plan_receivers(3, seed=7)
    assert len(plan) == 50
    assert all(plan[f"rx-{code}"] == [code] for code in PREFECTURE_CODES)
    extras = [codes for client_id, codes in plan.items() if client_id.startswith("rx-x")]
    assert len(extras) == 3
    assert all(len(codes) == 1 and codes[0] in PREFECTURE_CODES for codes in extras)
    assert plan == plan_receivers(3, seed=7)


def test_plan_refuses_negative_extra() -> None:
    """A negative number of extra receivers is a ValueError."""
    with pytest.raises(ValueError, match="extra"):
        plan_receivers(-1)


async def test_ready_times_out_without_broker() -> None:
    """ready() raises BrokerError when the receivers cannot subscribe in time."""
    fleet = ReferenceFleet(urls=[f"mqtt://127.0.0.1:{free_port()}"], protocol="5",
                           status="exercise", codes_per_receiver={"rx-nobroker": ["01"]})
    async with fleet:
        with pytest.raises(BrokerError, match="1 of 1 receivers not subscribed"):
            await fleet.ready(timeout_s=0.3)


async def test_fleet_gets_each_prefecture_alert_exactly_once(mosquitto: MosquittoBroker) -> None:
    """47+3 receivers each get the one alert for their prefecture, exactly once."""
    run = uuid.uuid4().hex[:8]
    plan = plan_receivers(3, seed=1, prefix=f"rx{run}")
    sent = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    alerts = {code: build_alert(identifier=f"fleet-{run}-{code}", sender="alertsim.test",
                                status="Exercise", sent=sent, msg_type="Alert",
                                stage="shelter" if code else "national",
                                texts=texts.shelter(), event_id=f"ev-{run}", sequence=1,
                                object_kind="ballistic_missile", code=code)
              for code in [*PREFECTURE_CODES, None]}
    # The national alert goes out last, on the same connection, to every receiver: once a
    # receiver has it, anything sent to its prefecture before (a duplicate too) has arrived.
    marker = alerts[None].identifier
    async with ReferenceFleet(urls=[mosquitto.url], protocol="5", status="exercise",
                              codes_per_receiver=plan) as fleet:
        ready = await fleet.ready()
        assert (ready.receivers, ready.subscribed) == (50, 50)
        async with connect(MqttSettings(url=mosquitto.url, client_id=f"pub-{run}")) as pub:
            for code, alert in alerts.items():
                await publish(pub, Publication(topic=topics.alerts("exercise", code),
                                                   payload=alert.model_dump_json().encode()))
        await eventually(lambda: all(ds and ds[-1].identifier == marker
                                     for ds in fleet.deliveries().values()),
                         timeout=10, what="the national alert at every receiver")
        got = fleet.deliveries()
    assert {cid: [d.identifier for d in ds] for cid, ds in got.items()} == {
        cid: [alerts[codes[0]].identifier, marker] for cid, codes in plan.items()}


async def test_receivers_dealt_over_several_brokers(mosquitto: MosquittoBroker) -> None:
    """Given two broker URLs, a place's two receivers connect one to each (`spread`)."""
    other = f"mqtt://127.0.0.1:{mosquitto.port}/"  # the same broker under another URL
    fleet = ReferenceFleet(urls=[mosquitto.url, other], protocol="5", status="exercise",
                           codes_per_receiver={"rx-a": ["13"], "rx-b": ["13"]})
    assert {r.options.url for r in fleet.receivers.values()} == {mosquitto.url, other}
    async with fleet:
        assert (await fleet.ready()).subscribed == 2
        outcome = await fleet.collect(_NoReceipts())
    assert (outcome.receivers, outcome.deliveries, outcome.rejected) == (2, 0, ())


class _NoReceipts:
    """A receipt sink that refuses receipts: reference receivers send their own."""

    async def record_receipts(self, receipts: object) -> None:
        raise AssertionError("a reference fleet hands no receipts to the sink")
