"""Identities on the generated broker (`broker-config --receivers 2`, real Mosquitto): nobody
writes a receipt under another user's name, and nobody takes over a receiver's client id
with other credentials.

Each refusal is paired with a control on the same connection (Mosquitto handles one
connection's PUBLISHes in order): the control must arrive at the observer, so a test cannot
pass because nothing arrived at all. The takeover test also shows that the same client id
*with the receiver's own password* does take the connection over (Mosquitto logs it and
the first connection ends): the check can see a takeover when there is one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from alertsim.errors import BrokerError
from alertsim.mqtt.client import Client, MqttSettings, connect
from alertsim.mqtt.messages import incoming, subscribe
from alertsim.testing import eventually
from tests.integration.test_broker_config import (
    MOSQUITTO,
    Broker,
    _broker,
    _send,
    _send_forbidden,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60),
              pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")]
ROOT = "alertsim/v1"
VICTIM = "receiver-exercise"
TAKEOVER_LOG = f"Client {VICTIM} already connected, closing old connection"
# (user, the topic it may publish: the control) for every role on the clients listener.
ATTACKERS = [
    ("receiver-exercise-2", f"{ROOT}/receipts/receiver-exercise-2"),
    ("receiver-test", f"{ROOT}/receipts/receiver-test"),
    ("sensor", f"{ROOT}/detections"),
    ("operator", f"{ROOT}/operator"),
]


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """The generated broker with two receiver users per status."""
    async with _broker(tmp_path / "broker", "--receivers", "2") as running:
        yield running


@asynccontextmanager
async def reading(settings: MqttSettings, topic: str,
                  ) -> AsyncIterator[tuple[list[tuple[str, bytes]], asyncio.Task[None]]]:
    """A client subscribed to `topic`; yields what it has seen and its reading task, which
    ends (with BrokerError) if the connection is closed under it."""
    seen: list[tuple[str, bytes]] = []
    async with connect(settings) as client:
        await subscribe(client, topic)

        async def read() -> None:
            async for message in incoming(client):
                seen.append(message)

        task = asyncio.create_task(read(), name=f"read:{settings.client_id}")
        try:
            yield seen, task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _service_settings(broker: Broker) -> MqttSettings:
    return broker.settings("service-exercise", "svc-receipts")


async def test_receipts_under_another_users_name_never_reach_the_service(
        broker: Broker) -> None:
    """Every other user, even one asking for the victim's client id, publishes a receipt
    on receipts/receiver-exercise: the service (on receipts/+) gets none of them, but each
    attacker's own control; the victim's own receipt arrives."""
    async with reading(_service_settings(broker), f"{ROOT}/#") as (seen, _):
        for user, control in ATTACKERS:
            async with connect(broker.settings(user, VICTIM)) as client:
                await _send_forbidden(client, f"{ROOT}/receipts/{VICTIM}")
                await _send_forbidden(client, f"{ROOT}/receipts/{user}-not-me")
                await _send(client, control, user.encode())
            await eventually(lambda c=control, u=user: (c, u.encode()) in seen,  # type: ignore[misc]
                             what=f"{user}'s control")
        async with connect(broker.settings(VICTIM, VICTIM)) as victim:
            await _send(victim, f"{ROOT}/receipts/{VICTIM}", b"genuine")
        await eventually(lambda: (f"{ROOT}/receipts/{VICTIM}", b"genuine") in seen,
                         what="the victim's own receipt")
    assert [(t, p) for t, p in seen if p == b"forbidden"] == []
    assert [t for t, _ in seen if t.startswith(f"{ROOT}/receipts/")] == [
        f"{ROOT}/receipts/receiver-exercise-2", f"{ROOT}/receipts/receiver-test",
        f"{ROOT}/receipts/{VICTIM}"]


async def _connect_once(settings: MqttSettings) -> None:
    """Connect and disconnect (BrokerError if the broker refuses)."""
    async with connect(settings):
        pass


async def _attack(broker: Broker, stack: AsyncExitStack) -> list[Client]:
    """Each attacker connects asking for the victim's client id and stays connected."""
    return [await stack.enter_async_context(connect(broker.settings(user, VICTIM)))
            for user, _ in ATTACKERS]


async def test_other_credentials_cannot_take_over_a_receivers_client_id(
        broker: Broker) -> None:
    """With the victim connected (persistent session), every other clients-listener user
    connects with the victim's client id: all stay connected side by side, the victim's
    connection is never closed and still gets the next alert; on the services listener a
    receiver's password is refused. Then the victim's own password does take over."""
    victim = MqttSettings(url=broker.url(VICTIM), client_id=VICTIM, clean_start=False,
                          session_expiry_s=60, timeout_s=5.0)
    log = broker.directory / "mosquitto.out"
    async with reading(victim, f"{ROOT}/exercise/alerts/#") as (seen, task), \
            AsyncExitStack() as stack:
        attackers = await _attack(broker, stack)
        stolen = MqttSettings(url=broker.url("receiver-exercise-2").replace(
            f":{broker.port}", f":{broker.service_port}"), client_id=VICTIM, timeout_s=5.0)
        with pytest.raises(BrokerError, match=r"[Nn]ot authori"):
            await _connect_once(stolen)
        async with connect(broker.settings("service-exercise", "svc-alerts")) as service:
            await _send(service, f"{ROOT}/exercise/alerts/13", b"after the attack")
        await eventually(lambda: (f"{ROOT}/exercise/alerts/13", b"after the attack") in seen,
                         what="the alert at the victim's first connection")
        for (_, control), client in zip(ATTACKERS, attackers, strict=True):
            await _send(client, control, b"still here")  # each kept its own connection
        assert not task.done()
        assert TAKEOVER_LOG not in log.read_text("utf-8", errors="replace")
        async with connect(victim):  # the same id with the victim's own password
            await eventually(task.done, what="the first connection closed by the takeover")
        await eventually(lambda: TAKEOVER_LOG in log.read_text("utf-8", errors="replace"),
                         what="Mosquitto's takeover line")


async def test_a_second_serve_on_the_generated_broker_exits_with_a_clear_error(
        broker: Broker, tmp_path: Path) -> None:
    """On the generated broker (services listener, the service role's ACL), a second
    `serve` with a running one's client id exits 2 naming the id, and the first is never
    taken over: the role may ask who is online (`service/status`, `service/presence/#`)."""
    from tests.integration.test_serve_identity import second_serve_is_refused

    await second_serve_is_refused(tmp_path, broker.url("service-test"), ROOT, "svc-generated")
