"""`alertsim cancel` and `close` with the operator role's credentials on the generated broker
(`broker-config`, real Mosquitto, the clients listener where the client id is the user
name): the ACL lets the operator see the service's answer, the commands name every
prefecture they changed, and every action lands in the audit log with who sent it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.mqtt.link import run_link
from alertsim.adapters.sqlite.store import Store
from alertsim.cli import main
from alertsim.domain.prefectures import Atlas
from alertsim.domain.topics import TopicTree
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, eventually, make_detection
from tests.integration.test_broker_config import MOSQUITTO, Broker, _broker

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60),
              pytest.mark.skipif(MOSQUITTO is None, reason="needs the mosquitto binary")]
ROOT = "alertsim/v1"
EVENT = "op-generated-aomori"
# 2022-10-04's track over Aomori: Hokkaido (01) and Aomori (02) shelter.
OVER_AOMORI = make_detection((40.7, 126.4), (33.63, 178.2), 40, 300, event_id=EVENT,
                             flight=timedelta(minutes=22))


@dataclass
class Running:
    broker: Broker
    service: Service
    store: Store

    async def operator(self, *args: str) -> int:
        """The CLI as the operator user, in a thread (it runs its own event loop)."""
        argv = [*args, "--broker", self.broker.url("operator"), "--topic-root", ROOT,
                "--timeout", "10"]
        return await asyncio.to_thread(main, argv)


@pytest.fixture
async def running(atlas: Atlas, tmp_path: Path) -> AsyncIterator[Running]:
    """The generated broker and a service on it as `service-exercise`."""
    async with _broker(tmp_path / "broker") as broker, \
            await Store.open(tmp_path / "svc.db") as store:
        service = Service(atlas=atlas, store=store.record,
                          clock=ScaledClock(start=DEFAULT_LAUNCH_TIME, speed=1.0),
                          config=ServiceConfig(topics=TopicTree(ROOT)))
        connected = asyncio.Event()
        tasks = [asyncio.create_task(service.run_timers()),
                 asyncio.create_task(run_link(service, url=broker.url("service-exercise"),
                                              protocol="5", client_id="svc",
                                              connected=connected))]
        try:
            await asyncio.wait_for(connected.wait(), 10)
            yield Running(broker, service, store)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def sheltering(running: Running) -> None:
    """Hokkaido and Aomori told to shelter, everything published."""
    assert await running.service.accept_detection(OVER_AOMORI.model_dump_json().encode())
    await eventually(running.service.drained, what="the shelter alerts and states published")
    alerts = await running.store.views.outbox(kind="alert")
    assert {(r.prefecture, r.stage) for r in alerts} == {("01", "shelter"), ("02", "shelter")}


async def test_cancel_as_the_operator_names_every_prefecture(
        running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """The operator's cancel is sent, applied, and its answer names 01 and 02."""
    await sheltering(running)
    assert await running.operator("cancel", EVENT) == 0
    out = capsys.readouterr().out
    assert f"cancel {EVENT}: applied: {EVENT} cancelled (Cancel sent to 01, 02)" in out
    cancels = [r.prefecture for r in await running.store.views.outbox(kind="alert")
               if r.stage == "cancel"]
    assert sorted(cancels) == ["01", "02"]
    [row] = await running.store.views.audit()
    assert (row.by, row.action, row.event_id, row.answer) == ("operator", "cancel", EVENT,
                                                              "applied")


async def test_close_then_a_refused_close_are_both_audited(
        running: Running, capsys: pytest.CaptureFixture[str]) -> None:
    """Close is applied (exit 0); a second close is the service's refusal (exit 1); the
    audit log keeps both with their answers."""
    await sheltering(running)
    assert await running.operator("close", EVENT) == 0
    assert "(state of 01, 02 no longer lists it)" in capsys.readouterr().out
    assert await running.operator("close", EVENT) == 1
    assert "refused by the service: event_id: event" in capsys.readouterr().out
    rows = await running.store.views.audit()
    assert [(r.by, r.action, r.answer) for r in rows] == [
        ("operator", "close", "applied"),
        ("operator", "close", f"event_id: event '{EVENT}' is already closed")]
    assert all(r.source == f"{ROOT}/operator" for r in rows)
