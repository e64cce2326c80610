"""Fan-out: one detection published -> its alert at the last of N receivers, beside the same
alert published straight to the same fleet on the same broker (the bare-broker baseline).

Run: python benchmarks/bench_fanout.py --receivers 10000 [--runs 5] [--shards K] [--uvloop]

A Mosquitto (started as the tests start it, `MosquittoBroker`, with the open-file limit
raised to the hard limit) carries everything. The fleet (`alertsim.fleet`: N receivers
spread over the prefectures by population, each on its prefecture's alert and state topics
and the national topic, QoS 1, in K processes) subscribes once. Then, `--runs` times:

  service   a detection that warns no prefecture and falls in the sea (the 2017-11-29
            Hwasong-15 of scenarios/) is published to the service (in this process, its
            MQTT link, SQLite record and outbox, as `alertsim drill` runs it); the service
            decides and publishes one national alert, which every receiver takes.
            Latency per receiver = its receive time - the detection's publish time.
  baseline  the same alert payload (identifier changed) published straight to the national
            topic, QoS 1. Latency per receiver = its receive time - the publish time.

p50/p99/max are over the N receivers of one run, and the figures shown are their medians
over the runs (each run's are in the JSON); receive times are wall-clock ms in each shard
process, so both sides share one clock. The last line is JSON: receivers, p99_ms,
baseline_p99_ms, ratio (p99 / baseline p99), connect_s, and the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.adapters.sqlite.views import RecordViews
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.data import load_atlas
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.drills.scenario import DetectionEntry, load_scenario
from alertsim.fleet.fleet import ProcessFleet
from alertsim.fleet.population import plan
from alertsim.logs import configure_logging
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.records import OutboxRow
from alertsim.service.service import Service

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios/2017-11-29-hwasong-15-no-alert.yaml"
STATUS = "exercise"


def raise_open_files() -> int:
    """Raise this process's (and so its children's) open-file limit to the hard limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def broker_peak_mb(broker: MosquittoBroker) -> float | None:
    """Mosquitto's peak resident memory (VmHWM), found by its config path in /proc."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(broker.config_path).encode() in (proc / "cmdline").read_bytes():
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]


def figures(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1)}


def over_runs(runs: list[list[float]]) -> dict[str, Any]:
    """Each figure's median over the runs (a shared machine makes single runs noisy), and
    every run's figures."""
    each = [figures(values) for values in runs]
    return {key: round(statistics.median(f[key] for f in each), 1) for key in each[0]} | {
        "each": each}


@contextlib.asynccontextmanager
async def service_on(url: str, tree: TopicTree,
                     db: Path) -> AsyncIterator[tuple[Service, Store]]:
    """The service with its link up, on a clock at the scenario's detection time, and its
    store."""
    scenario = load_scenario(SCENARIO)
    entry = next(e for e in scenario.timeline if isinstance(e, DetectionEntry))
    atlas = load_atlas()
    atlas.warm_up()
    async with await Store.open(db) as store:
        service = Service(atlas=atlas, store=store.record,
                          clock=ScaledClock(start=scenario.time_of(entry), speed=1.0),
                          config=ServiceConfig(status=STATUS, policy=scenario.policy,
                                               national_info=True,  # the alert measured
                                               topics=tree))
        connected = asyncio.Event()
        link = asyncio.create_task(run_link(service, url=url, protocol="5",
                                            client_id=f"bench-service-{uuid.uuid4().hex[:6]}",
                                            connected=connected))
        try:
            await asyncio.wait_for(connected.wait(), 15)
            yield service, store
        finally:
            link.cancel()
            await asyncio.gather(link, return_exceptions=True)


def detection(run: int) -> bytes:
    entry = next(e for e in load_scenario(SCENARIO).timeline if isinstance(e, DetectionEntry))
    found = entry.detection.model_copy(update={"event_id": f"bench-fanout-{run}"})
    return found.model_dump_json(exclude_none=True).encode()


async def national_alert(views: RecordViews, event_id: str) -> OutboxRow:
    """The event's national alert row, once it is in the outbox."""
    while True:
        for row in await views.outbox(event_id=event_id):
            if row.kind == "alert":
                return row
        await asyncio.sleep(0.005)


async def measure(fleet: ProcessFleet, views: RecordViews, url: str, tree: TopicTree, runs: int,
                  n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Interleaved runs: service path, then baseline; sent times by identifier."""
    sent: dict[str, tuple[str, float]] = {}
    inside: dict[str, list[float]] = {"recorded": [], "published": []}
    async with connect(MqttSettings(url=url, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                                    protocol="5")) as client:
        for run in range(-1, runs):  # run -1 warms both paths up and is not counted
            t0 = time.time() * 1000
            await publish(client, Publication(tree.detections, detection(run)))
            # The fleet pushes its progress meanwhile: the service's process is left to the service.
            await fleet.wait_until(lambda got: any(v >= n and k not in sent
                                                   for k, v in got.items()), timeout_s=60)
            row = await national_alert(views, f"bench-fanout-{run}")
            ident, payload = row.message_id, row.payload
            sent[ident] = ("service" if run >= 0 else "warm-up", t0)
            if run >= 0:  # inside the service: detection published -> row written -> PUBACK
                inside["recorded"].append(row.created_at.timestamp() * 1000 - t0)
                if row.published_at is not None:
                    inside["published"].append(row.published_at.timestamp() * 1000 - t0)
            base = f"{ident[:-16]}{uuid.uuid4().hex[:16]}"  # same length, another identifier
            t0 = time.time() * 1000
            await publish(client, Publication(tree.alerts(STATUS, None),
                                              payload.replace(ident.encode(), base.encode())))
            sent[base] = ("baseline" if run >= 0 else "warm-up", t0)
            await fleet.wait_for({base: n}, timeout_s=60)
    result = await fleet.stop()
    by_alert: dict[str, list[float]] = {ident: [] for ident in sent}
    for record in result.records:
        for ident, ms in record.first.items():
            if ident in sent:
                by_alert[ident].append(ms - sent[ident][1])
    service_side = over_runs([v for k, v in by_alert.items() if sent[k][0] == "service"])
    service_side |= {f"{k}_median_ms": round(statistics.median(v), 1)
                     for k, v in inside.items() if v}
    return service_side, over_runs([v for k, v in by_alert.items() if sent[k][0] == "baseline"])


async def bench(n: int, runs: int, shards: int | None) -> dict[str, Any]:
    root = f"bench/fanout/{uuid.uuid4().hex[:8]}"
    tree = TopicTree(root)
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker() as broker:
        broker.start()
        fleet = ProcessFleet(plan(n), url=broker.url, status=STATUS, tree=tree, shards=shards)
        ready = await fleet.start()
        try:
            async with service_on(broker.url, tree, Path(tmp) / "bench.db") as (_, store):
                service_side, baseline = await measure(fleet, store.views, broker.url, tree,
                                                       runs, n)
            broker_mb = broker_peak_mb(broker)
        finally:
            await fleet.stop()
    return {"receivers": n, "runs": runs, "shards": fleet.shards,
            "connect_s": ready.connect_s, "fleet_rss_mb": ready.rss_mb,
            "broker_peak_mb": broker_mb,
            "service": service_side, "baseline": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--uvloop", action="store_true",
                        help="run the service side on uvloop (the fleet always uses it)")
    args = parser.parse_args()
    configure_logging("console", "warning")
    limit = raise_open_files()
    if args.receivers + 100 > limit:
        parser.error(f"{args.receivers} receivers need more open files than the limit {limit}")
    runner = asyncio.run
    if args.uvloop:
        import uvloop
        runner = uvloop.run
    got = runner(bench(args.receivers, args.runs, args.shards))
    s, b = got["service"], got["baseline"]
    print(f"fan-out to {got['receivers']} receivers ({got['shards']} shard(s), {got['runs']} "
          f"runs; fleet connected in {got['connect_s']} s, {got['fleet_rss_mb']} MB; "
          f"Mosquitto peak {got['broker_peak_mb']} MB)")
    print(f"inside the service (median, from the detection's publish): alert recorded after "
          f"{s.get('recorded_median_ms')} ms, acknowledged by the broker after "
          f"{s.get('published_median_ms')} ms")
    print(f"{'':>28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, row in (("detection -> alert (service)", s), ("alert straight (bare broker)", b)):
        print(f"{label:>28} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['max_ms']:>8}")
    print(json.dumps({"receivers": got["receivers"], "p99_ms": s["p99_ms"],
                      "baseline_p99_ms": b["p99_ms"],
                      "ratio": round(s["p99_ms"] / b["p99_ms"], 2) if b["p99_ms"] > 0 else None,
                      "p50_ms": s["p50_ms"], "max_ms": s["max_ms"],
                      "baseline_p50_ms": b["p50_ms"], "baseline_max_ms": b["max_ms"],
                      "recorded_median_ms": s.get("recorded_median_ms"),
                      "published_median_ms": s.get("published_median_ms"),
                      "connect_s": got["connect_s"], "fleet_rss_mb": got["fleet_rss_mb"],
                      "broker_peak_mb": got["broker_peak_mb"],
                      "shards": got["shards"], "runs": got["runs"],
                      "each_run": s["each"], "baseline_each_run": b["each"],
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
