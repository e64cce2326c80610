"""`serve --metrics-port`: Prometheus /metrics over real HTTP after real traffic.

`alertsim serve` runs as a subprocess against a real Mosquitto with `--metrics-port 0`
(the bound port is read from its `metrics.listening` log line). A detection that warns two
prefectures, a payload that is not a detection, and a receipt go in over MQTT; /metrics
must then show every counter of the issue with the values that traffic implies.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import topics
from alertsim.domain.messages import Receipt
from alertsim.domain.publication import Publication
from alertsim.metrics import PrometheusObserver, start_metrics_server
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually, make_detection
from tests.helpers import restore_sigint

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]

URL = re.compile(r"(http://127\.0\.0\.1:\d+/metrics)")  # from the metrics.listening line


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample at `url` by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_serve_exposes_the_counters_after_traffic(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with MosquittoBroker() as broker, log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alertsim", "serve", "--broker", broker.url, "--db",
            str(tmp_path / "serve.db"), "--status", "test", "--metrics-port", "0",
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "ALERTSIM_CLIENT_ID": "metrics-svc"},
            preexec_fn=restore_sigint)
        try:
            found = await eventually(lambda: URL.search(log.read_text("utf-8", "replace")),
                                     timeout=30, what="the metrics.listening log line")
            url = found.group(1)
            await eventually(lambda: "broker.connected" in log.read_text("utf-8", "replace"),
                             timeout=30, what="serve connected")
            detection = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100,
                                       event_id="metrics-1", launch_time=datetime.now(UTC))
            receipt = Receipt(client_id="r1", identifier="some-alert",
                              received_at=datetime.now(UTC))
            async with connect(MqttSettings(url=broker.url, client_id="metrics-in")) as client:
                for topic, payload in ((topics.DETECTIONS, detection.model_dump_json()),
                                       (topics.DETECTIONS, '{"not": "a detection"}'),
                                       (topics.V1.receipts("r1"), receipt.model_dump_json())):
                    await publish(client, Publication(topic, payload.encode(), qos=1))

            def settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
                samples = scrape(url)
                done = (value(samples, "alertsim_published_total", kind="alert") >= 2
                        and value(samples, "alertsim_published_total", kind="state") >= 2
                        and value(samples, "alertsim_receipts_total") >= 1)
                return samples if done else None

            samples = await eventually(lambda: asyncio.to_thread(settled), timeout=20,
                                       what="alerts published and the receipt recorded")
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.wait(), 20)
    assert value(samples, "alertsim_detections_total", outcome="accepted") == 1
    assert value(samples, "alertsim_decisions_total") == 1
    assert value(samples, "alertsim_alerts_total", stage="shelter") == 2
    assert value(samples, "alertsim_rejected_inputs_total", input="detection") == 1
    assert value(samples, "alertsim_receipts_total") == 1
    assert value(samples, "alertsim_published_total", kind="alert") == 2
    # A fresh record restates nothing at start: only the two warned places' states.
    assert value(samples, "alertsim_published_total", kind="state") == 2
    assert value(samples, "alertsim_publish_latency_seconds_count", kind="alert") == 2
    assert value(samples, "alertsim_publish_latency_seconds_sum", kind="alert") > 0
    assert ("alertsim_outbox_depth", ()) in samples


def test_each_observer_has_its_own_registry() -> None:
    """Two observers (a drill and the fleet in one process) never share counters."""
    first, second = PrometheusObserver(), PrometheusObserver()
    first.receipts(3)
    server = start_metrics_server(second.registry, 0, host="127.0.0.1")
    try:
        samples = scrape(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.close()
    assert value(samples, "alertsim_receipts_total") == 0
    assert first.registry.get_sample_value("alertsim_receipts_total") == 3


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_drill_exposes_the_counters_after_its_timeline(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """`drill --dashboard --metrics-port 0`: once the timeline has played (the drill then
    waits for the operator), /metrics holds the drill service's counters."""
    from tests.e2e.test_web_dashboard import SCENARIOS, dashboard_drill

    scenario = SCENARIOS / "2017-08-29-hwasong-12.yaml"
    async with dashboard_drill(scenario, tmp_path, mosquitto, speed=120,
                               extra=["--metrics-port", "0"]) as drill:
        await eventually(lambda: drill.printed("timeline played"), timeout=120,
                         what="the drill's timeline played")
        found = next(URL.search(line) for line in drill.lines if URL.search(line))
        assert found is not None

        def drained() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            samples = scrape(found.group(1))
            return samples if value(samples, "alertsim_outbox_depth") == 0 and value(
                samples, "alertsim_receipts_total") >= 6 else None

        samples = await eventually(drained, timeout=60, what="outbox drained, receipts in")
    assert value(samples, "alertsim_detections_total", outcome="accepted") >= 1
    assert value(samples, "alertsim_decisions_total") >= 1
    # 12 prefectures (2017-08-29, the block rule of the day): shelter, then passed.
    for stage in ("shelter", "passed"):
        assert value(samples, "alertsim_alerts_total", stage=stage) == 12, stage
    assert value(samples, "alertsim_alerts_total", stage="fell_sea") == 0
    assert value(samples, "alertsim_published_total", kind="alert") >= 24
    assert value(samples, "alertsim_publish_latency_seconds_count", kind="alert") >= 24
    assert value(samples, "alertsim_rejected_inputs_total", input="detection") == 0
