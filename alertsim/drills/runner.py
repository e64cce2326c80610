"""`alertsim drill`: play a scenario end to end and report what reached whom, and when.

    broker (given, or an embedded amqtt on a free loopback port)
    + SQLite record + receivers (one per prefecture, plus N more)
    + the service (timers and broker link)
    -> the timeline is published to the broker on a scaled clock (detections and operator
       actions travel over MQTT, as a sensor and an operator would send them)
    -> wait until the outbox is drained and the receipts have stopped arriving
    -> report (JSON + Markdown) built from the SQLite record alone
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from alertsim.adapters.mqtt.brokers import EmbeddedBroker
from alertsim.adapters.mqtt.client import (
    MqttSettings,
    Publication,
    connect,
    negotiate_protocol,
    publish,
)
from alertsim.adapters.mqtt.client import Protocol as MqttProtocol
from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.mqtt.signing import SigningKey, generate
from alertsim.adapters.mqtt.url import redacted
from alertsim.adapters.sqlite.store import Store
from alertsim.data import load_atlas
from alertsim.domain.timeline import simulate
from alertsim.domain.topics import TopicTree, drill_root
from alertsim.drills.fleet import Fleet, plan_receivers
from alertsim.drills.report import (
    DrillReport,
    DrillSettings,
    build_report,
    render_markdown,
    write_report,
)
from alertsim.drills.scenario import ActionEntry, DetectionEntry, Scenario, load_scenario
from alertsim.service.clock import ScaledClock, real_now
from alertsim.service.service import Service, ServiceConfig

log = structlog.get_logger("alertsim.drill")


@dataclass(frozen=True)
class DrillOptions:
    scenario_path: Path
    speed: float = 60.0
    broker_url: str | None = None
    extra_receivers: int = 0
    db: Path | None = None
    reports_dir: Path = Path("reports")
    settle_timeout_s: float = 15.0
    quiet_s: float = 1.0
    sender: str = "alertsim@simulator.invalid"
    # None: the drill's own root, alertsim/v1/drills/{drill_id}, which no `serve` reads.
    topic_root: str | None = None
    ca_file: Path | None = None  # for an mqtts:// broker with a private CA
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

    @property
    def passed(self) -> bool:
        return self.report.passed is True


def _say(opts: DrillOptions, text: str) -> None:
    print(text, file=opts.out, flush=True)


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
                opts: DrillOptions, tree: TopicTree) -> None:
    """Publish the timeline at its scenario times, as a sensor and an operator would."""
    settings = MqttSettings(url=url, client_id=f"alertsim-timeline-{uuid.uuid4().hex[:8]}",
                            protocol=protocol, ca_file=opts.ca_file)
    async with connect(settings) as client:
        for entry in scenario.timeline:
            moment = scenario.time_of(entry)
            await asyncio.sleep(max(0.0, clock.seconds_until(moment)))
            topic, payload, what = _entry_payload(entry, tree)
            await publish(client, Publication(topic, payload, qos=1), protocol=protocol)
            _say(opts, f"[{moment:%H:%M:%S} +{entry.at:>6.0f}s] {what}")


async def _settle(service: Service, store: Store, opts: DrillOptions) -> None:
    """Wait until the outbox is drained and receipts stop arriving (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + opts.settle_timeout_s
    last_count, last_change = -1, loop.time()
    while loop.time() < deadline:
        count = len(await store.receipts())
        if count != last_count:
            last_count, last_change = count, loop.time()
        if await service.drained() and loop.time() - last_change >= opts.quiet_s:
            return
        await asyncio.sleep(0.1)
    log.warning("drill.settle_timeout", timeout_s=opts.settle_timeout_s)


def dry_run(scenario_path: Path, out: TextIO | None = None) -> bool:
    """Play the scenario on a virtual clock with no broker; print and check what it sends."""
    out = out or sys.stdout
    scenario = load_scenario(scenario_path)
    engine = ServiceConfig(status=scenario.status, policy=scenario.policy).engine(load_atlas())
    got: dict[str, list[str]] = {}
    print(f"dry run of {scenario_path}: {scenario.title}", file=out)
    for sent in simulate(scenario.timeline_inputs(), engine, nonce="dryrun"):
        a = sent.alert
        place = a.prefecture or "national"
        got.setdefault(place, []).append(a.stage)
        print(f"  {sent.at:%H:%M:%S} {place:>8} {a.stage:<9} {a.msgType:<6} "
              f"{a.info[0].headline}", file=out)
    national = bool(got.pop("national", None))
    expected = {code: list(stages) for code, stages in scenario.expect.prefectures.items()}
    ok = got == expected and national == scenario.expect.national
    print(f"expectations: {'met' if ok else 'NOT met'} (expected {expected}, national "
          f"{scenario.expect.national}; got {got}, national {national})", file=out)
    return ok


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
    plan = plan_receivers(opts.extra_receivers, prefix=f"rx-{token}")
    settings = DrillSettings(
        scenario=scenario, scenario_path=str(opts.scenario_path),
        receivers=plan, national_receivers=True, speed=opts.speed, broker=redacted(url),
        protocol=protocol, status=scenario.status, policy=scenario.policy,
        topic_root=opts.topic_root or drill_root(drill_id))
    await store.record_drill(drill_id=drill_id, scenario=str(opts.scenario_path),
                             started_at=real_now(), settings_json=settings.model_dump_json())
    return drill_id, settings


async def _run_service(service: Service, clock: ScaledClock, scenario: Scenario, store: Store,
                       opts: DrillOptions, *, url: str, protocol: MqttProtocol,
                       drill_id: str, signer: SigningKey | None = None) -> None:
    """The service's timers and link while the timeline plays, until delivery settles."""
    connected = asyncio.Event()
    tasks = [asyncio.create_task(service.run_timers(), name="service-timers"),
             asyncio.create_task(run_link(service, url=url, protocol=protocol,
                                          client_id=f"alertsim-service-{drill_id}",
                                          connected=connected, signer=signer,
                                          ca_file=opts.ca_file),
                                 name="service-link")]
    try:
        async with asyncio.timeout(15):
            await connected.wait()
        await _play(scenario, clock, url, protocol, opts, service.config.topics)
        await _settle(service, store, opts)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_drill(opts: DrillOptions) -> DrillOutcome:
    """Run one drill; raises ScenarioError for a bad scenario, BrokerError for a bad broker."""
    scenario = load_scenario(opts.scenario_path)
    opts.reports_dir.mkdir(parents=True, exist_ok=True)
    db_path = opts.db or _default_db(opts)
    atlas = load_atlas()
    atlas.warm_up()
    async with contextlib.AsyncExitStack() as stack:
        url, protocol = await _broker(stack, opts)
        store = await stack.enter_async_context(await Store.open(db_path))
        drill_id, settings = await _record_start(store, scenario, opts, url, protocol)
        _say(opts, f"drill {drill_id}: {scenario.title}")
        _say(opts, f"  {len(settings.receivers)} receivers, MQTT {protocol}, "
                   f"speed x{opts.speed:g}, record {db_path}")
        tree = TopicTree(settings.topic_root)
        _say(opts, f"  topics under {tree.root}/ (subscribe there to watch this drill)")
        signer = generate()  # this run's key pair, in memory: the fleet trusts it alone
        _say(opts, f"  alerts signed with ed25519 key {signer.key_id}")
        fleet = Fleet(url=url, protocol=protocol, status=scenario.status,
                      codes_per_receiver=settings.receivers, tree=tree,
                      trust=signer.trusted(), ca_file=opts.ca_file)
        await fleet.start()
        stack.push_async_callback(fleet.stop)
        await fleet.ready()
        clock = ScaledClock(start=scenario.start, speed=opts.speed)
        service = Service(atlas=atlas, store=store, clock=clock, config=ServiceConfig(
            status=scenario.status, policy=scenario.policy, sender=opts.sender, topics=tree))
        await _run_service(service, clock, scenario, store, opts, url=url, protocol=protocol,
                           drill_id=drill_id, signer=signer)
        rejected = tuple((cid, topic, reason) for cid, found in fleet.rejected().items()
                         for topic, reason in found)
        verified = sum(len(found) for found in fleet.deliveries().values())
        report = await build_report(store, drill_id)
        json_path, md_path = await write_report(report, opts.reports_dir, drill_id)
        await store.finish_drill(drill_id, real_now(), report.model_dump_json())
    _say(opts, "")
    _say(opts, render_markdown(report, compact=True))
    _say(opts, f"report: {md_path} and {json_path}; record: {db_path}")
    return DrillOutcome(report, json_path, md_path, db_path, key_id=signer.key_id,
                        rejected=rejected, verified=verified)
