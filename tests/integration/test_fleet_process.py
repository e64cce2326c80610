"""The process fleet (`alertsim.fleet`): its population spread, its bookkeeping, and N
receivers in shard processes on a real Mosquitto: wrong-area and duplicate deliveries
injected and reported, a drill's alerts to every fleet receiver, `alertsim fleet --json`."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from alertsim.brokers.brokers import MosquittoBroker
from alertsim.domain import texts
from alertsim.domain.messages import build_alert
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.drills.runner import DrillOptions, run_drill
from alertsim.fleet.fleet import ProcessFleet
from alertsim.fleet.population import apportion, plan, population
from alertsim.fleet.shard import SHARD_LINE
from alertsim.fleet.summary import Duplicate, WrongArea, summarise
from alertsim.fleet.tally import Heard, Tally, heard
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually
from tests.helpers import restore_sigint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("alertsim")


def alert_payload(identifier: str, code: str | None) -> bytes:
    from datetime import UTC, datetime

    return build_alert(identifier=identifier, sender="alertsim.test", status="Exercise",
                       sent=datetime(2024, 5, 1, 3, 0, tzinfo=UTC), msg_type="Alert",
                       stage="shelter" if code else "national", texts=texts.shelter(),
                       event_id="ev-fleet", sequence=1, object_kind="ballistic_missile",
                       code=code).model_dump_json().encode()


def test_population_is_the_2020_census() -> None:
    """47 prefectures adding up to the census total; Tokyo the largest, Tottori the least."""
    figures = population()
    assert len(figures) == 47
    assert sum(figures.values()) == 126_146_099
    assert max(figures, key=figures.__getitem__) == "13"
    assert min(figures, key=figures.__getitem__) == "31"


@pytest.mark.parametrize("n", [0, 1, 47, 50, 10_000, 20_000])
def test_apportion_adds_up_and_follows_population(n: int) -> None:
    """The shares add up to N, and each is within one receiver of its exact quota."""
    shares = apportion(n)
    assert sum(shares.values()) == n
    total = sum(population().values())
    assert all(abs(shares[c] - n * p / total) < 1 for c, p in population().items())
    assert apportion(n) == shares  # deterministic


def test_plan_names_say_where_receivers_listen() -> None:
    """Ids are {prefix}-{code}-{k}, unique, one code each."""
    found = plan(200, prefix="t")
    assert len(found) == 200
    assert all(cid.split("-")[1] == code for cid, code in found.items())


def test_tally_counts_wrong_area_and_duplicates() -> None:
    """An alert naming another prefecture is wrong-area; the same identifier twice is one
    delivery and one duplicate; national goes to everyone; a non-alert payload is malformed."""
    tally = Tally([("a", "01"), ("b", "13")])
    tally.alert(0, Heard("x", "13"), 1000.0, 990.0)  # a receiver of 01 gets 13's alert
    tally.alert(1, Heard("x", "13"), 1000.0, 990.0)
    tally.alert(1, Heard("x", "13"), 1005.0, 990.0)  # again
    tally.alert(0, Heard("n", "national"), 1001.0, None)
    tally.alert(1, None, 1001.0, None)
    summary = summarise([tally.report()])
    assert summary.totals.wrong_area == 1
    assert summary.wrong_area == (WrongArea(client_id="a", prefecture="01", identifier="x",
                                            payload_prefecture="13"),)
    assert summary.totals.duplicates == 1
    assert summary.duplicates == (Duplicate(client_id="b", identifier="x", extra=1),)
    assert summary.totals.malformed == 1
    by_id = {a.identifier: a for a in summary.alerts}
    assert by_id["n"].expected == 2
    assert by_id["n"].missed == 1
    assert by_id["x"].missed == 0
    assert summary.latency_ms.count == 2


def test_shard_report_survives_the_pipe() -> None:
    """A shard's report, written as JSON and read back as the parent reads it, is unchanged."""
    tally = Tally([("a", "01")])
    tally.alert(0, Heard("x", "01"), 1000.0, 990.0)
    tally.alert(0, Heard("x", "01"), 1001.0, 990.0)
    report = tally.report(rss_mb=12.5)
    assert SHARD_LINE.validate_json(report.model_dump_json()) == report


def test_heard_reads_alerts_with_the_domain_model() -> None:
    """Identifier and place (national for None) of a valid alert; None for anything else,
    an alert the domain's `Alert` model refuses included."""
    assert heard(alert_payload("id-1", "47")) == Heard("id-1", "47")
    assert heard(alert_payload("id-2", None)) == Heard("id-2", "national")
    assert heard(b"not json") is None
    assert heard(b'{"identifier": 3}') is None
    assert heard(b'{"identifier": "x", "alertsim": {"prefecture": "13"}}') is None


@pytest.mark.mosquitto
async def test_fleet_reports_injected_wrong_area_and_duplicate(
        mosquitto: MosquittoBroker) -> None:
    """50 receivers in 2 shards: an alert for 13 published on 01's topic is a wrong-area
    delivery at each receiver of 01; one published twice on 13's topic is a duplicate at
    each receiver of 13; a national alert reaches all 50 once."""
    tree = TopicTree(f"test/fleet/{uuid.uuid4().hex[:8]}")
    receivers = plan(50, prefix=f"t{uuid.uuid4().hex[:6]}")
    of_01 = sorted(cid for cid, code in receivers.items() if code == "01")
    of_13 = sorted(cid for cid, code in receivers.items() if code == "13")
    assert of_01
    assert of_13
    fleet = ProcessFleet(receivers, url=mosquitto.url, status="exercise", tree=tree, shards=2)
    ready = await fleet.start()
    try:
        assert ready.subscribed == 50
        assert fleet.shards == 2
        async with connect(MqttSettings(url=mosquitto.url,
                                        client_id=f"pub-{uuid.uuid4().hex[:8]}")) as pub:
            for topic, payload in [
                    (tree.alerts("exercise", "01"), alert_payload("wrong-13", "13")),
                    (tree.alerts("exercise", "13"), alert_payload("twice-13", "13")),
                    (tree.alerts("exercise", "13"), alert_payload("twice-13", "13")),
                    (tree.alerts("exercise", None), alert_payload("all", None))]:
                await publish(pub, Publication(topic, payload))
        # A wrong-area delivery counts as no delivery of its place: wait for the count.
        assert await fleet.wait_until(
            lambda got: got["twice-13"] >= len(of_13) and got["all"] >= 50
            and fleet.wrong_area >= len(of_01), timeout_s=20)
        # The copy of twice-13 went out before "all" on the same connection: it has arrived.
        summary = (await fleet.stop()).summary
    finally:
        await fleet.stop()
    assert summary.totals.wrong_area == len(of_01)
    assert sorted(w.client_id for w in summary.wrong_area) == of_01
    assert all(w.payload_prefecture == "13" for w in summary.wrong_area)
    assert summary.totals.duplicates == len(of_13)
    assert sorted(d.client_id for d in summary.duplicates) == of_13
    everyone = next(a for a in summary.alerts if a.identifier == "all")
    assert (everyone.delivered, everyone.missed, everyone.duplicates) == (50, 0, 0)


@pytest.mark.mosquitto
async def test_drill_fleet_gets_every_alert(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """A drill on Mosquitto with 50 extra receivers: they are a process fleet spread by
    population, every one subscribed to a warned prefecture acknowledges its alerts in the
    report, and nothing is missed."""
    scenario = ROOT / "scenarios/2017-08-29-hwasong-12.yaml"
    out = io.StringIO()
    outcome = await run_drill(DrillOptions(
        scenario_path=scenario, speed=300.0, broker_url=mosquitto.url, extra_receivers=50,
        reports_dir=tmp_path, out=out, settle_timeout_s=10.0, quiet_s=0.5))
    report = outcome.report
    assert outcome.passed, report.failures
    fleet_ids = {cid for cid in report.receivers if cid.startswith("fl-")}
    assert len(fleet_ids) == 50
    assert "fleet: " in out.getvalue()
    assert "NOT all expected" not in out.getvalue()
    # Latency is timed against the service's `sent-at` user property on every alert.
    assert re.search(r"fleet: \d+ deliveries, 0 missed, .* p99 [\d.]+ ms after sent-at",
                     out.getvalue())
    for place in report.per_prefecture:
        assert place.missed == 0
        for receiver in place.receivers:
            if receiver.client_id in fleet_ids and receiver.subscribed:
                assert receiver.stages == place.stages_sent, receiver.client_id
    hokkaido = next(p for p in report.per_prefecture if p.place == "01")
    assert hokkaido.stages_sent  # the scenario warns Hokkaido, which has fleet receivers
    assert any(r.client_id in fleet_ids for r in hokkaido.receivers)


@pytest.mark.mosquitto
async def test_drill_fleet_spread_over_a_bridged_broker(mosquitto: MosquittoBroker,
                                                        tmp_path: Path) -> None:
    """`fleet_urls`: half the fleet's shards on a second Mosquitto bridged from the drill's
    (for more receivers than one broker process has file handles); nothing is missed."""
    with MosquittoBroker(persistence=False,
                         bridge_from=f"127.0.0.1:{mosquitto.port}") as second:
        out = io.StringIO()
        outcome = await run_drill(DrillOptions(
            scenario_path=ROOT / "scenarios/2017-08-29-hwasong-12.yaml", speed=300.0,
            broker_url=mosquitto.url, extra_receivers=40, fleet_urls=(second.url,),
            reports_dir=tmp_path, out=out, settle_timeout_s=10.0, quiet_s=0.5))
        second_log = second.log_path.read_text("utf-8", "replace")
    assert outcome.passed, outcome.report.failures
    assert "NOT all expected" not in out.getvalue()
    assert all(place.missed == 0 for place in outcome.report.per_prefecture)
    assert " as fl-" in second_log  # fleet receivers really connected to the second broker
    first_log = mosquitto.log_path.read_text("utf-8", "replace")
    assert " as fl-" in first_log


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


@pytest.mark.mosquitto
async def test_fleet_command_writes_a_json_summary(mosquitto: MosquittoBroker,
                                                   tmp_path: Path) -> None:
    """`alertsim fleet --json FILE` runs until Ctrl-C, serving its gauges on
    --metrics-port meanwhile, then prints the summary and writes it as JSON (exit 0)."""
    root = f"test/fleetcli/{uuid.uuid4().hex[:8]}"
    summary_file, out = tmp_path / "fleet.json", tmp_path / "out.txt"
    with out.open("w") as stdout:
        proc = await asyncio.create_subprocess_exec(
            SCRIPT, "fleet", "--receivers", "30", "--broker", mosquitto.url, "--topic-root",
            root, "--shards", "2", "--json", str(summary_file), "--metrics-port", "0",
            stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=restore_sigint)
        try:
            line = await eventually(lambda: re.search(r"metrics: (http://\S+)",
                                                      out.read_text("utf-8")),
                                    timeout=30, what="the fleet subscribed, metrics served")
            metrics = await asyncio.to_thread(_fetch, line[1])
            assert "alertsim_fleet_receivers 30.0" in metrics
            assert "alertsim_fleet_subscribed 30.0" in metrics
            proc.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = out.read_text("utf-8")
    assert code == 0, text
    summary = json.loads(summary_file.read_text("utf-8"))
    assert (summary["receivers"], summary["shards"], summary["topic_root"]) == (30, 2, root)
    assert summary["totals"] == {"deliveries": 0, "missed": 0, "duplicates": 0,
                                 "wrong_area": 0, "malformed": 0, "states": 0}
    assert "fleet: 30 receivers in 2 shard(s)" in text
    assert f"summary: {summary_file}" in text


def test_process_fleet_deliveries_become_receipts() -> None:
    """Each receiver's first copy is a receipt at its receive time; each extra copy one more
    (a duplicate the report counts), at the time of collection."""
    from datetime import UTC, datetime

    from alertsim.drills.process_fleet import receipts_of
    from alertsim.fleet.tally import ReceiverTally
    from alertsim.service.events import ReceiptSeen

    now = datetime(2024, 5, 1, 3, 0, 5, tzinfo=UTC)
    records = [ReceiverTally("fl-13-1", "13", {"x": 1714532400000.0}, {"x": 2})]
    assert receipts_of(records, now) == [
        ReceiptSeen("fl-13-1", "x", datetime(2024, 5, 1, 3, 0, tzinfo=UTC)),
        ReceiptSeen("fl-13-1", "x", now), ReceiptSeen("fl-13-1", "x", now)]
