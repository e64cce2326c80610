"""The broker fails mid-event; a persistent receiver still gets every alert once, and the state.

The service runs in-process on a clock at SPEED times real time; a Receiver for 01 and 02
keeps a persistent session. After the shelter alerts arrived, and well before the "passed"
Updates (sent by the service's own timers when the last window ends: confirm_after 0), the
broker is (a) stopped and restarted with persistence, (b) stopped and restarted without
persistence, or (c) killed with SIGKILL and restarted. The receiver must then see the
retained state of 01 and 02 again and the "passed" Updates, each alert exactly once; the
final outcome or cancel sent afterwards adds nothing (one closing message per place).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.clients.receiver import Delivery, Receiver, ReceiverOptions
from alertsim.domain import topics
from alertsim.domain.detection import Outcome
from alertsim.domain.messages import PrefectureState
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection

pytestmark = [pytest.mark.slow, pytest.mark.mosquitto, pytest.mark.timeout(120)]

# The Tsugaru route's windows end 233 s (01) and 240 s (02) after the clock's start: at 30x,
# ~7.8 s of real time, for a broker outage that takes ~1-2 s to recover from.
SPEED = 30.0
START = DEFAULT_LAUNCH_TIME + timedelta(minutes=1)
CODES = ("01", "02")
EVENT = "broker-fault"


@dataclass(frozen=True)
class Fault:
    name: str
    persistence: bool
    kill: bool
    finale: str  # "impact" (a final outcome) or "cancel" (an operator cancel): after passed


FAULTS = [
    Fault("restart with persistence", persistence=True, kill=False, finale="impact"),
    Fault("restart without persistence", persistence=False, kill=False, finale="cancel"),
    Fault("SIGKILL and restart", persistence=True, kill=True, finale="impact"),
]


@dataclass
class Watch:
    """What the receiver showed: new deliveries (on_delivery) and states (on_state), in order."""

    shown: list[Delivery] = field(default_factory=list)
    states: list[tuple[str, PrefectureState | None]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def on_state(self, state: PrefectureState | None, code: str) -> None:
        self.states.append((code, state))

    def stages(self) -> set[tuple[str | None, str]]:
        return {(d.prefecture, d.stage) for d in self.shown}

    def has(self, *stages: str) -> bool:
        return {(code, stage) for code in CODES for stage in stages} <= self.stages()

    def restated(self, since: int) -> bool:
        """Both prefectures' states, listing the event, arrived after the first `since`."""
        return {code for code, state in self.states[since:] if state is not None
                and any(e.event_id == EVENT for e in state.events)} == set(CODES)


@asynccontextmanager
async def service_running(atlas: Atlas, store: Store, url: str,
                          clock: ScaledClock) -> AsyncIterator[tuple[Service, asyncio.Event]]:
    """The service's timers and broker link; yields it and the link's `connected` event."""
    service = Service(atlas=atlas, store=store.record, clock=clock,
                      config=ServiceConfig(confirm_after=timedelta(0)))
    connected = asyncio.Event()
    tasks = [asyncio.create_task(service.run_timers(), name="faults:timers"),
             asyncio.create_task(run_link(service, url=url, protocol="5",
                                          client_id="faults-svc", connected=connected),
                                 name="faults:link")]
    try:
        await asyncio.wait_for(connected.wait(), 10)
        yield service, connected
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def receiving(url: str) -> AsyncIterator[tuple[Receiver, Watch]]:
    """A persistent receiver for 01 and 02, subscribed; stopped on the way out."""
    watch = Watch()
    receiver = Receiver(ReceiverOptions(url=url, protocol="5", client_id="faults-rx",
                                        codes=list(CODES)),
                        on_delivery=watch.shown.append, on_state=watch.on_state)
    task = asyncio.create_task(receiver.run(watch.ready), name="faults:receiver")
    try:
        await asyncio.wait_for(watch.ready.wait(), 10)
        yield receiver, watch
    finally:
        receiver.stop()
        await task


async def send(url: str, topic: str, payload: bytes) -> None:
    """Publish one input with QoS 1 and wait for its PUBACK."""
    async with connect(MqttSettings(url=url, client_id="faults-sensor")) as client:
        await publish(client, Publication(topic, payload, qos=1))


def detection(clock: ScaledClock, *, sequence: int = 1,
              outcome: Outcome | None = None) -> bytes:
    """The Tsugaru route (warns 01 and 02), launched at DEFAULT_LAUNCH_TIME, observed now."""
    d = make_detection((40.6, 126.4), (34.33, 178.57), 30, 100, event_id=EVENT,
                       sequence=sequence, observed_after=clock.now() - DEFAULT_LAUNCH_TIME,
                       outcome=outcome)
    return d.model_dump_json().encode()


async def outage(broker: MosquittoBroker, connected: asyncio.Event, *, kill: bool) -> None:
    """Stop (or kill) the broker, wait until the service's link is down, start it again and
    wait until the link is back."""
    await asyncio.to_thread(broker.kill if kill else broker.stop)
    await eventually(lambda: not connected.is_set(), timeout=10, what="the service's link down")
    await asyncio.to_thread(broker.start)
    await asyncio.wait_for(connected.wait(), 30)


async def fail_and_recover(broker: MosquittoBroker, fault: Fault, connected: asyncio.Event,
                           watch: Watch) -> datetime:
    """An outage; returns when the receiver has re-subscribed (that moment, UTC) and seen
    both states again."""
    watch.ready.clear()
    since = len(watch.states)
    await outage(broker, connected, kill=fault.kill)
    await asyncio.wait_for(watch.ready.wait(), 30)
    resubscribed = datetime.now(UTC)
    await eventually(lambda: watch.restated(since), timeout=10,
                     what="the retained states of 01 and 02 again")
    return resubscribed


async def finish(url: str, clock: ScaledClock, fault: Fault, store: Store) -> None:
    """Send the final outcome or the cancel, and wait until the service acted on it."""
    if fault.finale == "cancel":
        body = json.dumps({"action": "cancel", "event_id": EVENT}).encode()
        await send(url, topics.OPERATOR, body)
    else:
        await send(url, topics.DETECTIONS, detection(clock, sequence=2, outcome="impact"))

    async def acted_on() -> bool:
        if await store.record.pending_inputs():
            return False
        if fault.finale == "cancel":  # nothing left to cancel after passed: withheld, told
            return any("nothing is sent" in r.reason for r in await store.views.rejected())
        return await store.record.detection(EVENT, 2) is not None

    await eventually(acted_on, timeout=10, what=f"the {fault.finale} acted on")


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_broker_fault_mid_event_loses_and_repeats_nothing(
        atlas: Atlas, tmp_path: Path, fault: Fault) -> None:
    """A broker restart or kill mid-event: states seen again, every alert shown exactly once."""
    async with MosquittoBroker(data_dir=tmp_path / "broker",
                               persistence=fault.persistence) as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=START, speed=SPEED)
        async with service_running(atlas, store, broker.url, clock) as (service, connected), \
                receiving(broker.url) as (receiver, watch):
            await send(broker.url, topics.DETECTIONS, detection(clock))
            await eventually(lambda: watch.has("shelter"), timeout=10, what="shelter alerts")
            outage_started = datetime.now(UTC)
            resubscribed = await fail_and_recover(broker, fault, connected, watch)
            await eventually(lambda: watch.has("passed"), timeout=30, what="passed Updates")
            await finish(broker.url, clock, fault, store)
            await eventually(service.drained, timeout=10, what="the outbox drained")
        alerts = await store.views.outbox(EVENT, kind="alert")
    passed_at = min(r.created_at for r in alerts if r.stage == "passed")
    assert passed_at > resubscribed, "precondition: the windows ended before the receiver " \
        f"was back ({(resubscribed - outage_started).total_seconds():.2f} s); lower SPEED"
    counts = Counter(d.identifier for d in watch.shown)
    assert set(counts) == {r.message_id for r in alerts}
    assert set(counts.values()) == {1}
    assert watch.stages() == {(c, s) for c in CODES for s in ("shelter", "passed")}
    print(f"\n{fault.name}: recovered in {(resubscribed - outage_started).total_seconds():.2f} s, "
          f"{(passed_at - resubscribed).total_seconds():.2f} s before the windows ended; "
          f"shown {[(d.prefecture, d.stage) for d in watch.shown]}; "
          f"{len(receiver.deliveries)} deliveries ({len(receiver.deliveries) - len(counts)} "
          f"duplicates); states seen: "
          f"{[(c, s.events[0].stage if s and s.events else None) for c, s in watch.states]}")


async def retained(url: str, code: str) -> PrefectureState | None:
    """The retained state of a prefecture as a new subscriber reads it (None: none kept)."""
    marker = f"test/faults/end/{code}"
    async with connect(MqttSettings(url=url, client_id="faults-probe")) as client:
        await client.subscribe([(topics.state("exercise", code), 1), (marker, 1)])
        await publish(client, Publication(marker, b"", qos=1))
        state = None
        async with asyncio.timeout(5):
            async for message in client.messages:
                if message.topic.matches(marker):
                    return state
                assert isinstance(message.payload, bytes)
                # An empty payload clears the state (a live clearing, e.g. the service's
                # restate on connect, reaches a subscriber too).
                state = (PrefectureState.model_validate_json(message.payload)
                         if message.payload else None)
    raise AssertionError("unreachable")  # pragma: no cover


async def test_closed_event_state_stays_cleared_after_broker_crash(
        atlas: Atlas, tmp_path: Path) -> None:
    """A state cleared by closing stays cleared when a crashed broker reloads an older snapshot."""
    async with MosquittoBroker(data_dir=tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=START, speed=1.0)
        async with service_running(atlas, store, broker.url, clock) as (service, connected):
            await send(broker.url, topics.DETECTIONS, detection(clock))
            await eventually(lambda: retained(broker.url, "01"), what="01 sheltering")
            await outage(broker, connected, kill=False)  # a clean stop saves a snapshot
            for action in ("cancel", "close"):
                body = json.dumps({"action": action, "event_id": EVENT}).encode()
                await send(broker.url, topics.OPERATOR, body)
            await eventually(service.drained, what="cancel and clearing published")
            assert await retained(broker.url, "01") is None
            await outage(broker, connected, kill=True)  # reloads the snapshot
            await eventually(service.drained, what="restate published")
            stale = await retained(broker.url, "01")
    print(f"\nafter the crash, 01 reads: {stale}")
    assert stale is None
