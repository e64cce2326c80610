"""An operator action sent to a running service, and what came of it.

`send_operator_action` publishes `{"action", "event_id", "request_id", "by"}` on the
service's operator topic and watches the service's answer under the same topic root, on
the topics the broker's operator role may read (`brokers.broker_config.ROLES`):

    refused   an ErrorReport on `{root}/errors` whose excerpt (the refused payload, whole:
              it is under the 256-byte excerpt) carries this request's `request_id`
    applied   cancel: fresh (not retained) states naming the event cancelled; close: fresh
              states of the prefectures that listed the event, without it. Once the first
              one arrives the others are awaited a moment (`GATHER_S`: a change's states are
              committed together and go out together), so every place is named
    applied, with nothing to show: the retained states named no prefecture the action
              would change (a cancel after every prefecture had passed, a close of an
              event that warned nobody), and no refusal came within the timeout

Before publishing it reads the retained states (subscribed before the service status, so
they have all arrived when the retained status does) and requires the service to be
`online`; no status within the timeout means no service listens on that root. A broker
that refuses the subscription or the publish (ACL) is said so, with the topic.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.errors import BrokerError
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.errors import PublishRefused
from alertsim.mqtt.messages import Received, publish, received, subscribe
from alertsim.mqtt.negotiation import negotiate_protocol
from alertsim.signing import MalformedEnvelope, unwrap

__all__ = ["GATHER_S", "BrokerOperator", "OperatorOutcome", "SignIn", "Verdict", "payload_of",
           "send_operator_action"]

OperatorCommand = Literal["cancel", "close"]
# What came of an action, for programs (the console words it in its language):
Verdict = Literal["applied", "refused", "no_service", "offline", "no_answer", "denied"]
_DONE_STAGES = frozenset({"cancel", "passed", "fell_land", "fell_sea"})
GATHER_S: Final = 1.0  # after the first changed state, how long the others may take


@dataclass(frozen=True)
class OperatorOutcome:
    """`applied` True: the service acted (or had nothing to change); False: it refused, or
    no answer came. `detail` says which, for people to read; `verdict` for programs,
    `reason` the service's refusal (or the broker's), `places` the prefectures changed."""

    applied: bool
    detail: str
    request_id: str = ""
    verdict: Verdict = "applied"
    reason: str = ""
    places: tuple[str, ...] = ()


@dataclass
class _Watch:
    """What the answer must look like for one request, and the states seen before it."""

    action: OperatorCommand
    event_id: str
    request_id: str
    places: dict[str, str] = field(default_factory=dict)  # code -> the event's stage there
    changed: set[str] = field(default_factory=set)  # places whose fresh state shows it
    online: bool | None = None

    def expected(self) -> set[str]:
        """The places whose state applying the action changes."""
        if self.action == "close":
            return set(self.places)
        return {code for code, stage in self.places.items() if stage not in _DONE_STAGES}

    def snapshot(self, message: Received, tree: TopicTree) -> None:
        """Take in one retained message read before publishing."""
        if message.topic == tree.service_status:
            self.online = _json(message.payload).get("status") == "online"
            return
        stage = _event_stage(message.payload, self.event_id)
        if "/state/" in message.topic and stage is not None:
            self.places[message.topic.rsplit("/", 1)[1]] = stage

    def refusal(self, message: Received, tree: TopicTree) -> OperatorOutcome | None:
        """The service's refusal of this request, if `message` is it."""
        if message.topic != tree.errors:
            return None
        report = _json(message.payload)
        excerpt = report.get("excerpt")
        sent = _json(excerpt.encode()) if isinstance(excerpt, str) else {}
        if sent.get("request_id") != self.request_id:
            return None  # another input's refusal
        reason = str(report.get("reason"))
        return OperatorOutcome(False, f"refused by the service: {reason}", self.request_id,
                               "refused", reason)

    def take_state(self, message: Received) -> bool:
        """Note a fresh state showing the action applied there; True when it does."""
        if "/state/" not in message.topic or message.retain:
            return False
        code = message.topic.rsplit("/", 1)[1]
        stage = _event_stage(message.payload, self.event_id)
        shows = (stage is None and code in self.places) if self.action == "close" \
            else stage == "cancel"
        if shows:
            self.changed.add(code)
        return shows

    def applied(self) -> OperatorOutcome:
        """The outcome once fresh states have shown the action applied."""
        places = tuple(sorted(self.changed))
        where = ", ".join(places)
        detail = (f"applied: {self.event_id} cancelled (Cancel sent to {where})"
                  if self.action == "cancel" else
                  f"applied: {self.event_id} closed (state of {where} no longer lists it)")
        return OperatorOutcome(True, detail, self.request_id, places=places)


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


class _Denied(Exception):
    """The broker refused a subscription this client needs (its ACL)."""


async def _read_retained(client: Client, watch: _Watch, tree: TopicTree,
                         messages: asyncio.Queue[Received]) -> None:
    """States first, the service status last: when the status arrives, the states have."""
    filters = [(f"{tree.root}/+/state/+", 1), (tree.errors, 1), (tree.service_status, 1)]
    granted = await subscribe(client, filters[:2])
    granted += await subscribe(client, [filters[2]])
    denied = [name for (name, _), code in zip(filters, granted, strict=True) if code >= 0x80]
    if denied:
        raise _Denied(", ".join(denied))
    while watch.online is None:
        message = await messages.get()
        if message.retain:
            watch.snapshot(message, tree)


async def _service_ready(client: Client, watch: _Watch, tree: TopicTree,
                         messages: asyncio.Queue[Received],
                         timeout_s: float) -> OperatorOutcome | None:
    """None once the retained states are read and the service is online; else why not."""
    try:
        async with asyncio.timeout(timeout_s):
            await _read_retained(client, watch, tree, messages)
    except TimeoutError:
        return OperatorOutcome(False, f"no service is online under {tree.root} (no service "
                                      f"status within {timeout_s:g} s)", watch.request_id,
                               "no_service")
    except _Denied as exc:
        return OperatorOutcome(False, f"the broker refused this user's subscription to "
                                      f"{exc}", watch.request_id, "denied", str(exc))
    if not watch.online:
        return OperatorOutcome(False, f"the service under {tree.root} is offline",
                               watch.request_id, "offline")
    return None


async def _pump(client: Client, messages: asyncio.Queue[Received]) -> None:
    async for message in received(client):
        await messages.put(message)


async def _gather(watch: _Watch, messages: asyncio.Queue[Received], deadline: float) -> None:
    """After the first changed state: the other expected places, for GATHER_S at most."""
    loop = asyncio.get_running_loop()
    until = min(deadline, loop.time() + GATHER_S)
    try:
        async with asyncio.timeout_at(until):
            while not watch.expected() <= watch.changed:
                watch.take_state(await messages.get())
    except TimeoutError:
        pass


async def _outcome(watch: _Watch, tree: TopicTree, messages: asyncio.Queue[Received],
                   timeout_s: float) -> OperatorOutcome:
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        async with asyncio.timeout_at(deadline):
            while True:
                message = await messages.get()
                refused = watch.refusal(message, tree)
                if refused is not None:
                    return refused
                if watch.take_state(message):
                    break
        await _gather(watch, messages, deadline)
        return watch.applied()
    except TimeoutError:
        pass
    if watch.expected():
        return OperatorOutcome(False, f"no answer from the service within {timeout_s:g} s",
                               watch.request_id, "no_answer")
    return OperatorOutcome(True, f"applied: nothing to change for {watch.event_id} (no "
                                 f"prefecture in a state the {watch.action} changes) and no "
                                 f"refusal within {timeout_s:g} s", watch.request_id)


def payload_of(action: OperatorCommand, event_id: str, request_id: str,
               by: str | None) -> bytes:
    """The operator topic's payload; compact, so a refusal's excerpt holds all of it."""
    body: dict[str, str] = {"action": action, "event_id": event_id, "request_id": request_id}
    if by is not None:
        body["by"] = by
    return json.dumps(body, separators=(",", ":")).encode()


async def send_operator_action(action: OperatorCommand, event_id: str, *, url: str,
                               tree: TopicTree, timeout_s: float = 10.0,
                               ca_file: Path | None = None, username: str | None = None,
                               password: str | None = None,
                               by: str | None = None) -> OperatorOutcome:
    """Publish the action (signed `by` that operator, if given) to the service under `tree`
    and wait for its outcome. BrokerError when the broker cannot be reached or refuses
    the credentials."""
    request_id = uuid.uuid4().hex
    watch = _Watch(action, event_id, request_id)
    protocol = await negotiate_protocol(url, ca_file=ca_file, username=username,
                                        password=password)
    settings = MqttSettings(url=url, client_id=f"alertsim-operator-{request_id[:12]}",
                            protocol=protocol, ca_file=ca_file, username=username,
                            password=password)
    message = Publication(tree.operator, payload_of(action, event_id, request_id, by), qos=1)
    messages: asyncio.Queue[Received] = asyncio.Queue()
    async with connect(settings) as client:
        pump = asyncio.create_task(_pump(client, messages), name="operator-answers")
        try:
            unready = await _service_ready(client, watch, tree, messages, timeout_s)
            if unready is not None:
                return unready
            try:
                await publish(client, message, protocol=protocol)
            except PublishRefused as exc:
                return OperatorOutcome(False, str(exc), request_id, "denied", exc.reason)
            return await _outcome(watch, tree, messages, timeout_s)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


SignIn = Literal["ok", "wrong_password", "unreachable"]
_BAD_CREDENTIALS = ("bad user name or password", "not authori")


@dataclass(frozen=True)
class BrokerOperator:
    """The operator console's way to the service (`web.console.OperatorLink`): checks a
    user's password by connecting as that user, and sends actions as that user. Plain
    data, so it crosses into the dashboard's process."""

    url: str  # the listener operators use, no credentials
    topic_root: str
    ca_file: Path | None = None
    timeout_s: float = 10.0

    async def verify(self, user: str, password: str) -> SignIn:
        """Whether the broker takes this user and password (it is the authority)."""
        settings = MqttSettings(url=self.url, username=user, password=password,
                                client_id=f"alertsim-console-{uuid.uuid4().hex[:12]}",
                                protocol="3.1.1", ca_file=self.ca_file, timeout_s=5.0)
        try:
            async with connect(settings):
                return "ok"
        except BrokerError as exc:
            said = str(exc).lower()
            return "wrong_password" if any(s in said for s in _BAD_CREDENTIALS) \
                else "unreachable"

    async def send(self, action: OperatorCommand, event_id: str, *, user: str | None,
                   password: str | None, by: str | None) -> OperatorOutcome:
        """The action sent as `user` (anonymously when None); its outcome, a broker that
        cannot be reached included."""
        try:
            return await send_operator_action(
                action, event_id, url=self.url, tree=TopicTree(self.topic_root),
                timeout_s=self.timeout_s, ca_file=self.ca_file, username=user,
                password=password, by=by)
        except BrokerError as exc:
            return OperatorOutcome(False, str(exc), verdict="no_service", reason=str(exc))
