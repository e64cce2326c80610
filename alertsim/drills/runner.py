"""`alertsim drill`: play a scenario end to end and report what reached whom, and when.

    broker (given, or an embedded amqtt on a free loopback port)
    + SQLite record + receivers (one per prefecture, plus N more)
    + the service (timers and broker link)
    -> the timeline is published to the broker on a scaled clock (detections and operator
       actions travel over MQTT, as a sensor and an operator would send them)
    -> wait, on the service's events, until the outbox is drained and every expected
       receipt is in (or, with faults, receipts have stopped arriving: drills/settle.py)
    -> report (JSON + Markdown) built from the SQLite record alone
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from alertsim.adapters.sqlite.store import Store
from alertsim.bootstrap import LinkOptions, metrics, running
from alertsim.brokers.brokers import EmbeddedBroker
from alertsim.data import load_atlas
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree, drill_root
from alertsim.drills.dashboard import open_dashboard, wait_for_operator
from alertsim.drills.dry_run import service_config
from alertsim.drills.faults import FaultRelay, fault_kind, late_join_plan
from alertsim.drills.fleet import drill_plan, reference_plan
from alertsim.drills.progress import DrillProgress
from alertsim.drills.receivers import DrillFleets, drill_fleets
from alertsim.drills.report import (
    DrillReport,
    DrillSettings,
    build_report,
    render_markdown,
    write_report,
)
from alertsim.drills.report.html import write_html
from alertsim.drills.scenario import ActionEntry, DetectionEntry, Scenario, load_scenario
from alertsim.drills.settle import DeliveryWatch, SettleLimits
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.mqtt.protocol import Protocol as MqttProtocol
from alertsim.mqtt.url import redacted
from alertsim.service.clock import ScaledClock, real_now
from alertsim.service.observer import Observer
from alertsim.service.service import Service
from alertsim.signing import SigningKey, generate

log = structlog.get_logger("alertsim.drill")


@dataclass(frozen=True)
class DrillOptions:
    scenario_path: Path
    speed: float = 60.0
    broker_url: str | None = None
    # Receivers connect to these brokers, dealt round robin (default: the service's broker);
    # on a cluster, other nodes than the service's, so every alert crosses the cluster.
    receiver_urls: tuple[str, ...] = ()
    fleet_urls: tuple[str, ...] = ()  # more brokers, bridged, for the process fleet's shards
    extra_receivers: int = 0
    db: Path | None = None
    reports_dir: Path = Path("reports")
    settle_timeout_s: float = 15.0
    quiet_s: float = 1.0
    sender: str = "alertsim@simulator.invalid"
    # None: the drill's own root, alertsim/v1/drills/{drill_id}, which no `serve` reads.
    topic_root: str | None = None
    ca_file: Path | None = None  # for an mqtts:// broker with a private CA
    # Serve the live dashboard on 127.0.0.1 at this port (0: any free one) and, after the
    # timeline, keep running until Ctrl-C (see drills/dashboard.py); None: no dashboard.
    dashboard_port: int | None = None
    cap: bool = False  # the service also publishes every alert as CAP 1.2 XML
    # Serve the drill service's Prometheus counters at 127.0.0.1:PORT/metrics (0: any free
    # port); None: no endpoint.
    metrics_port: int | None = None
    # Faults injected between the service and the reference receivers (drills/faults.py).
    faults: tuple[str, ...] = ()
    fault_seed: int = 0
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass(frozen=True)
class DrillOutcome:
    report: DrillReport
    json_path: Path
    markdown_path: Path
    db_path: Path
    # The drill's signing key id; receivers trusted it alone. `rejected`: (client id, topic,
    # reason) of every message they refused as unsigned, forged or tampered.
    key_id: str | None = None
    rejected: tuple[tuple[str, str, str], ...] = ()
    verified: int = 0  # deliveries whose signature the receivers checked
    html_path: Path | None = None  # the HTML report beside the JSON and Markdown

    @property
    def passed(self) -> bool:
        return self.report.passed is True


def _say(opts: DrillOptions, text: str) -> None:
    print(text, file=opts.out, flush=True)


async def _observer(stack: contextlib.AsyncExitStack, opts: DrillOptions) -> Observer | None:
    """The drill service's Prometheus counters at /metrics while the drill runs, or none."""
    endpoint = await stack.enter_async_context(metrics(opts.metrics_port, host="127.0.0.1"))
    if endpoint is None:
        return None
    _say(opts, f"  metrics: {endpoint.url}")
    return endpoint.observer


def _entry_payload(entry: DetectionEntry | ActionEntry,
                   tree: TopicTree) -> tuple[str, bytes, str]:
    if isinstance(entry, DetectionEntry):
        d = entry.detection
        return (tree.detections, d.model_dump_json(exclude_none=True).encode(),
                f"detection {d.event_id} #{d.sequence}" + (f" outcome={d.outcome}"
                                                          if d.outcome else ""))
    body = json.dumps({"action": entry.action, "event_id": entry.event_id}).encode()
    return tree.operator, body, f"operator {entry.action} {entry.event_id}"


async def _play(scenario: Scenario, clock: ScaledClock, url: str, protocol: MqttProtocol,
                opts: DrillOptions, tree: TopicTree,
                say: Callable[[str], None] | None = None) -> None:
    """Publish the timeline at its scenario times, as a sensor and an operator would;
    each entry is told through `say` (default: a line on opts.out)."""
    settings = MqttSettings(url=url, client_id=f"alertsim-timeline-{uuid.uuid4().hex[:8]}",
                            protocol=protocol, ca_file=opts.ca_file)
    async with connect(settings) as client:
        for entry in scenario.timeline:
            moment = scenario.time_of(entry)
            await asyncio.sleep(max(0.0, clock.seconds_until(moment)))
            topic, payload, what = _entry_payload(entry, tree)
            await publish(client, Publication(topic, payload, qos=1), protocol=protocol)
            line = f"[{moment:%H:%M:%S} +{entry.at:>6.0f}s] {what}"
            if say is None:
                _say(opts, line)
            else:
                say(line)


def _default_db(opts: DrillOptions) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return opts.reports_dir / f"{opts.scenario_path.stem}-{stamp}.db"


async def _broker(stack: contextlib.AsyncExitStack, opts: DrillOptions,
                  ) -> tuple[str, MqttProtocol]:
    """The broker to drill on: the one given, or an embedded amqtt for this drill alone."""
    if opts.broker_url is not None:
        return opts.broker_url, await negotiate_protocol(opts.broker_url, ca_file=opts.ca_file)
    broker = await stack.enter_async_context(EmbeddedBroker())
    _say(opts, f"embedded broker (amqtt, MQTT 3.1.1) on {broker.url}")
    return broker.url, "3.1.1"  # amqtt speaks MQTT 3.1.1 only


async def _record_start(store: Store, scenario: Scenario, opts: DrillOptions, url: str,
                        protocol: MqttProtocol) -> tuple[str, DrillSettings]:
    """A fresh drill id and the drill's settings, recorded before anything is sent."""
    token = uuid.uuid4().hex[:8]
    drill_id = f"{opts.scenario_path.stem}-{token}"
    # Client ids are unique per drill: a broker drops a client whose id reconnects.
    # The extra receivers are a process fleet on an MQTT 5 broker (see drills.fleet).
    plan = drill_plan(opts.extra_receivers, token,
                      process_fleet=protocol == "5" and not opts.receiver_urls)
    if "late-join" in opts.faults:  # judged like the others; started by the fault relay
        plan.update(late_join_plan((c for c, s in scenario.expect.prefectures.items() if s),
                                   token))
    settings = DrillSettings(
        scenario=scenario, scenario_path=str(opts.scenario_path),
        receivers=plan, national_receivers=True, speed=opts.speed, broker=redacted(url),
        protocol=protocol, status=scenario.status, policy=scenario.resolved_policy(),
        topic_root=opts.topic_root or drill_root(drill_id), faults=opts.faults,
        fault_seed=opts.fault_seed if opts.faults else None)
    await store.drills.record_drill(drill_id=drill_id, scenario=str(opts.scenario_path),
                             started_at=real_now(), settings_json=settings.model_dump_json())
    return drill_id, settings


@dataclass(frozen=True)
class _Live:
    """A drill's running parts, from the service's start to the settle."""

    opts: DrillOptions
    scenario: Scenario
    service: Service
    clock: ScaledClock
    link: LinkOptions
    watch: DeliveryWatch
    relay: FaultRelay | None = None
    dashboard_url: str | None = None


async def _run_service(live: _Live) -> None:
    """The service's timers and link while the timeline plays, until delivery settles."""
    opts, service = live.opts, live.service
    limits = SettleLimits(timeout_s=opts.settle_timeout_s, quiet_s=opts.quiet_s)
    # A live view on a terminal, plain progress lines otherwise (drills/progress.py).
    progress = DrillProgress(live.scenario, live.clock.now, opts.out, speed=opts.speed)
    shown = asyncio.create_task(progress.run(service.events), name="drill-progress")
    try:
        async with running(service, live.link) as connected:
            async with asyncio.timeout(15):
                await connected.wait()
            await _play(live.scenario, live.clock, live.link.url, live.link.protocol, opts,
                        service.config.topics, progress.say)
            if live.relay is not None:  # what the relay holds back goes out once all is sent
                await live.relay.flush(service.drained)
            await live.watch.settle(service.drained, limits)
            if live.dashboard_url is not None:
                await wait_for_operator(live.dashboard_url, opts.out)
                await live.watch.settle(service.drained, limits)
    finally:
        live.watch.close()
        shown.cancel()
        await asyncio.gather(shown, return_exceptions=True)


def _fault_relay(opts: DrillOptions, settings: DrillSettings, url: str,
                 protocol: MqttProtocol, signer: SigningKey) -> FaultRelay | None:
    """The fault relay of a drill with `--fault` (its receivers listen below it)."""
    if not opts.faults:
        return None
    fleet_ids = reference_plan(settings.receivers)
    return FaultRelay(kinds=frozenset(fault_kind(k) for k in opts.faults),
                      seed=opts.fault_seed, url=url, protocol=protocol,
                      source=TopicTree(settings.topic_root), status=settings.status,
                      late_plan={cid: codes for cid, codes in fleet_ids.items()
                                 if "-late-" in cid},
                      trust=signer.trusted(), ca_file=opts.ca_file)


async def _start_faults(stack: contextlib.AsyncExitStack, relay: FaultRelay | None,
                        opts: DrillOptions) -> None:
    if relay is not None:
        await relay.start()
        stack.push_async_callback(relay.stop)
        _say(opts, f"  faults: {', '.join(sorted(relay.kinds))} (seed {relay.seed}); "
                   f"receivers listen under {relay.target.root}/")


async def _finish(store: Store, drill_id: str, opts: DrillOptions,
                  relay: FaultRelay | None = None) -> tuple[DrillReport, Path, Path, Path]:
    """Record the drill's end, then write its report: JSON, Markdown and HTML."""
    finished = real_now()  # recorded before the report is built, so that it shows
    await store.drills.finish_drill(drill_id, finished, "null")
    report = await build_report(store, drill_id)
    if relay is not None:
        await relay.stop()  # idempotent; its last records (reconnections) belong in there
        report = report.model_copy(update={"faults": tuple(relay.applied)})
    json_path, md_path = await write_report(report, opts.reports_dir, drill_id)
    # The document to hand over, in Japanese (as the pages open) and in English beside it.
    html_path = await write_html(store, report, opts.reports_dir / f"{drill_id}.html", "ja")
    await write_html(store, report, opts.reports_dir / f"{drill_id}.en.html", "en")
    await store.drills.finish_drill(drill_id, finished, report.model_dump_json())
    return report, json_path, md_path, html_path


def _announce(opts: DrillOptions, drill_id: str, scenario: Scenario,
              settings: DrillSettings, db_path: Path, signer: SigningKey) -> None:
    _say(opts, f"drill {drill_id}: {scenario.title}")
    _say(opts, f"  {len(settings.receivers)} receivers, MQTT {settings.protocol}, "
               f"speed x{opts.speed:g}, record {db_path}")
    _say(opts, f"  topics under {settings.topic_root}/ (subscribe there to watch this drill)")
    _say(opts, f"  alerts signed with ed25519 key {signer.key_id}")


async def _start_fleets(stack: contextlib.AsyncExitStack, opts: DrillOptions,
                        settings: DrillSettings, url: str, protocol: MqttProtocol,
                        signer: SigningKey, relay: FaultRelay | None) -> DrillFleets:
    """Every receiver started and subscribed (the reference ones below the fault relay,
    if any), then the relay itself."""
    tree = TopicTree(settings.topic_root)
    fleets = drill_fleets(settings.receivers, url=url, protocol=protocol,
                          status=settings.status, tree=tree,
                          reference_tree=tree if relay is None else relay.target,
                          reference_urls=opts.receiver_urls, fleet_urls=opts.fleet_urls,
                          trust=signer.trusted(), ca_file=opts.ca_file,
                          started_elsewhere=relay.late_plan if relay is not None else ())
    if relay is not None:
        relay.prepare(fleets.reference.receivers, settings.scenario.expect.prefectures)
    await fleets.start(stack, lambda line: _say(opts, line))
    await _start_faults(stack, relay, opts)
    return fleets


async def _start_service(stack: contextlib.AsyncExitStack, opts: DrillOptions,
                         scenario: Scenario, store: Store, clock: ScaledClock,
                         tree: TopicTree) -> Service:
    atlas = load_atlas()
    atlas.warm_up()
    return Service(atlas=atlas, store=store.record, clock=clock, config=service_config(
        scenario, sender=opts.sender, topics=tree), observer=await _observer(stack, opts))


async def run_drill(opts: DrillOptions) -> DrillOutcome:
    """Run one drill; raises ScenarioError for a bad scenario, BrokerError for a bad broker."""
    scenario = load_scenario(opts.scenario_path)
    opts.reports_dir.mkdir(parents=True, exist_ok=True)
    db_path = opts.db or _default_db(opts)
    signer = generate()  # this run's key pair, in memory: the fleet trusts it alone
    async with contextlib.AsyncExitStack() as stack:
        url, protocol = await _broker(stack, opts)
        store = await stack.enter_async_context(await Store.open(db_path))
        drill_id, settings = await _record_start(store, scenario, opts, url, protocol)
        _announce(opts, drill_id, scenario, settings, db_path, signer)
        relay = _fault_relay(opts, settings, url, protocol, signer)
        fleets = await _start_fleets(stack, opts, settings, url, protocol, signer, relay)
        clock = ScaledClock(start=scenario.start, speed=opts.speed)
        service = await _start_service(stack, opts, scenario, store, clock,
                                       TopicTree(settings.topic_root))
        # Followed from before the first input; with faults some receipts never come
        live = _Live(opts, scenario, service, clock, LinkOptions(
            url=url, protocol=protocol, client_id=f"alertsim-service-{drill_id}",
            ca_file=opts.ca_file, signer=signer, cap=opts.cap),
            DeliveryWatch(service.events, fleets.reference.plan, exact=not opts.faults), relay,
            await open_dashboard(stack, service, port=opts.dashboard_port,
                                 title=scenario.title, out=opts.out, broker_url=url,
                                 ca_file=opts.ca_file))
        fleets.follow(service.events)
        with store.views.closed_while_live():  # views follow events, never the record
            await _run_service(live)
        outcomes = await fleets.collect(service, lambda line: _say(opts, line))
        report, json_path, md_path, html_path = await _finish(store, drill_id, opts, relay)
    _say(opts, "")
    _say(opts, render_markdown(report, compact=True))
    _say(opts, f"report: {md_path}, {html_path} and {json_path}; record: {db_path}")
    return DrillOutcome(report, json_path, md_path, db_path, key_id=signer.key_id,
                        rejected=tuple(r for o in outcomes for r in o.rejected),
                        verified=sum(o.verified for o in outcomes), html_path=html_path)
