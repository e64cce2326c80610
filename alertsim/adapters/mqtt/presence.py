"""Is a service already running under this client id? Asked before `serve` connects.

Two processes with one client id take each other's connection over again and again (the
broker drops the older one: 97 takeovers in 30 s, inputs split between two records). So
before its own connections, `serve` asks with a throwaway client id:

    {root}/service/presence/{id}/ping    the asker publishes a nonce (QoS 1)
    {root}/service/presence/{id}/pong    the running service echoes it (QoS 0)

and refuses to start when the nonce comes back. The running service answers from its input
connection's reader (`answer_pings`), ahead of the inputs it is working through. The wait
is PING_WAIT_S, and ONLINE_WAIT_S when the retained `service/status` says online: a
crashed service leaves `online` behind (a broker that restarted from an old snapshot, a
will not yet sent), and a stale `online` only costs that wait, it never blocks a restart.
Redundant services use different ids, so different topics: they never answer each other
(one that finds the shared status online waits ONLINE_WAIT_S once, at start).

With the generated broker config the service role needs `readwrite
{root}/service/presence/#` and `read {root}/service/status`; a broker that refuses the
subscription (its SUBACK) leaves the check undone, with a warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Final

import structlog
from pydantic import ValidationError

from alertsim.domain.notices import ServiceStatus
from alertsim.domain.publication import Publication
from alertsim.domain.topics import TopicTree
from alertsim.errors import BrokerError
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import publish, received, subscribe

__all__ = ["ONLINE_WAIT_S", "PING_WAIT_S", "Presence", "service_answers"]

log = structlog.get_logger("alertsim.presence")

PING_WAIT_S: Final = 0.5  # a live service on the same broker answers in milliseconds
ONLINE_WAIT_S: Final = 3.0  # when the retained status says online: give it longer
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Presence:
    """The ping and pong topics of one client id under one tree."""

    ping: str
    pong: str

    @classmethod
    def of(cls, tree: TopicTree, client_id: str) -> Presence:
        # A topic level cannot hold + # / (and NATS refuses "."): other ids are hashed.
        level = client_id if _PLAIN_ID.fullmatch(client_id) else \
            "id-" + hashlib.sha256(client_id.encode()).hexdigest()[:16]
        base = f"{tree.service_status.rsplit('/', 1)[0]}/presence/{level}"
        return cls(ping=f"{base}/ping", pong=f"{base}/pong")


def pong_of(client: Client, presence: Presence) -> Callable[[bytes], Awaitable[None]]:
    """What a running service does with a ping: echo its nonce on the pong topic."""
    async def answer(nonce: bytes) -> None:
        await publish(client, Publication(presence.pong, nonce[:64], qos=0))
    return answer


async def service_answers(settings: MqttSettings, tree: TopicTree, client_id: str) -> bool:
    """True when a service connected with `client_id` answers a ping (see the module).

    `settings` says how to reach the broker: a clean session without a will (its client
    id is replaced by a throwaway one). False, with a warning, when the broker cannot be
    asked or refuses the topics.
    """
    presence = Presence.of(tree, client_id)
    asker = replace(settings, client_id=f"{client_id}-probe-{secrets.token_hex(4)}")
    try:
        async with connect(asker) as client:
            granted = await subscribe(client, [(tree.service_status, 0), (presence.pong, 0)])
            if any(code >= 0x80 for code in granted):
                _unchecked(client_id, "the broker refused the subscriptions (its ACL)")
                return False
            return await _ask(client, tree, presence)
    except BrokerError as exc:
        _unchecked(client_id, str(exc))
        return False


async def _ask(client: Client, tree: TopicTree, presence: Presence) -> bool:
    """Ping, then wait for our nonce on the pong topic (longer if the status is online)."""
    nonce = secrets.token_hex(8).encode()
    online = asyncio.Event()
    answered = asyncio.Event()

    async def read() -> None:
        async for message in received(client):
            if message.topic == tree.service_status and _online(message.payload):
                online.set()
            elif message.topic == presence.pong and message.payload == nonce:
                answered.set()
                return

    reader = asyncio.create_task(read(), name="presence-reader")
    try:
        await publish(client, Publication(presence.ping, nonce, qos=1))
        if await _within(answered, PING_WAIT_S) or not online.is_set():
            return answered.is_set()
        return await _within(answered, ONLINE_WAIT_S - PING_WAIT_S)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _within(event: asyncio.Event, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


def _online(payload: bytes) -> bool:
    try:
        return ServiceStatus.model_validate_json(payload).status == "online"
    except ValidationError:
        return False


def _unchecked(client_id: str, why: str) -> None:
    log.warning("service.identity_unchecked", client_id=client_id, reason=why,
                hint="could not ask whether a service already runs with this client id")
