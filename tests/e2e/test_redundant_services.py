"""Two redundant `alertsim serve` on different nodes of a NATS cluster, one killed mid-drill.

Both services read the same detections and share an identity secret, so they publish the
same identifiers; reference receivers (on the third node and on the survivor's node)
de-duplicate by identifier. Service A is killed with SIGKILL right after the second
detection is sent: every alert must still reach every receiver, each shown exactly once,
with the identifiers a pure engine under the same secret predicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertsim.brokers.nats import NatsCluster
from alertsim.clients.receiver import Receiver, ReceiverOptions
from alertsim.domain.detection import Detection
from alertsim.domain.messages import Alert
from alertsim.domain.operator import OperatorAction
from alertsim.domain.prefectures import Atlas
from alertsim.domain.publication import Publication
from alertsim.domain.timeline import Engine
from alertsim.domain.topics import TopicTree
from alertsim.drills.spread import spread
from alertsim.mqtt.client import MqttSettings, connect
from alertsim.mqtt.messages import publish
from alertsim.testing import eventually, make_detection
from tests.helpers import restore_sigint, running

pytestmark = [pytest.mark.nats, pytest.mark.timeout(240)]

SCRIPT = Path(sys.executable).with_name("alertsim")  # the installed console script
SECRET = "4f1c0a9be2d7c3a18f6e5b4d3c2a1908f7e6d5c4b3a29180f6e5d4c3b2a19080"
CODES = ("01", "02", "03", "05")  # 01 and 02 warned first; 03 and 05 after the update
TSUGARU_LAUNCH = (40.6, 126.4)
FIRST_IMPACT = (34.33, 178.57)  # over Tsugaru: 01 and 02
SECOND_IMPACT = (38.0, 150.0)  # further south: 03 and 05 (01 and 02 cancelled)


@dataclass
class Serve:
    """One `alertsim serve` subprocess on its own node, record and client id."""

    name: str
    url: str
    tmp: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.tmp / f"{self.name}.log"

    async def start(self, tree: TopicTree, secret_file: Path) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                SCRIPT, "serve", "--broker", self.url, "--db", str(self.tmp / f"{self.name}.db"),
                "--topic-root", tree.root, "--protocol", "3.1.1",
                "--identity-secret-file", str(secret_file),
                env={**os.environ, "ALERTSIM_CLIENT_ID": self.name,
                     "ALERTSIM_LOG_FORMAT": "json"},
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=restore_sigint)

    def connected(self) -> bool:
        """True once the service has subscribed to its inputs and said "online"."""
        assert self.process is not None
        assert self.process.returncode is None, f"{self.name} exited: {self.log.read_text()}"
        return self.log.exists() and "broker.connected" in self.log.read_text("utf-8")

    async def end(self, sig: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(sig)
        try:
            async with asyncio.timeout(20):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def detections(event_id: str, launch: datetime) -> tuple[Detection, Detection, Detection]:
    """Sequence 1 (01, 02), sequence 2 moved south (03, 05), and a second launch that
    warns nobody (national), all observed now."""
    observed = datetime.now(UTC) - launch
    first = make_detection(TSUGARU_LAUNCH, FIRST_IMPACT, 30, 100, event_id=event_id,
                           launch_time=launch, observed_after=observed)
    second = make_detection(TSUGARU_LAUNCH, SECOND_IMPACT, 30, 100, event_id=event_id,
                            sequence=2, launch_time=launch, observed_after=observed)
    national = make_detection((39.224, 125.670), (40.7, 137.0), 50, 100,
                              event_id=f"{event_id}-n", launch_time=launch,
                              observed_after=observed, flight=timedelta(minutes=53))
    return first, second, national


def predicted(atlas: Atlas, inputs: list[Detection | OperatorAction]) -> list[Alert]:
    """What every service sharing SECRET sends for `inputs`, by a pure engine."""
    engine = Engine(atlas=atlas, policy="prefecture", status="Exercise",
                    sender="alertsim@simulator.invalid", close_after=timedelta(minutes=10),
                    events={}, identity_secret=SECRET.encode())
    now = datetime.now(UTC)
    sent: list[Alert] = []
    for item in inputs:
        if isinstance(item, Detection):
            sent += engine.detection(item, now=now, nonce="-", secret="-").alerts
        elif (transition := engine.action(item, now=now)) is not None:
            sent += transition.alerts
    return sent


def shown(receiver: Receiver) -> list[str]:
    """Identifiers the receiver showed (first deliveries), in order."""
    return [d.identifier for d in receiver.deliveries if not d.duplicate]


async def test_one_of_two_services_killed_loses_nothing_and_shows_nothing_twice(
        nats_cluster: NatsCluster, tmp_path: Path, atlas: Atlas) -> None:
    """A on node 1 and B on node 2 both publish every alert under the same identifiers; A is
    SIGKILLed right after the update: every receiver shows every predicted alert once."""
    tree = TopicTree(f"alertsim/v1/redundancy-{uuid.uuid4().hex[:8]}")
    secret_file = tmp_path / "identity.secret"
    secret_file.write_text(SECRET + "\n", "utf-8")
    a, b = Serve("svc-a", nats_cluster.urls[0], tmp_path), Serve("svc-b", nats_cluster.urls[1], tmp_path)
    event_id = f"red-{uuid.uuid4().hex[:6]}"
    first, second, national = detections(event_id, datetime.now(UTC) - timedelta(minutes=2))
    cancel = OperatorAction(action="cancel", event_id=event_id)
    before_kill = predicted(atlas, [first])
    after_update = predicted(atlas, [first, second])
    everything = predicted(atlas, [first, second, national, cancel])
    plan = {f"rx-{code}-{n}": [code] for n in range(2) for code in CODES}
    receivers = [Receiver(ReceiverOptions(url=url, protocol="3.1.1", client_id=cid, codes=codes,
                                          tree=tree, persistent=False))
                 for url, share in spread(plan, [nats_cluster.urls[2], nats_cluster.urls[1]]).items()
                 for cid, codes in share.items()]
    sensor = MqttSettings(url=nats_cluster.urls[2], client_id=f"sensor-{uuid.uuid4().hex[:6]}",
                          protocol="3.1.1")
    try:
        for service in (a, b):
            await service.start(tree, secret_file)
        await eventually(lambda: a.connected() and b.connected(), timeout=60,
                         what="both services connected")
        async with contextlib.AsyncExitStack() as stack:
            for receiver in receivers:
                await stack.enter_async_context(running(receiver, timeout_s=30))
            client = await stack.enter_async_context(connect(sensor))

            async def send(topic: str, body: bytes) -> None:
                await publish(client, Publication(topic, body, qos=1), protocol="3.1.1")

            await send(tree.detections, first.model_dump_json().encode())
            await both_services_delivered(receivers, before_kill)
            await check_retained(nats_cluster.urls[2], tree, before_kill, "before the kill")

            await send(tree.detections, second.model_dump_json().encode())
            await a.end(signal.SIGKILL)  # mid-drill: A may be anywhere in acting on it
            await send(tree.detections, national.model_dump_json().encode())
            # Operator actions travel on their own topic: send the cancel once the update
            # it follows has been acted on, or it could overtake it.
            await eventually(lambda: all_shown(receivers, after_update), timeout=30,
                             what="the update's alerts, from B alone")
            await send(tree.operator, json.dumps({"action": "cancel",
                                                  "event_id": event_id}).encode())
            check_everyone_shown_once(receivers, everything)
            await eventually(lambda: all_shown(receivers, everything), timeout=30,
                             what="every predicted alert shown by every receiver")
            check_everyone_shown_once(receivers, everything)
            await check_retained(nats_cluster.urls[2], tree, everything, "after the drill")
    finally:
        await a.end(signal.SIGKILL)
        await b.end(signal.SIGINT)
    for service in (a, b):
        assert SECRET not in service.log.read_text("utf-8")


def wanted(receiver: Receiver, alerts: list[Alert]) -> list[str]:
    """The identifiers of `alerts` a receiver is subscribed to (its codes and national)."""
    return [x.identifier for x in alerts if x.prefecture in (*receiver.codes, None)]


def all_shown(receivers: list[Receiver], alerts: list[Alert]) -> bool:
    return all(set(wanted(r, alerts)) <= set(shown(r)) for r in receivers)


def check_everyone_shown_once(receivers: list[Receiver], alerts: list[Alert]) -> None:
    """Nothing shown twice, and nothing shown that the shared identity does not predict."""
    for receiver in receivers:
        counts = Counter(shown(receiver))
        assert max(counts.values(), default=1) == 1, receiver.client_id
        assert set(counts) <= set(wanted(receiver, alerts)), receiver.client_id


async def both_services_delivered(receivers: list[Receiver], alerts: list[Alert]) -> None:
    """Each receiver of a warned place got each alert twice (both services), shown once."""
    expected = {r.client_id: wanted(r, alerts) for r in receivers}
    assert any(expected.values())

    def twice() -> bool:
        return all(Counter(d.identifier for d in r.deliveries)[i] >= 2
                   for r in receivers for i in expected[r.client_id])

    await eventually(twice, timeout=30, what="every alert from both services")
    for receiver in receivers:
        assert shown(receiver) == expected[receiver.client_id], receiver.client_id


async def check_retained(url: str, tree: TopicTree, alerts: list[Alert], when: str) -> None:
    """A receiver connecting now reads, per prefecture, the latest predicted identifier."""
    latest = {x.prefecture: x.identifier for x in alerts if x.prefecture is not None}
    late = Receiver(ReceiverOptions(url=url, protocol="3.1.1",
                                    client_id=f"late-{uuid.uuid4().hex[:6]}", codes=sorted(latest),
                                    tree=tree, persistent=False))
    async with running(late, timeout_s=30):
        def current() -> dict[str, str]:
            return {code: state.events[0].identifier for code, state in late.states.items()
                    if state is not None and state.events}

        await eventually(lambda: current() == latest, timeout=15,
                         what=f"retained state {when} naming the latest alerts")
