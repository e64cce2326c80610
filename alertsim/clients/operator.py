"""An operator action sent to a running service, and what came of it.

`send_operator_action` publishes `{"action", "event_id", "request_id"}` on the service's
operator topic and watches the service's answer under the same topic root:

    refused   an ErrorReport on `{root}/errors` whose excerpt (the refused payload, whole:
              it is far under the 200-byte excerpt) carries this request's `request_id`
    applied   cancel: a Cancel alert of the event, or a fresh state naming it cancelled;
              close: a fresh (not retained) state of a prefecture that listed the event,
              without it
    applied, with nothing to show: the retained states named no prefecture the action
              would change (a cancel after every prefecture had passed, a close of an
              event that warned nobody), and no refusal came within the timeout

Before publishing it reads the retained states (subscribed before the service status, so
they have all arrived when the retained status does) and requires the service to be
`online`; no status within the timeout means no service listens on that root.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import Received, publish, received, subscribe
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.signing import MalformedEnvelope, unwrap

__all__ = ["OperatorOutcome", "send_operator_action"]

OperatorCommand = Literal["cancel", "close"]
_DONE_STAGES = frozenset({"cancel", "passed", "fell_land", "fell_sea"})


@dataclass(frozen=True)
class OperatorOutcome:
    """`applied` True: the service acted (or had nothing to change); False: it refused, or
    no answer came. `detail` says which, for people to read."""

    applied: bool
    detail: str
    request_id: str = ""


@dataclass
class _Watch:
    """What the answer must look like for one request, and the states seen before it."""

    action: OperatorCommand
    event_id: str
    request_id: str
    places: dict[str, str] = field(default_factory=dict)  # code -> the event's stage there
    online: bool | None = None

    def expects_change(self) -> bool:
        """Whether applying the action changes something the service publishes."""
        if self.action == "close":
            return bool(self.places)
        return any(stage not in _DONE_STAGES for stage in self.places.values())

    def snapshot(self, message: Received, tree: TopicTree) -> None:
        """Take in one retained message read before publishing."""
        if message.topic == tree.service_status:
            self.online = _json(message.payload).get("status") == "online"
            return
        stage = _event_stage(message.payload, self.event_id)
        if "/state/" in message.topic and stage is not None:
            self.places[message.topic.rsplit("/", 1)[1]] = stage

    def answer(self, message: Received, tree: TopicTree) -> OperatorOutcome | None:
        """The outcome this message shows, if it shows one."""
        if message.topic == tree.errors:
            return self._refusal(_json(message.payload))
        if "/alerts/" in message.topic:
            found = _json(message.payload).get("alertsim")
            alert = found if isinstance(found, dict) else {}
            if (self.action == "cancel" and alert.get("event_id") == self.event_id
                    and alert.get("stage") == "cancel"):
                place = alert.get("prefecture") or "national"
                return OperatorOutcome(True, f"applied: {self.event_id} cancelled (Cancel sent "
                                             f"to {place})", self.request_id)
        if "/state/" in message.topic and not message.retain:
            return self._state_change(message)
        return None

    def _refusal(self, report: dict[str, object]) -> OperatorOutcome | None:
        excerpt = report.get("excerpt")
        sent = _json(excerpt.encode()) if isinstance(excerpt, str) else {}
        if sent.get("request_id") != self.request_id:
            return None  # another input's refusal
        return OperatorOutcome(False, f"refused by the service: {report.get('reason')}",
                               self.request_id)

    def _state_change(self, message: Received) -> OperatorOutcome | None:
        code = message.topic.rsplit("/", 1)[1]
        stage = _event_stage(message.payload, self.event_id)
        if self.action == "close" and code in self.places and stage is None:
            return OperatorOutcome(True, f"applied: {self.event_id} closed (state of {code} "
                                         "no longer lists it)", self.request_id)
        if self.action == "cancel" and stage == "cancel":
            return OperatorOutcome(True, f"applied: {self.event_id} cancelled (state of "
                                         f"{code})", self.request_id)
        return None


def _json(payload: bytes) -> dict[str, object]:
    """A JSON object payload (a signed envelope opened), else {}."""
    try:
        body = json.loads(unwrap(payload)[0]) if payload else {}
    except (ValueError, MalformedEnvelope):
        return {}
    return body if isinstance(body, dict) else {}


def _event_stage(payload: bytes, event_id: str) -> str | None:
    """The event's stage in a prefecture's retained state, None when it is not listed."""
    events = _json(payload).get("events")
    for entry in events if isinstance(events, list) else ():
        if isinstance(entry, dict) and entry.get("event_id") == event_id:
            stage = entry.get("stage")
            return stage if isinstance(stage, str) else "?"
    return None


async def _read_retained(client: Client, watch: _Watch, tree: TopicTree,
                         messages: asyncio.Queue[Received]) -> None:
    """States first, the service status last: when the status arrives, the states have."""
    await subscribe(client, [(f"{tree.root}/+/state/+", 1), (tree.errors, 1),
                             (f"{tree.root}/+/alerts/+", 1)])
    await subscribe(client, tree.service_status, 1)
    while watch.online is None:
        message = await messages.get()
        if message.retain:
            watch.snapshot(message, tree)


async def _pump(client: Client, messages: asyncio.Queue[Received]) -> None:
    async for message in received(client):
        await messages.put(message)


async def _outcome(watch: _Watch, tree: TopicTree, messages: asyncio.Queue[Received],
                   timeout_s: float) -> OperatorOutcome:
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                found = watch.answer(await messages.get(), tree)
                if found is not None:
                    return found
    except TimeoutError:
        pass
    if watch.expects_change():
        return OperatorOutcome(False, f"no answer from the service within {timeout_s:g} s",
                               watch.request_id)
    return OperatorOutcome(True, f"applied: nothing to change for {watch.event_id} (no "
                                 f"prefecture in a state the {watch.action} changes) and no "
                                 f"refusal within {timeout_s:g} s", watch.request_id)


async def send_operator_action(action: OperatorCommand, event_id: str, *, url: str,
                               tree: TopicTree, timeout_s: float = 10.0,
                               ca_file: Path | None = None) -> OperatorOutcome:
    """Publish the action to the service under `tree` and wait for its outcome."""
    request_id = uuid.uuid4().hex
    watch = _Watch(action, event_id, request_id)
    protocol = await negotiate_protocol(url, ca_file=ca_file)
    settings = MqttSettings(url=url, client_id=f"alertsim-operator-{request_id[:12]}",
                            protocol=protocol, ca_file=ca_file)
    payload = json.dumps({"action": action, "event_id": event_id, "request_id": request_id})
    messages: asyncio.Queue[Received] = asyncio.Queue()
    async with connect(settings) as client:
        pump = asyncio.create_task(_pump(client, messages), name="operator-answers")
        try:
            try:
                async with asyncio.timeout(timeout_s):
                    await _read_retained(client, watch, tree, messages)
            except TimeoutError:
                return OperatorOutcome(False, f"no service is online under {tree.root} (no "
                                              f"service status within {timeout_s:g} s)")
            if not watch.online:
                return OperatorOutcome(False, f"the service under {tree.root} is offline")
            await publish(client, Publication(tree.operator, payload.encode(), qos=1),
                          protocol=protocol)
            return await _outcome(watch, tree, messages, timeout_s)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
