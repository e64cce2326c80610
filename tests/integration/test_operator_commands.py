"""`alertsim cancel` and `alertsim close` against a running service (Service + run_link on
a real Mosquitto, under a topic root of the test's own): applied, or the service's own
refusal, matched to the request by its request_id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.brokers.brokers import MosquittoBroker
from alertsim.cli import main
from alertsim.domain.prefectures import Atlas
from alertsim.domain.topics import TopicTree
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection

pytestmark = pytest.mark.mosquitto

EVENT = "op-test-sohae"
# A southward flight over Okinawa (2023-11-21's track): Okinawa shelters for minutes.
OVER_OKINAWA = make_detection((39.660, 124.705), (12.8, 128.1), 50, 300, event_id=EVENT)


class Running:
    """The service under its own root, with the broker's URL and root for the CLI."""

    def __init__(self, service: Service, store: Store, url: str, root: str) -> None:
        self.service, self.store, self.url, self.root = service, store, url, root

    def argv(self, *args: str) -> list[str]:
        return [*args, "--broker", self.url, "--topic-root", self.root, "--timeout", "10"]

    async def run(self, *args: str) -> int:
        """The CLI in a thread: it runs its own event loop, the service runs in this one."""
        return await asyncio.to_thread(main, self.argv(*args))


@pytest.fixture
async def running(atlas: Atlas, mosquitto: MosquittoBroker,
                  tmp_path: Path) -> AsyncIterator[Running]:
    root = f"test/operator/{uuid.uuid4().hex[:8]}"
    async with await Store.open(tmp_path / "svc.db") as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0)
        service = Service(atlas=atlas, store=store.record, clock=clock,
                          config=ServiceConfig(topics=TopicTree(root)))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=mosquitto.url, protocol="5",
                                              client_id=f"svc-{root[-8:]}",
                                              connected=connected))]
        try:
            await asyncio.wait_for(connected.wait(), 10)
            yield Running(service, store, mosquitto.url, root)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def sheltering(running: Running) -> None:
    """Okinawa told to shelter, and everything published (its retained state included)."""
    assert await running.service.accept_detection(OVER_OKINAWA.model_dump_json().encode())
    await eventually(running.service.drained, what="the shelter alert and state published")
    stages = [r.stage for r in await running.store.views.outbox(kind="alert")]
    assert stages == ["shelter"]


async def test_cancel_is_applied(running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim cancel EVENT` exits 0 once the service's Cancel for the event is seen."""
    await sheltering(running)
    assert await running.run("cancel", EVENT) == 0
    out = capsys.readouterr().out
    assert f"cancel {EVENT}: applied: {EVENT} cancelled" in out
    rows = await running.store.views.outbox(kind="alert")
    assert [(r.prefecture, r.stage) for r in rows] == [("47", "shelter"), ("47", "cancel")]
    assert await running.store.record.pending_inputs() == []  # recorded and acted on


async def test_close_is_applied_and_a_second_close_refused(
        running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """`alertsim close EVENT` exits 0 when Okinawa's state no longer lists the event; a
    second close is the service's refusal, exit 1."""
    await sheltering(running)
    assert await running.run("close", EVENT) == 0
    assert f"close {EVENT}: applied: {EVENT} closed (state of 47" in capsys.readouterr().out
    assert running.service.open_events() == []
    assert await running.run("close", EVENT) == 1
    out = capsys.readouterr().out
    assert f"refused by the service: event_id: event '{EVENT}' is already closed" in out


async def test_cancel_of_an_unknown_event_prints_the_services_reason(
        running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """The service refuses; the command prints its reason and exits 1."""
    await sheltering(running)
    assert await running.run("cancel", "no-such-event") == 1
    out = capsys.readouterr().out
    assert ("cancel no-such-event: refused by the service: event_id: no event "
            "'no-such-event' is known") in out
    rejected = await running.store.views.rejected()
    assert len(rejected) == 1
    assert json.loads(rejected[0].raw)["request_id"]  # the id the refusal was matched by


async def test_no_service_on_the_root_exits_1(mosquitto: MosquittoBroker,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """With no service under the root there is no retained status: exit 1, said plainly."""
    argv = ["cancel", EVENT, "--broker", mosquitto.url, "--topic-root",
            f"test/nobody/{uuid.uuid4().hex[:8]}", "--timeout", "1"]
    assert await asyncio.to_thread(main, argv) == 1
    assert "no service is online under test/nobody/" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "semi;colon", ""])
def test_bad_event_id_exits_2(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An EVENT_ID outside the contract is a usage error before anything connects."""
    assert main(["close", bad, "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "Usage: alertsim close" in err
    assert "1-64 characters of A-Z a-z 0-9 . _ -" in err
