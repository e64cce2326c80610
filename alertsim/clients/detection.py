"""A detection sent to a running service by hand (`alertsim detect`), and the service's answer.

`send_detection` publishes the detection's JSON on `{root}/detections` (QoS 1) and, unless
told not to wait, watches what the service publishes under the same root:

    no-service  no retained `online` status within the wait: nobody listens on that root
                (or this broker user may not read `{root}/service/status`)
    refused     an ErrorReport on `{root}/errors` for these bytes: its source is the
                detections topic, its size ours and its excerpt the start of our payload
                (the service keeps the first EXCERPT_BYTES); carries the service's reason
    accepted    an alert of this event and sequence: the service acted on it
    unchanged   neither within the wait: the service took it without a refusal and published
                nothing for it: a duplicate of a detection it already holds, or one that
                warns nobody new (the service announces neither)

Subscriptions are made before the status is read, so no answer can slip past. `shifted_to`
moves a detection's times so it is observed now (a README example that is never stale).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from alertsim.domain.detection import Detection
from alertsim.domain.model import JST
from alertsim.domain.notices import EXCERPT_BYTES
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import Received, publish, received, subscribe
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.signing import MalformedEnvelope, unwrap

__all__ = ["Answer", "DetectionOutcome", "send_detection", "shifted_to"]

Answer = Literal["accepted", "refused", "unchanged", "no-service", "sent"]


@dataclass(frozen=True)
class DetectionOutcome:
    """What came of one detection: `sent` when not waiting; `reason` for a refusal,
    `place` (a prefecture code or `national`) and `stage` of the alert that showed it was
    accepted."""

    answer: Answer
    reason: str = ""
    place: str = ""
    stage: str = ""


def shifted_to(detection: Detection, now: datetime) -> Detection:
    """The same detection observed at `now`: launch, observation and impact times all moved
    by `now - observed_at` (in JST, whole seconds), so the flight keeps its shape."""
    delta = now.replace(microsecond=0) - detection.observed_at

    def moved(moment: datetime) -> str:
        return (moment + delta).astimezone(JST).isoformat()

    body = json.loads(detection.model_dump_json())
    body["observed_at"] = moved(detection.observed_at)
    body["launch"]["time"] = moved(detection.launch.time)
    body["predicted"]["impact_time"] = moved(detection.predicted.impact_time)
    return Detection.model_validate(body)


def _json(payload: bytes) -> dict[str, object]:
    """A JSON object payload (a signed envelope opened), else {}."""
    try:
        body = json.loads(unwrap(payload)[0]) if payload else {}
    except (ValueError, MalformedEnvelope):
        return {}
    return body if isinstance(body, dict) else {}


@dataclass(frozen=True)
class _Watch:
    """What the service's answer to these bytes looks like."""

    tree: TopicTree
    payload: bytes
    event_id: str
    sequence: int

    def answer(self, message: Received) -> DetectionOutcome | None:
        """The outcome this message shows, if it shows one."""
        if message.topic == self.tree.errors:
            report = _json(message.payload)
            excerpt = self.payload[:EXCERPT_BYTES].decode("utf-8", "replace")
            if (report.get("source") == self.tree.detections
                    and report.get("size") == len(self.payload)
                    and report.get("excerpt") == excerpt):
                return DetectionOutcome("refused", reason=str(report.get("reason", "")))
            return None
        found = _json(message.payload).get("alertsim") if "/alerts/" in message.topic else None
        if (isinstance(found, dict) and found.get("event_id") == self.event_id
                and found.get("sequence") == self.sequence):
            return DetectionOutcome("accepted", place=str(found.get("prefecture") or
                                                          "national"),
                                    stage=str(found.get("stage", "")))
        return None


async def _online(tree: TopicTree, messages: asyncio.Queue[Received]) -> bool:
    """True once the service status says online, retained or live: a service that stopped
    cleanly says offline until it starts again, so an offline status is waited past (the
    caller's timeout ends the wait). Answers seen meanwhile are not ours: nothing has been
    sent yet."""
    while True:
        message = await messages.get()
        if message.topic == tree.service_status \
                and _json(message.payload).get("status") == "online":
            return True


async def _pump(client: Client, messages: asyncio.Queue[Received]) -> None:
    async for message in received(client):
        await messages.put(message)


async def _answer(watch: _Watch, messages: asyncio.Queue[Received],
                  timeout_s: float) -> DetectionOutcome:
    try:
        async with asyncio.timeout(timeout_s):
            while (found := watch.answer(await messages.get())) is None:
                pass
            return found
    except TimeoutError:
        return DetectionOutcome("unchanged")


async def _send_and_watch(client: Client, settings: MqttSettings, watch: _Watch,
                          timeout_s: float) -> DetectionOutcome:
    tree = watch.tree
    messages: asyncio.Queue[Received] = asyncio.Queue()
    pump = asyncio.create_task(_pump(client, messages), name="detect-answers")
    try:
        await subscribe(client, [(tree.errors, 1), (f"{tree.root}/+/alerts/+", 1)])
        await subscribe(client, tree.service_status, 1)
        try:
            async with asyncio.timeout(timeout_s):
                online = await _online(tree, messages)
        except TimeoutError:
            online = False
        if not online:
            return DetectionOutcome("no-service")
        await publish(client, Publication(tree.detections, watch.payload, qos=1),
                      protocol=settings.protocol)
        return await _answer(watch, messages, timeout_s)
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def send_detection(detection: Detection, *, url: str, tree: TopicTree,
                         timeout_s: float | None = 10.0,
                         ca_file: Path | None = None) -> DetectionOutcome:
    """Publish `detection` to the service under `tree`; with `timeout_s` None, return
    `sent` once the broker has it, else wait up to `timeout_s` for the service's status
    and again for its answer."""
    protocol = await negotiate_protocol(url, ca_file=ca_file)
    settings = MqttSettings(url=url, client_id=f"alertsim-detect-{uuid.uuid4().hex[:12]}",
                            protocol=protocol, ca_file=ca_file)
    payload = detection.model_dump_json().encode()
    async with connect(settings) as client:
        if timeout_s is None:
            await publish(client, Publication(tree.detections, payload, qos=1),
                          protocol=protocol)
            return DetectionOutcome("sent")
        watch = _Watch(tree, payload, detection.event_id, detection.sequence)
        return await _send_and_watch(client, settings, watch, timeout_s)
