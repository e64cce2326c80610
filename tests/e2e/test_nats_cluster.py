"""A drill on a 3-node NATS cluster with MQTT: the service on one node, receivers on the others."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

import pytest

from alertsim.brokers.nats import NatsCluster
from alertsim.domain.publication import Publication
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.drills.spread import spread
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish, received
from alertsim.mqtt.messages import subscribe as mqtt_subscribe

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "salvo-three-launches.yaml"

pytestmark = pytest.mark.nats


def test_spread_puts_each_places_receivers_on_every_broker() -> None:
    """Each place's receivers are dealt over the brokers in turn; every receiver lands once."""
    plan = {"a1": ["01"], "b1": ["02"], "a2": ["01"], "c1": ["03"], "a3": ["01"], "b2": ["02"]}
    shares = spread(plan, ["n2", "n3"])
    assert shares == {"n2": {"a1": ["01"], "c1": ["03"], "a3": ["01"], "b2": ["02"]},
                      "n3": {"b1": ["02"], "a2": ["01"]}}
    with pytest.raises(ValueError, match="at least one"):
        spread(plan, [])


async def test_retained_state_crosses_nodes(nats_cluster: NatsCluster) -> None:
    """A retained message published on node 1 is handed to a later subscriber on node 3."""
    topic = f"alertsim-test/state/{uuid.uuid4().hex}"
    first = MqttSettings(url=nats_cluster.urls[0], client_id=f"pub-{uuid.uuid4().hex[:8]}",
                         protocol="3.1.1")
    async with connect(first) as client:
        await publish(client, Publication(topic, b"sheltering", qos=1, retain=True),
                      protocol="3.1.1")
    last = MqttSettings(url=nats_cluster.urls[2], client_id=f"sub-{uuid.uuid4().hex[:8]}",
                        protocol="3.1.1")
    async with connect(last) as client:
        await mqtt_subscribe(client, topic, qos=1)
        async with asyncio.timeout(10):
            message = await anext(received(client))
    assert (message.topic, message.payload) == (topic, b"sheltering")


async def test_drill_on_cluster_loses_nothing(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    """Service on node 1, 94 receivers spread over nodes 2 and 3: every alert of the salvo
    scenario reaches every receiver of its place, and the expectations pass."""
    service_url, receiver_urls = nats_cluster.urls[0], nats_cluster.urls[1:]
    options = DrillOptions(scenario_path=SCENARIO, speed=120.0, broker_url=service_url,
                           receiver_urls=receiver_urls, extra_receivers=47,
                           reports_dir=tmp_path, out=io.StringIO(), settle_timeout_s=60.0,
                           # JetStream on a busy 2-core machine stalled receipts for
                           # seconds while ~300 QoS 1 consumers were being created.
                           quiet_s=5.0)
    outcome = await run_drill(options)
    report = outcome.report
    assert outcome.passed, report.failures
    assert report.broker == service_url
    warned = [p for p in (*report.per_prefecture, report.national) if p.stages_sent]
    assert {p.place for p in warned} >= {"01", "47", "national"}
    for place in warned:
        assert place.missed == 0, place.place
        for receiver in place.receivers:
            if receiver.subscribed:
                assert receiver.missed == (), (place.place, receiver.client_id)
                assert set(receiver.stages) == set(place.stages_sent), receiver.client_id
    # The warned places had receivers on both receiver nodes, none on the service's.
    shares = spread(report.receivers, receiver_urls)
    for code in ("01", "47"):
        assert all(any(code in codes for codes in shares[url].values())
                   for url in receiver_urls), code
    everyone = {cid for place in warned for cid in (r.client_id for r in place.receivers)}
    assert len(everyone) == len(report.receivers) == 94
    assert outcome.verified >= sum(p.deliveries for p in warned)
    assert not outcome.rejected
